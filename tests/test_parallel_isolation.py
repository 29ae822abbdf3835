"""Inner suites that collide under xdist without testfleet's helpers, and pass with them.

The application under test keeps its sessions in a directory named by a global
settings object (every worker's tests share ``data/sessions``: cleanup deletes other
workers' files, "the most recent session" is another worker's), and uses a pool of
three collections on a shared store, handed out round-robin by each process (two
workers clear the same collection under each other). With ``ISOLATE=1`` the suite
uses ``testfleet_redirect`` and ``testfleet_pool`` instead; nothing else changes.

A second suite keeps people as ``Person`` nodes on one Bolt server (conftest.py's
``neo4j_connection``): through a driver of its own every worker's tests delete, count and
read each other's nodes; through ``neo4j_session`` (and ``neo4j_label`` under the
``namespace`` strategy) each test sees only its own.
"""

from __future__ import annotations

import json
import re

import pytest

from testfleet.neo4j.config import Connection

APP = """
import shutil
import time
import uuid
from pathlib import Path

HERE = Path(__file__).parent


class Settings:
    def __init__(self):
        # One directory for every process: the bug that the suite must expose.
        self.data_dir = HERE / "data"


settings = Settings()
# The "server": collections that every process of every run sees.
STORE = HERE / "store"


def sessions_dir():
    path = Path(settings.data_dir) / "sessions"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_session(user):
    name = f"{time.time_ns()}-{uuid.uuid4().hex}"
    (sessions_dir() / name).write_text(user)
    return name


def most_recent_session():
    return max(path.name for path in sessions_dir().iterdir())


def cleanup_sessions():
    for path in sessions_dir().iterdir():
        path.unlink(missing_ok=True)


def clear_collection(name):
    shutil.rmtree(STORE / name, ignore_errors=True)


def insert(name, doc):
    (STORE / name).mkdir(parents=True, exist_ok=True)
    (STORE / name / uuid.uuid4().hex).write_text(doc)


def documents(name):
    return sorted(path.read_text() for path in (STORE / name).iterdir())
"""

# Every worker waits for the others before its first test, so that a collision cannot
# hide behind one worker starting late. Needs os, time, Path and pytest.
RENDEZVOUS = """
@pytest.fixture(scope="session", autouse=True)
def all_workers_started():
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "serial")
    here = Path(__file__).parent / "rendezvous" / run
    here.mkdir(parents=True, exist_ok=True)
    (here / os.environ.get("PYTEST_XDIST_WORKER", "main")).touch()
    expected = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    deadline = time.monotonic() + 10
    while len(list(here.iterdir())) < expected and time.monotonic() < deadline:
        time.sleep(0.01)
"""

# In the runs without the helpers, each worker's first test of a kind waits, after
# clearing what it shares, until a second worker's first test of that kind is there too:
# then both write at once and the collision shows however the scheduler spread the tests
# or how busy the machine is. With the helpers nothing waits: a worker that got no test
# of a kind would keep the others waiting for nothing. Needs os, time and Path.
MEET = """
MET = set()


def meet(kind):
    if (
        kind in MET
        or os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") == "1"
        or os.environ.get("ISOLATE") not in ("0", "none")
    ):
        return
    MET.add(kind)
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "serial")
    here = Path(__file__).parent / "meet" / run / kind
    here.mkdir(parents=True, exist_ok=True)
    (here / os.environ.get("PYTEST_XDIST_WORKER", "main")).touch()
    deadline = time.monotonic() + 30
    while len(list(here.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
"""

CONFTEST = (
    """
import itertools
import os
import time
from pathlib import Path

import pytest

import app

ISOLATE = os.environ.get("ISOLATE") == "1"
COLLECTIONS = ["c0", "c1", "c2"]
ROUND_ROBIN = itertools.count()
"""
    + RENDEZVOUS
    + """

@pytest.fixture(autouse=True)
def sessions_in_worker_dir(request):
    if ISOLATE:
        request.getfixturevalue("testfleet_redirect").attr(app.settings, "data_dir")


@pytest.fixture
def collection(request):
    if ISOLATE:
        return request.getfixturevalue("testfleet_pool")("collections", COLLECTIONS)
    return COLLECTIONS[next(ROUND_ROBIN) % len(COLLECTIONS)]
"""
)

TESTS = (
    """
import os
import time
from pathlib import Path

import pytest

import app
"""
    + MEET
    + """

@pytest.mark.parametrize("n", range(10))
def test_the_most_recent_session_is_mine(n):
    app.cleanup_sessions()
    meet("sessions")
    mine = app.save_session(f"user{n}")
    for _ in range(8):
        time.sleep(0.01)
        assert app.most_recent_session() == mine
    assert [path.name for path in app.sessions_dir().iterdir()] == [mine]


@pytest.mark.parametrize("n", range(10))
def test_my_collection_holds_what_i_inserted(collection, n):
    app.clear_collection(collection)
    meet("collections")
    for i in range(6):
        app.insert(collection, f"{n}-{i}")
        time.sleep(0.01)
    assert app.documents(collection) == [f"{n}-{i}" for i in range(6)]


@pytest.mark.parametrize("n", range(4))
def test_names(testfleet_unique_name, n):
    names = Path(__file__).parent / "names"
    names.mkdir(exist_ok=True)
    made = [testfleet_unique_name("person") for _ in range(25)]
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    (names / f"{worker}-{os.getpid()}-{n}-{time.time_ns()}").write_text("\\n".join(made))
"""
)


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(app=APP, conftest=CONFTEST, test_app=TESTS)
    return pytester


def run(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, isolate: bool | str, *args: str
) -> pytest.RunResult:
    """Run the inner suite with ``ISOLATE`` set to ``1``/``0`` for a bool, else to ``isolate``."""
    monkeypatch.setenv("ISOLATE", isolate if isinstance(isolate, str) else str(int(isolate)))
    # A lock directory of this test's own, so that parallel runs of this file (the
    # outer suite under xdist) do not wait for each other's "collections".
    return suite.runpytest_subprocess(
        "--testfleet-lock-dir", str(suite.path / "locks"), "-p", "no:cacheprovider", *args
    )


def failed_tests(result: pytest.RunResult) -> set[str]:
    return {
        match.group(1)
        for line in result.outlines
        if (match := re.match(r"FAILED test_app\.py::(test_\w+)", line))
    }


@pytest.mark.parametrize("workers", [2, 4])
def test_without_the_helpers_workers_delete_each_others_sessions_and_share_collections(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    result = run(suite, monkeypatch, False, "-n", str(workers), "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # Both collisions show: the shared sessions directory and the shared collection.
    assert failed_tests(result) == {
        "test_the_most_recent_session_is_mine",
        "test_my_collection_holds_what_i_inserted",
    }


def test_the_colliding_suite_passes_in_one_process(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The failures above come from sharing between workers alone.
    run(suite, monkeypatch, False, "-p", "no:xdist", "-p", "no:randomly").assert_outcomes(passed=24)


@pytest.mark.parametrize(
    ("workers", "order"),
    [
        (2, ["-p", "randomly", "--randomly-seed=1"]),
        (4, ["-p", "randomly", "--randomly-seed=2"]),
        (4, ["-p", "randomly", "--randomly-seed=3"]),
    ],
)
def test_with_the_helpers_every_worker_has_its_own_sessions_and_collection(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: int, order: list[str]
) -> None:
    result = run(suite, monkeypatch, True, "-n", str(workers), *order)
    result.assert_outcomes(passed=24)
    # The application's own directory was never used: every worker wrote elsewhere.
    assert not (suite.path / "data").exists()
    # Every name made by every worker is distinct, and so are a second run's.
    second = run(suite, monkeypatch, True, "-p", "no:xdist", *order, "-k", "test_names")
    second.assert_outcomes(passed=4, deselected=20)
    files = list((suite.path / "names").iterdir())
    assert len(files) == 8
    names = [name for path in files for name in path.read_text().split()]
    assert len(names) == len(set(names)) == 200
    assert all(re.fullmatch(r"person[a-z0-9]{12}(w\d+|m)p\d+n\d+", name) for name in names)
    assert len({name[6:18] for name in names}) == 2
    assert len({re.search(r"(w\d+|m)p\d+n", name[18:]).group(1) for name in names}) >= 2


PEOPLE = """
import time


class People:
    \"\"\"The application's people: nodes labelled ``label`` (Person) on the server.\"\"\"

    def __init__(self, session, label="Person"):
        self.session = session
        self.label = label

    def clear(self):
        self.session.run(f"MATCH (n:{self.label}) DETACH DELETE n").consume()

    def add(self, name):
        query = f"CREATE (:{self.label} {{name: $name, at: $at}})"
        self.session.run(query, name=name, at=time.time_ns()).consume()
        return name

    def names(self):
        rows = self.session.run(f"MATCH (n:{self.label}) RETURN n.name AS name").data()
        return sorted(row["name"] for row in rows)

    def newest(self):
        query = f"MATCH (n:{self.label}) RETURN n.name AS name ORDER BY n.at DESC LIMIT 1"
        rows = self.session.run(query).data()
        return rows[0]["name"] if rows else None
"""

PEOPLE_CONFTEST = (
    """
import os
import time
from pathlib import Path

import neo4j
import pytest

from people import People

ISOLATE = os.environ.get("ISOLATE", "none")
"""
    + RENDEZVOUS
    + """

@pytest.fixture(scope="session")
def app_driver():
    # As the application does it: a driver of its own, from the environment.
    password = os.environ.get("NEO4J_PASSWORD")
    auth = (os.environ.get("NEO4J_USER", "neo4j"), password) if password else None
    with neo4j.GraphDatabase.driver(os.environ["NEO4J_URI"], auth=auth) as driver:
        yield driver


@pytest.fixture
def people(request):
    if ISOLATE == "namespace":
        label = request.getfixturevalue("neo4j_label")
        yield People(request.getfixturevalue("neo4j_session"), f"Person:{label}")
    elif ISOLATE == "group":
        yield People(request.getfixturevalue("neo4j_session"))
    else:
        with request.getfixturevalue("app_driver").session() as session:
            yield People(session)
"""
)

PEOPLE_TESTS = (
    """
import json
import os
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent
"""
    + MEET
    + """


@pytest.fixture
def check(request):
    # Who ran the test, and what it read when that was wrong: for the outer test to
    # tell a collision from any other failure.
    (HERE / "ran").mkdir(exist_ok=True)
    (HERE / "ran" / request.node.name).write_text(os.environ.get("PYTEST_XDIST_WORKER", "main"))

    def check(ok, **read):
        if not ok:
            (HERE / "seen").mkdir(exist_ok=True)
            (HERE / "seen" / request.node.name).write_text(json.dumps(read))
        assert ok, read

    return check


@pytest.mark.parametrize("n", range(4))
def test_i_read_back_only_the_people_i_added(request, people, check, n):
    people.clear()
    meet("read")
    mine = []
    for i in range(4):
        mine.append(people.add(f"{request.node.name}#{i}"))
        time.sleep(0.02)
        names = people.names()
        check(names == mine, mine=mine, names=names)


@pytest.mark.parametrize("n", range(4))
def test_the_newest_person_is_mine(request, people, check, n):
    people.clear()
    meet("newest")
    mine = []
    for i in range(4):
        mine.append(people.add(f"{request.node.name}#{i}"))
        time.sleep(0.02)
        newest = people.newest()
        check(newest == mine[-1], mine=mine, names=people.names(), newest=newest)
"""
)


@pytest.fixture
def people_suite(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, neo4j_connection: Connection
) -> pytest.Pytester:
    """The people suite, pointed at the module's Bolt server through ``NEO4J_*``."""
    for name, value in neo4j_connection.environ().items():
        monkeypatch.setenv(name, value)
    pytester.makepyfile(people=PEOPLE, conftest=PEOPLE_CONFTEST, test_people=PEOPLE_TESTS)
    return pytester


def people_failures(result: pytest.RunResult) -> set[str]:
    return {
        match.group(1)
        for line in result.outlines
        if (match := re.match(r"FAILED test_people\.py::(test_\w+\[\d\])", line))
    }


def collisions(suite: pytest.Pytester) -> dict[str, set[str]]:
    """Per failed test, what went wrong in what it read back.

    ``another worker's Person``: a node that a test on another worker wrote;
    ``my Person deleted``: one of its own nodes was gone, another test's cleanup.
    """
    ran = {path.name: path.read_text() for path in (suite.path / "ran").iterdir()}
    found: dict[str, set[str]] = {}
    for path in (suite.path / "seen").iterdir():
        test, read = path.name, json.loads(path.read_text())
        kinds = found.setdefault(test, set())
        names: list[str] = read["names"]
        owners = {name.partition("#")[0] for name in names} - {test}
        if owners:
            assert {ran[owner] for owner in owners}.isdisjoint({ran[test]}), (test, read, ran)
            kinds.add("another worker's Person")
        if set(read["mine"]) - set(names):
            kinds.add("my Person deleted")
        if "newest" in read:
            # The newest Person was not the one it had just written: someone else's, or none.
            newest = read["newest"]
            assert newest != read["mine"][-1]
            assert newest is None or newest.partition("#")[0] != test
    return found


@pytest.mark.parametrize("workers", [2, 4])
def test_without_the_helpers_workers_read_and_delete_each_others_neo4j_nodes(
    people_suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    result = run(people_suite, monkeypatch, "none", "-n", str(workers), "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    outcomes = result.parseoutcomes()
    assert "errors" not in outcomes
    failed = people_failures(result)
    assert outcomes["failed"] == len(failed)
    assert {name.partition("[")[0] for name in failed} == {
        "test_i_read_back_only_the_people_i_added",
        "test_the_newest_person_is_mine",
    }
    # Every failure is a wrong read, and the wrong nodes came from other workers' tests.
    found = collisions(people_suite)
    assert set(found) == failed
    kinds = set().union(*found.values())
    assert "another worker's Person" in kinds
    assert kinds <= {"another worker's Person", "my Person deleted"}


def test_the_colliding_people_suite_passes_in_one_process(
    people_suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The failures above come from sharing the server between workers alone.
    result = run(people_suite, monkeypatch, "none", "-p", "no:xdist", "-p", "no:randomly")
    result.assert_outcomes(passed=8)


@pytest.mark.parametrize(
    ("strategy", "workers", "seed"),
    [("namespace", 2, 1), ("namespace", 4, 2), ("group", 2, 3), ("group", 4, 4)],
)
def test_with_the_helpers_every_neo4j_test_reads_only_its_own_nodes(
    people_suite: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    strategy: str,
    workers: int,
    seed: int,
) -> None:
    result = run(
        people_suite,
        monkeypatch,
        strategy,
        f"--testfleet-neo4j-strategy={strategy}",
        "-n",
        str(workers),
        "-p",
        "randomly",
        f"--randomly-seed={seed}",
    )
    result.assert_outcomes(passed=8)
    ran = {path.read_text() for path in (people_suite.path / "ran").iterdir()}
    assert len(ran) >= 2  # the tests were spread over workers
    assert not (people_suite.path / "seen").exists()
