"""A finished process leaves at once, yet keeps what an ordinary exit keeps."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = """
import atexit, gzip, sys, threading
from pathlib import Path
from testfleet.core import leave

here = Path(sys.argv[1])
atexit.register(lambda: (here / "atexit").write_text("ran"))
# A file a test left open, its last lines still in its buffer.
LEFT_OPEN = open(here / "left-open.txt", "w")
LEFT_OPEN.write("buffered line\\n")
# A compressed writer left open: closing it writes its trailer.
PACKED = gzip.open(here / "packed.gz", "wt")
PACKED.write("packed line\\n")
sys.stdout.write("no newline yet")
if sys.argv[2] == "traced":
    sys.settrace(lambda *args: None)
    leave.leave(3)
    sys.settrace(None)
    sys.stdout.write(" | returned: traced")
elif sys.argv[2] == "thread":
    done = threading.Event()
    threading.Thread(target=done.wait).start()
    leave.leave(3)
    sys.stdout.write(" | returned: a thread runs")
    done.set()
else:
    leave.leave(3)
    sys.stdout.write(" | not reached")
"""


def untraced() -> dict[str, str]:
    """This environment less coverage's variables: a measured child would not leave."""
    return {
        name: value
        for name, value in os.environ.items()
        if name not in ("COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG")
    }


def run_script(tmp_path: Path, mode: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(SCRIPT), encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(script), str(tmp_path), mode],
        capture_output=True,
        text=True,
        timeout=60,
        env=untraced(),
    )


def test_leaving_runs_exit_handlers_and_flushes_open_files_and_streams(tmp_path: Path) -> None:
    done = run_script(tmp_path, "alone")
    assert done.returncode == 3, done.stderr
    assert done.stdout == "no newline yet"
    assert (tmp_path / "atexit").read_text() == "ran"
    assert (tmp_path / "left-open.txt").read_text() == "buffered line\n"
    with gzip.open(tmp_path / "packed.gz", "rt") as packed:
        assert packed.read() == "packed line\n"


@pytest.mark.parametrize(("mode", "why"), [("thread", "a thread runs"), ("traced", "traced")])
def test_a_running_thread_or_a_tracer_keeps_the_ordinary_exit(
    tmp_path: Path, mode: str, why: str
) -> None:
    done = run_script(tmp_path, mode)
    # leave() returned, and the script ended the ordinary way.
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"no newline yet | returned: {why}"
    assert (tmp_path / "atexit").read_text() == "ran"
    assert (tmp_path / "left-open.txt").read_text() == "buffered line\n"


WORKER_SUITE = """
import atexit, os
from pathlib import Path

WORKER = os.environ["PYTEST_XDIST_WORKER"]
OUT = Path(os.environ["LEAVE_OUT"])
atexit.register(lambda: (OUT / f"{WORKER}.atexit").write_text("ran"))
LEFT_OPEN = open(OUT / f"{WORKER}.log", "w")


class Freed:
    # Runs when the interpreter frees its objects at an ordinary exit, not after leave().
    def __del__(self):
        (OUT / f"{WORKER}.freed").write_text("freed")


HEAP = Freed()

def test_leaves_a_line_unflushed(request):
    LEFT_OPEN.write("from a test\\n")
    offered = "testfleet_leave" in request.config.workerinput
    print("OFFERED", offered)
"""


@pytest.mark.parametrize(
    ("options", "offered"),
    [(("--testfleet-scheduler",), True), ((), False)],
    ids=["scheduled", "plain-xdist"],
)
def test_workers_of_a_scheduled_run_leave_at_once_and_lose_nothing(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    options: tuple[str, ...],
    offered: bool,
) -> None:
    out = pytester.mkdir("out")
    monkeypatch.setenv("LEAVE_OUT", str(out))
    for name in ("COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_leave_suite=WORKER_SUITE)
    pytester.makepyfile(test_more="\n".join(f"def test_{n}():\n    pass\n" for n in range(6)))
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-n", "2", "-rA", *options)
    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines([f"OFFERED {offered}"])
    # xdist took the end as an ordinary one: no worker reported down or replaced.
    result.stdout.no_fnmatch_line("*node down*")
    result.stdout.no_fnmatch_line("*Not properly terminated*")
    assert result.ret == 0
    assert sorted(p.name for p in out.glob("*.atexit")) == ["gw0.atexit", "gw1.atexit"]
    logs = "".join(p.read_text() for p in out.glob("*.log"))
    assert logs == "from a test\n"
    # The heap was left as it was (that is the time saved) only where it was offered.
    assert len(list(out.glob("*.freed"))) == (0 if offered else 2)
