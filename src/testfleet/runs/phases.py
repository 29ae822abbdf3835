"""The pytest runs that make one ``testfleet run``, and the closing line of the whole run.

With testfleet's scheduler (the default) a run is one pytest session: the scheduler keeps
the `serial` tests for the end and runs them on one worker once every other test is done,
so nothing is collected twice. With one of xdist's own ``--dist`` modes the `serial` tests
are deferred and run in a second pytest, started only when the first one deferred some.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testfleet.core import workers as workers_mod
from testfleet.core.atomic import write_json_atomic
from testfleet.runs import commands
from testfleet.scheduling import workercount
from testfleet.timing import closing
from testfleet.timing import report as reports

#: pytest exit statuses that make a later phase pointless: interrupted, internal or usage error.
FATAL_EXITS = (2, 3, 4)

Echo = Callable[[str], None]
#: Told the run's report once it is written, as written.
OnReport = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Phase:
    name: str
    command: list[str]
    report: Path
    #: Run only when the phase before it deferred `serial` tests.
    needs_deferred: bool = False


def plan_phases(
    workers: workers_mod.Workers,
    dist: str,
    pytest_args: Sequence[str],
    scratch: Path,
    durations: Sequence[Path] = (),
) -> list[Phase]:
    """The pytest runs that make one run on ``workers`` workers."""
    first = scratch / "phase-1.json"
    if workers == 1:
        # The rollback: one process, every test in collection order.
        return [
            Phase(
                "one process",
                commands.run_phase(pytest_args, workers=1, dist=dist, report=first),
                first,
            )
        ]
    if dist == commands.TESTFLEET_DIST:
        return [
            Phase(
                f"{workers} workers, `serial` tests last on one of them",
                commands.run_phase(
                    pytest_args, workers=workers, dist=dist, report=first, durations=durations
                ),
                first,
            )
        ]
    second = scratch / "phase-2.json"
    return [
        Phase(
            f"parallel ({workers} workers)",
            commands.run_phase(
                pytest_args, workers=workers, dist=dist, report=first, serial="defer"
            ),
            first,
        ),
        Phase(
            "serial-marked tests, one process",
            commands.run_phase(pytest_args, workers=1, dist=dist, report=second, serial="only"),
            second,
            needs_deferred=True,
        ),
    ]


def _deferred(report: Path) -> int:
    """How many `serial` tests the phase that wrote ``report`` left for a later one."""
    try:
        run = reports.load(report)["run"]
    except reports.ReportError:
        # The missing report is reported after the phases; run the next phase meanwhile.
        return 1
    return int(run.get("serial_deferred", 1))


def run_phases(
    workers: workers_mod.Workers,
    pytest_args: Sequence[str],
    report: Path,
    dist: str = commands.DEFAULT_DIST,
    echo: Echo = print,
    durations: Sequence[Path] = (),
    on_report: OnReport | None = None,
    in_process: bool = False,
) -> int:
    """Run the phases, merge their timing reports into ``report`` and return the exit status.

    The last line printed is the whole run's closing line, in pytest's form. ``on_report``
    gets the report once it is written (the history records it without reading it again).
    ``in_process``: the first phase runs in this process (see :func:`pytest_here`).
    """
    started = time.monotonic()
    if workers == "auto":
        choice = workercount.choose_from(Path.cwd(), durations)
        echo(f"testfleet: --workers auto: {choice.describe()}")
        workers = choice.workers
    report.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".testfleet-phases-", dir=report.parent) as tmp:
        planned = plan_phases(workers, dist, pytest_args, Path(tmp), durations)
        ran, statuses = _run_each(planned, echo, in_process)
        if statuses and statuses[-1] in FATAL_EXITS:
            return statuses[-1]
        # Every phase wrote to the scratch directory: a phase that wrote nothing cannot
        # pass off the report of an earlier run as this one's.
        missing = [phase.name for phase in ran if not phase.report.exists()]
        if missing:
            echo(
                f"testfleet: no timing report from {', '.join(missing)} (was the testfleet "
                f"plugin disabled, or only collecting?); {report} is left as it was"
            )
            return reports.combine_exit_statuses(statuses) or 1
        loaded = [reports.load(phase.report) for phase in ran]
        if len(loaded) == 1:
            # The phase's report is the run's: moved into place in one rename (the scratch
            # directory is beside it), not written again.
            final = loaded[0]
            ran[0].report.replace(report)
        else:
            final = reports.merge(loaded, [p.name for p in ran])
            write_json_atomic(report, final)
    echo(f"testfleet: timing report of {final['summary']['tests']} tests written to {report}")
    if on_report is not None:
        on_report(final)
    echo(closing.closing_line(run_counts(loaded), time.monotonic() - started))
    return reports.combine_exit_statuses(statuses)


def _run_each(
    planned: Sequence[Phase], echo: Echo, in_process: bool
) -> tuple[list[Phase], list[int]]:
    """Run the phases in turn: the phases that ran and their exit statuses.

    A phase of deferred tests runs only when the phase before it deferred some; a fatal
    exit status (the last one returned) stops the run.
    """
    ran: list[Phase] = []
    statuses: list[int] = []
    for number, phase in enumerate(planned, 1):
        if phase.needs_deferred and ran and not _deferred(ran[-1].report):
            continue
        echo(f"testfleet: phase {number}, {phase.name}: {shlex.join(phase.command)}")
        if in_process and number == 1:
            status = pytest_here(phase.command)
        else:
            status = subprocess.call(phase.command)
        ran.append(phase)
        statuses.append(status)
        if status in FATAL_EXITS:
            if number < len(planned):
                echo(
                    f"testfleet: phase {number} ended with exit status {status}; "
                    "later phases skipped"
                )
            break
    return ran, statuses


def pytest_here(command: Sequence[str]) -> int:
    """Run ``python -m pytest ARGS`` (``command``) in this process; its exit status.

    A second interpreter would import Python, pytest and testfleet again before its first
    test: about a tenth of a second that plain ``pytest -n N`` does not pay. Only the first
    phase runs here: a pytest session leaves its test modules imported, so a later one
    gets a fresh process. As under ``python -m pytest``, the current directory goes first
    on ``sys.path`` (unless ``PYTHONSAFEPATH`` says not to) and ``sys.argv`` is pytest's;
    the directory, ``sys.path`` and ``sys.argv`` are restored after the session.
    """
    if list(command[:3]) != commands.pytest_command([]):
        return subprocess.call(command)
    import pytest

    directory = Path.cwd()
    path, argv = list(sys.path), sys.argv
    if not sys.flags.safe_path:
        sys.path.insert(0, str(directory))
    sys.argv = [str(Path(pytest.__file__).with_name("__main__.py")), *command[3:]]
    try:
        return int(pytest.main(list(command[3:])))
    except SystemExit as exc:
        # Raised past pytest's own handling (a conftest exiting at import, for one): what
        # the interpreter would have printed and returned.
        code = exc.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    except Exception:
        # pytest let it through (a plugin that fails to import, for one): the traceback
        # and status a `python -m pytest` would have ended with.
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.chdir(directory)
        sys.path[:] = path
        sys.argv = argv


def run_counts(phase_reports: Sequence[dict[str, Any]]) -> dict[str, int]:
    """The closing line's counts over every phase of the run."""
    parts = []
    deselected = 0
    for data in phase_reports:
        counts = data["run"].get("counts")
        if not isinstance(counts, dict):
            counts = closing.counts_from_outcomes(data["summary"]["outcomes"])
        # Every phase collects the same suite, so what the user deselected (-k, -m) was
        # deselected by each of them and counts once; xdist's controller counts none.
        deselected = max(deselected, int(counts.get("deselected", 0)))
        parts.append({key: value for key, value in counts.items() if key != "deselected"})
    total = closing.add_counts(parts)
    if deselected:
        total["deselected"] = deselected
    return total
