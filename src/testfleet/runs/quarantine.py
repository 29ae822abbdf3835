"""The quarantined tests of a CI run: left out of the main run, run apart, summarised.

A team lists the tests it quarantines in a file (the setting ``quarantine``): one node
id a line, why after a ``#``; `testfleet history` prints the candidates and their
reasons. `invoke ci` then leaves them out of the main run (``--deselect``), runs them
apart, serially, in a run that cannot fail CI, and adds a table to the CI summary: each
quarantined test, why, and how it did. A test leaves the quarantine when its line is
removed from the file; the table shows when it passes again.

The list is a file the team keeps, not one recomputed from the history at each run: a
test left out of the main runs can no longer show the history that it was fixed, so a
list from the history alone would never let it go.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testfleet.core import paths
from testfleet.scheduling.ordering import missing_file, read_missing, unique, write_order_file
from testfleet.timing import closing
from testfleet.timing import report as reports

#: The order file of the quarantined tests' run (``--testfleet-order-file``).
ORDER_FILE = paths.REPORTS_DIR / "quarantine.txt"
#: The timing report of that run, apart from the main run's.
REPORT = paths.REPORTS_DIR / "quarantine-timing.json"
#: The outcome shown for a listed test that pytest did not collect.
NOT_COLLECTED = "not collected"
#: ... and for a test of a run that wrote no report.
NOT_RUN = "not run"


class QuarantineError(ValueError):
    """The quarantine file cannot be read; the message names it and says what to do."""


@dataclass(frozen=True)
class Quarantined:
    """One quarantined test and why."""

    nodeid: str
    reason: str


def read_list(path: Path) -> list[Quarantined]:
    """The tests of a quarantine file: ``NODEID  # why`` a line; blank and ``#`` lines skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QuarantineError(
            f"quarantine file {path}: no such file; list one node id a line (why after #), "
            "or unset the quarantine setting"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise QuarantineError(f"quarantine file {path}: cannot be read ({exc})") from None
    found: dict[str, str] = {}
    for line in text.splitlines():
        nodeid, _, reason = line.partition(" #")
        nodeid = nodeid.strip()
        if nodeid and not nodeid.startswith("#"):
            found.setdefault(nodeid, reason.strip())
    return [Quarantined(nodeid, reason) for nodeid, reason in found.items()]


def deselect_args(held: Sequence[Quarantined]) -> str:
    """The main run's pytest options that leave the quarantined tests out, shell-quoted."""
    return shlex.join(arg for test in held for arg in ("--deselect", test.nodeid))


def prepare(held: Sequence[Quarantined]) -> str:
    """Write the run's order file, remove an earlier run's results: the run's pytest options."""
    write_order_file(ORDER_FILE, unique(test.nodeid for test in held))
    missing_file(ORDER_FILE).unlink(missing_ok=True)
    REPORT.unlink(missing_ok=True)
    return shlex.join([f"--testfleet-order-file={ORDER_FILE}"])


def outcomes(held: Sequence[Quarantined]) -> dict[str, str]:
    """Each quarantined test's outcome in the run apart (its last attempt)."""
    missing = set(read_missing(ORDER_FILE) or ())
    try:
        data = reports.load(REPORT, fields=("outcome",))
    except reports.ReportError:
        data = {"tests": []}
    seen = {str(test["nodeid"]): str(test["outcome"]) for test in data["tests"]}
    return {
        test.nodeid: NOT_COLLECTED if test.nodeid in missing else seen.get(test.nodeid, NOT_RUN)
        for test in held
    }


def headline(held: Sequence[Quarantined], got: Mapping[str, str]) -> str:
    """One line for the terminal: how the quarantined tests did."""
    counts: dict[str, int] = {}
    for test in held:
        counts[got[test.nodeid]] = counts.get(got[test.nodeid], 0) + 1
    said = ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items()))
    return f"testfleet: {len(held)} quarantined test(s) run apart: {said}; they do not fail the run"


def markdown(held: Sequence[Quarantined], got: Mapping[str, str], source: Path) -> str:
    """The CI summary's section: each quarantined test, why, and its outcome apart."""
    lines = [
        "## Quarantined tests",
        "",
        f"Listed in `{source}`: left out of the run above and run apart, serially; "
        "their outcomes do not fail the run. Remove a line when its test is fixed.",
        "",
        "| test | why | outcome apart |",
        "|---|---|---|",
    ]
    for test in held:
        why = (test.reason or "-").replace("|", "\\|")
        lines.append(f"| `{test.nodeid}` | {why} | {got[test.nodeid]} |")
    return "\n".join(lines) + "\n"


def closing_again(report: Path) -> str | None:
    """The main run's closing line, to print once more after the run apart; None without one.

    CI tools read the last ``=== ... ===`` line of the output for what ran: the quarantined
    tests' own run must not be taken for the whole run.
    """
    try:
        data: dict[str, Any] = reports.load(report, fields=("outcome",))
    except reports.ReportError:
        return None
    counts = data["run"].get("counts")
    if not isinstance(counts, dict):
        counts = closing.counts_from_outcomes(data["summary"]["outcomes"])
    seconds = float(data["run"].get("wall_seconds") or 0.0)
    return closing.closing_line(counts, seconds)
