"""The closing line of a whole run, in pytest's own words and form.

CI tools read the last ``=== ... ===`` line of a run to learn what ran: a run made of
several pytest processes has to end with one line that counts all of them.
"""

from __future__ import annotations

import datetime
import shutil
from collections.abc import Iterable, Mapping
from typing import Any

#: pytest's order of the words in its closing line (``_pytest.terminal.KNOWN_TYPES``).
KNOWN_WORDS = (
    "failed",
    "passed",
    "skipped",
    "deselected",
    "xfailed",
    "xpassed",
    "warnings",
    "error",
)


def counts_from_stats(
    stats: Mapping[str, Iterable[Any]], own_deselected: int = 0
) -> dict[str, int]:
    """Counts per word from a terminal reporter's ``stats``, as pytest counts them.

    ``own_deselected`` items were left out by testfleet for another phase of the same run,
    not by the user: they are not deselected from the run's point of view.
    """
    counts: dict[str, int] = {}
    for key, values in stats.items():
        if not key:
            # Passed setup and teardown reports.
            continue
        if key == "warnings":
            count = sum(1 for _ in values)
        else:
            count = sum(1 for value in values if getattr(value, "count_towards_summary", True))
        if key == "deselected":
            count -= own_deselected
        if count > 0:
            counts[key] = count
    return counts


def counts_from_outcomes(outcomes: Mapping[str, int]) -> dict[str, int]:
    """Counts per word from a report's outcome summary (a report without ``run.counts``)."""
    return {key: int(value) for key, value in outcomes.items() if int(value) > 0}


def add_counts(parts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in parts:
        for key, value in part.items():
            total[key] = total.get(key, 0) + int(value)
    return total


def _word(count: int, key: str) -> str:
    # pytest's pluralize(): only these change with the count.
    if key == "error":
        return "error" if count == 1 else "errors"
    if key == "warnings":
        return "warning" if count == 1 else "warnings"
    return key


def format_duration(seconds: float) -> str:
    """pytest's ``format_session_duration``."""
    if seconds < 60:
        return f"{seconds:.2f}s"
    return f"{seconds:.2f}s ({datetime.timedelta(seconds=int(seconds))})"


def summary_text(counts: Mapping[str, int], seconds: float) -> str:
    """``8 passed, 1 failed in 2.31s`` style text, words in pytest's order."""
    unknown = [key for key in counts if key not in KNOWN_WORDS]
    parts = [
        f"{counts[key]} {_word(counts[key], key)}"
        for key in [*KNOWN_WORDS, *unknown]
        if counts.get(key, 0) > 0
    ]
    return f"{', '.join(parts) or 'no tests ran'} in {format_duration(seconds)}"


def terminal_width() -> int:
    """pytest's ``get_terminal_width``."""
    width = shutil.get_terminal_size(fallback=(80, 24)).columns
    return width if width >= 40 else 80


def closing_line(counts: Mapping[str, int], seconds: float, width: int | None = None) -> str:
    """The whole run's closing line, ``==== 308 passed, 2 skipped in 104.45s ====``."""
    title = summary_text(counts, seconds)
    full = terminal_width() if width is None else width
    fill = "=" * max((full - len(title) - 2) // 2, 1)
    line = f"{fill} {title} {fill}"
    return line + "=" if len(line) + 1 <= full else line
