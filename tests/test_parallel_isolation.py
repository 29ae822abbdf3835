"""Inner suites that collide under xdist without testfleet's helpers, and pass with them.

The application under test keeps its sessions in a directory named by a global
settings object (every worker's tests share ``data/sessions``: cleanup deletes other
workers' files, "the most recent session" is another worker's), and uses a pool of
three collections on a shared store, handed out round-robin by each process (two
workers clear the same collection under each other). With ``ISOLATE=1`` the suite
uses ``testfleet_redirect`` and ``testfleet_pool`` instead; nothing else changes.
"""

from __future__ import annotations

import re

import pytest

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

CONFTEST = """
import itertools
import os
import time
from pathlib import Path

import pytest

import app

ISOLATE = os.environ.get("ISOLATE") == "1"
COLLECTIONS = ["c0", "c1", "c2"]
ROUND_ROBIN = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def all_workers_started():
    # Every worker waits for the others before its first test, so that a collision
    # cannot hide behind one worker starting late.
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "serial")
    here = Path(__file__).parent / "rendezvous" / run
    here.mkdir(parents=True, exist_ok=True)
    (here / os.environ.get("PYTEST_XDIST_WORKER", "main")).touch()
    expected = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    deadline = time.monotonic() + 10
    while len(list(here.iterdir())) < expected and time.monotonic() < deadline:
        time.sleep(0.01)


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

TESTS = """
import os
import time
from pathlib import Path

import pytest

import app


@pytest.mark.parametrize("n", range(10))
def test_the_most_recent_session_is_mine(n):
    app.cleanup_sessions()
    mine = app.save_session(f"user{n}")
    for _ in range(8):
        time.sleep(0.01)
        assert app.most_recent_session() == mine
    assert [path.name for path in app.sessions_dir().iterdir()] == [mine]


@pytest.mark.parametrize("n", range(10))
def test_my_collection_holds_what_i_inserted(collection, n):
    app.clear_collection(collection)
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


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(app=APP, conftest=CONFTEST, test_app=TESTS)
    return pytester


def run(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, isolate: bool, *args: str
) -> pytest.RunResult:
    monkeypatch.setenv("ISOLATE", "1" if isolate else "0")
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
