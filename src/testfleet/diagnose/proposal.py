"""What `testfleet bisect` proposes for a polluter: a cleaner, the state it leaves, the fixes.

The data and how it is shown (terminal lines and JSON); `propose` finds it, `fixes` writes
the patches, `state` the changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from testfleet.diagnose.state import Change

#: Changes listed in the terminal; the JSON has them all.
SHOWN_CHANGES = 10


@dataclass
class Suggestion:
    """A patch a person can apply: the new text of some files of the suite, and its diff."""

    title: str
    #: Path relative to the project (the cwd of the run) -> the file's new text.
    files: dict[str, str]
    diff: str
    #: What it resets: one change, or all of them in one conftest.py.
    changes: list[Change]

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "files": sorted(self.files),
            "diff": self.diff,
            "changes": [change.to_json() for change in self.changes],
        }


@dataclass
class Proposal:
    """The cleaner found (if any), the polluter's changes, and the fixes a rerun verified."""

    #: Tests that, run between the polluters and the victim, make the victim pass.
    cleaner: list[str] | None = None
    changes: list[Change] = field(default_factory=list)
    fixes: list[Suggestion] = field(default_factory=list)
    #: Suggestions written and rerun; those that did not make the victim pass were dropped.
    tried: int = 0
    dropped: int = 0
    runs: int = 0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "changes": [change.to_json() for change in self.changes],
            "fixes": [fix.to_json() for fix in self.fixes],
            "tried": self.tried,
            "dropped": self.dropped,
            "runs": self.runs,
            "notes": self.notes,
        }

    def render(self) -> list[str]:
        """Lines for the terminal, after the verdict: the cleaner, the state, the fixes."""
        lines: list[str] = []
        if self.cleaner:
            lines.append(f"  cleaner: {' and '.join(self.cleaner)} (run between them, it passes)")
        lines += [f"  left behind: {c.describe()}" for c in self.changes[:SHOWN_CHANGES]]
        if len(self.changes) > SHOWN_CHANGES:
            lines.append(f"  left behind: {len(self.changes) - SHOWN_CHANGES} more (see --json)")
        if self.tried:
            lines.append(
                f"  fixes: {len(self.fixes)} verified by rerunning the failing order "
                f"({self.tried} tried, {self.dropped} dropped)"
            )
        for number, fix in enumerate(self.fixes, 1):
            lines.append(f"  fix {number}: {fix.title}")
            lines += [f"    {line}" for line in fix.diff.splitlines()]
        lines += [f"  note: {note}" for note in self.notes]
        return lines
