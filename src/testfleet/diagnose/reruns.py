"""The reruns of `testfleet classify`: which tests run again, how, and what they showed.

Every rerun is one pytest process whose tests reach it through an order file
(`--testfleet-order-file`), so that a context of thousands of tests needs no long command
line. Four kinds, each run only where the earlier ones leave the class open:

- in order context: the tests that ran before the failed one on its worker, then it;
- alone: the failed test in a process of its own;
- in suite order: the whole suite serially, once, for failures of a parallel run that
  fail in their context and alone: they may need a test that ran on another worker;
- beside its neighbours: under ``-n 2``, the failed test with the tests that ran before
  it or at the same time on any worker, for failures that pass every serial rerun:
  only a failure there tells parallel-only from flaky.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from testfleet.diagnose.probes import randomly_args, xdist_off
from testfleet.runs import commands
from testfleet.scheduling import ordering
from testfleet.timing import report as reports

#: What a rerun that did not list the test counts as (collection differed): a failure.
MISSING = "missing"
FAILED_OUTCOMES = ("failed", "error")
#: pytest exit statuses after which a rerun's outcomes cannot be trusted.
BROKEN_EXITS = (
    commands.ExitCode.INTERRUPTED,
    commands.ExitCode.INTERNAL_ERROR,
    commands.ExitCode.USAGE_ERROR,
)
#: Workers of the rerun beside the neighbours.
BESIDE_WORKERS = 2

Echo = Callable[[str], None]
#: Runs one pytest command line and returns its exit status and output.
Runner = Callable[[list[str]], tuple[int, str]]


class RerunError(Exception):
    """A rerun that could not run its tests (usage or internal error, interrupted)."""


def run_quietly(command: list[str]) -> tuple[int, str]:
    """Run ``command``, keeping its output for the error message of a broken rerun."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout + done.stderr


def failed(outcome: str) -> bool:
    return outcome in (*FAILED_OUTCOMES, MISSING)


def rerun_command(
    nodeids: Sequence[str], pytest_args: Sequence[str], report: Path | None = None
) -> list[str]:
    """One serial pytest run of ``nodeids`` in that order (no xdist, no random order).

    The node ids are on the command line: this is the command shown to a person. The
    reruns themselves pass them in an order file (``order_file_command``).
    """
    return commands.pytest_command(
        [
            *xdist_off(pytest_args),
            *randomly_args(None, pytest_args),
            *([f"--testfleet-report={report}"] if report is not None else []),
            *pytest_args,
            *nodeids,
        ]
    )


def order_file_command(
    nodeids: Sequence[str],
    pytest_args: Sequence[str],
    report: Path,
    order: Path,
    workers: int = 0,
) -> list[str]:
    """A rerun of ``nodeids`` read from ``order`` (written here); ``workers`` > 0 uses xdist."""
    ordering.write_order_file(order, nodeids)
    files = ordering.unique(nodeid.split("::", 1)[0] for nodeid in nodeids)
    parallel = ["-n", str(workers), "--dist", "loadgroup"] if workers else xdist_off(pytest_args)
    return commands.pytest_command(
        [
            *parallel,
            *randomly_args(None, pytest_args),
            f"--testfleet-order-file={order}",
            f"--testfleet-report={report}",
            *pytest_args,
            *files,
        ]
    )


def suite_command(pytest_args: Sequence[str], report: Path) -> list[str]:
    """The whole suite, serially, in its own collection order."""
    return commands.pytest_command(
        [
            *xdist_off(pytest_args),
            *randomly_args(None, pytest_args),
            f"--testfleet-report={report}",
            *pytest_args,
        ]
    )


def shown(command: Sequence[str], tests: int) -> str:
    """A command for the terminal: its options, and how many tests it runs (not their ids)."""
    options = [arg for arg in command if not (arg.endswith(".py") or "::" in arg)]
    files = len(command) - len(options)
    what = f" ({tests} tests" + (f" from {files} files)" if files else ")")
    return shlex.join(options) + what


def run_report(
    command: list[str], report: Path, tests: int, echo: Echo | None, runner: Runner
) -> list[dict[str, Any]]:
    """Run ``command`` and return the records of the report it wrote (first attempts)."""
    if echo is not None:
        echo(f"testfleet: {shown(command, tests)}")
    status, output = runner(command)
    missing = [p for p in command if p.startswith("--testfleet-order-file=")]
    gone = ordering.read_missing(Path(missing[0].split("=", 1)[1])) if missing else None
    if status in BROKEN_EXITS and gone:
        raise RerunError(
            f"{len(gone)} tests of the run are not collected any more ({', '.join(gone[:3])}"
            f"{', ...' if len(gone) > 3 else ''}): the suite changed since that run; "
            "classify a new run's report"
        )
    if status in BROKEN_EXITS or not report.exists():
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise RerunError(
            f"a rerun ended with exit status {status} without running its tests; "
            f"run it yourself to see why: {shlex.join(command)}\n{tail}"
        )
    return [dict(t) for t in reports.load(report)["tests"]]


def outcome_of(
    records: Sequence[Mapping[str, Any]], nodeid: str, mode: str, kept: list[dict[str, Any]]
) -> str:
    """The outcome of ``nodeid`` in a rerun's records; its record is kept with ``mode``."""
    for record in records:
        if record["nodeid"] == nodeid:
            kept.append({**record, "rerun": mode})
            return str(record["outcome"])
    return MISSING
