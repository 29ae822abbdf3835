"""Resource pools: one holder per slot, a timeout that says who holds what, crash-safe."""

from __future__ import annotations

import fcntl
import json
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from testfleet.isolation import pools


def test_a_slot_is_held_by_one_holder_at_a_time_when_holders_outnumber_slots(
    tmp_path: Path,
) -> None:
    # Separate Pool objects, as in separate workers: flock locks belong to open files,
    # so threads of one process exclude each other just as processes do.
    inside: dict[str, int] = {"a": 0, "b": 0}
    most: dict[str, int] = {"a": 0, "b": 0}
    guard = threading.Lock()
    errors: list[BaseException] = []

    def worker(number: int) -> None:
        pool = pools.Pool("things", ["a", "b"], lock_dir=tmp_path, timeout=10)
        try:
            for _ in range(4):
                with pool.slot({"worker": f"t{number}"}, prefer=number) as slot:
                    with guard:
                        inside[slot] += 1
                        most[slot] = max(most[slot], inside[slot])
                    time.sleep(0.01)
                    with guard:
                        inside[slot] -= 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert most == {"a": 1, "b": 1}


def test_a_waiting_holder_gets_the_slot_as_soon_as_it_is_released(tmp_path: Path) -> None:
    first = pools.Pool("one", 1, lock_dir=tmp_path).acquire()
    threading.Timer(0.3, first.release).start()
    began = time.monotonic()
    with pools.Pool("one", 1, lock_dir=tmp_path).slot(timeout=10) as slot:
        assert slot == "0"
        assert time.monotonic() - began >= 0.25
    assert not first.held


def test_the_timeout_error_names_the_pool_its_slots_and_who_holds_them(tmp_path: Path) -> None:
    holder = {"worker": "gw3", "test": "tests/test_db.py::test_write", "run": "abc123"}
    pool = pools.Pool("collections", ["c0", "c1"], lock_dir=tmp_path)
    with pool.slot(holder), pool.slot(holder):
        began = time.monotonic()
        with pytest.raises(pools.PoolTimeout) as caught:
            pools.Pool("collections", ["c0", "c1"], lock_dir=tmp_path).acquire(timeout=0.2)
        assert time.monotonic() - began >= 0.2
    message = str(caught.value)
    assert message.startswith(
        f"pool 'collections': no slot became free within 0.2 s (2 slots, lock files in "
        f"{tmp_path / 'collections'}); held: 'c0' by worker gw3, test tests/test_db.py::test_write"
        ", pid "
    )
    assert "'c1' by worker gw3" in message
    assert message.endswith(
        "give the pool more slots, run fewer workers (-n), or raise the timeout "
        "(timeout=, or --testfleet-pool-timeout)."
    )
    # Released slots are free again, and no one is named as holding them.
    assert pool.holders() == {}
    with pool.slot(timeout=0) as slot:
        assert slot == "c0"


HOLD_AND_WAIT = """
import sys
from pathlib import Path
from testfleet.isolation.pools import Pool

lease = Pool("crashy", 1, lock_dir=Path(sys.argv[1])).acquire({"worker": "gw7"})
print("held", flush=True)
sys.stdin.read()
"""


def test_pool_slot_is_released_when_its_holder_crashes(tmp_path: Path) -> None:
    pool = pools.Pool("crashy", 1, lock_dir=tmp_path)
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_WAIT, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline() == "held\n"
            with pytest.raises(pools.PoolTimeout, match=r"'0' by worker gw7, pid \d+"):
                pool.acquire(timeout=0)
            holder.send_signal(signal.SIGKILL)
            assert holder.wait(10) == -signal.SIGKILL
        finally:
            if holder.poll() is None:
                holder.kill()
    with pool.slot(timeout=0) as slot:
        assert slot == "0"


def test_the_default_lock_directory_is_machine_wide_and_usable_by_every_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    pool = pools.Pool("shared", 1)
    assert pool.lock_dir == tmp_path / "testfleet-locks"
    with pool.slot({"worker": "main"}):
        record = json.loads(pool.path("0").read_text())
        assert record["worker"] == "main"
    for directory in (pool.lock_dir, pool.directory):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o1777
    assert stat.S_IMODE(pool.path("0").stat().st_mode) == 0o666
    # A released slot keeps its lock file, emptied of the holder's record.
    assert pool.path("0").read_text() == ""


def test_remove_unused_deletes_free_slots_files_and_keeps_held_ones(tmp_path: Path) -> None:
    pool = pools.Pool("per-run", ["a", "b"], lock_dir=tmp_path)
    first, second = pool.acquire(timeout=0), pool.acquire(timeout=0)
    first.release()
    assert pool.remove_unused() == ["a"]
    assert [p.name for p in pool.directory.iterdir()] == ["b.lock"]
    assert second.held
    second.release()
    assert pool.remove_unused() == ["b"]
    assert list(tmp_path.iterdir()) == []


def test_a_lock_file_deleted_between_open_and_lock_does_not_give_a_second_holder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = pools.Pool("racy", 1, lock_dir=tmp_path)
    newcomer = pools.Pool("racy", 1, lock_dir=tmp_path)
    real_flock = fcntl.flock
    leases: list[pools.Lease] = []
    raced: list[bool] = []

    def flock_after_a_cleanup(fd: int, operation: int) -> None:
        if not raced and operation & fcntl.LOCK_EX:
            raced.append(True)
            # Between our open and our lock: a cleanup deletes the file and a newcomer
            # creates and holds a new one.
            pool.path("0").unlink()
            leases.append(newcomer.acquire(timeout=0))
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock_after_a_cleanup)
    with pytest.raises(pools.PoolTimeout):
        pool.acquire(timeout=0)
    monkeypatch.undo()
    leases[0].release()
    with pool.slot(timeout=0) as slot:
        assert slot == "0"


def test_the_lock_directory_comes_from_the_option_then_the_environment() -> None:
    assert pools.configured_lock_dir(None, {}) is None
    assert pools.configured_lock_dir(None, {"TESTFLEET_LOCK_DIR": "/srv/locks"}) == Path(
        "/srv/locks"
    )
    assert pools.configured_lock_dir("/opt/l", {"TESTFLEET_LOCK_DIR": "/srv/locks"}) == Path(
        "/opt/l"
    )


@pytest.mark.parametrize(
    ("name", "slots", "message"),
    [
        ("../etc", 2, "pool name '../etc' is not usable as a file name"),
        ("db", 0, "pool 'db' needs at least one slot, not 0"),
        ("db", [], "pool 'db' needs at least one slot"),
        ("db", "abc", "give the slots as a list of names, not a str"),
        ("db", ["a", "a", "b"], "pool 'db' names slots twice: a"),
        ("db", ["ok", "no/slash"], "slot name 'no/slash' is not usable as a file name"),
    ],
)
def test_a_badly_defined_pool_is_refused_with_a_message(
    tmp_path: Path, name: str, slots: int | list[str], message: str
) -> None:
    with pytest.raises(pools.PoolError, match=message.replace(".", r"\.")):
        pools.Pool(name, slots, lock_dir=tmp_path)


# Two tests and two workers: xdist gives one test to each.
FIXTURE_SUITE = """
import time
from pathlib import Path

HELD = Path(__file__).parent / "held"

def test_holds_the_only_slot(testfleet_pool):
    assert testfleet_pool("printers", ["p0"]) == "p0"
    HELD.touch()
    time.sleep(1.5)

def test_waits_in_vain(testfleet_pool):
    deadline = time.monotonic() + 10
    while not HELD.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    testfleet_pool("printers", ["p0"])
"""


def test_the_pool_fixture_holds_a_slot_for_the_test_and_errors_after_the_pool_timeout(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_printers=FIXTURE_SUITE)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        "-n",
        "2",
        "--testfleet-lock-dir",
        str(pytester.path / "locks"),
        "--testfleet-pool-timeout",
        "0.5",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*PoolTimeout: pool 'printers': no slot became free within 0.5 s (1 slots, lock files "
            f"in {pytester.path / 'locks' / 'printers'}); held: 'p0' by worker gw*, "
            "test test_printers.py::test_holds_the_only_slot, pid *, run *",
        ]
    )
    # The holder's slot was released at its teardown.
    with pools.Pool("printers", ["p0"], lock_dir=pytester.path / "locks").slot(timeout=0):
        pass


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--testfleet-pool-timeout", "soon"], "'soon' is not a number of seconds: use e.g. 60"),
        (["--testfleet-pool-timeout", "-1"], "'-1' is not a usable number of seconds: use 0"),
        (["--testfleet-lock-dir", "afile"], "'afile' is a file: give a directory for the lock"),
    ],
)
def test_bad_pool_options_are_usage_errors_that_say_what_to_give(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    pytester.makefile("", afile="")
    pytester.makepyfile("def test_a():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])
