"""Deciding what to do with each proposed file, checking all of it, then writing it.

Nothing is written until every file has been rendered and every target checked; each
file is replaced in one rename, and a failure part-way puts back the files already
written, so a project ends either as it was or with all of init's files.
"""

from __future__ import annotations

import contextlib
import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from testfleet.core.atomic import write_text_atomic
from testfleet.scaffold.detect import InitError

CREATE = "create"
UPDATE = "update"
REPLACE = "replace"
KEEP = "keep"
SAME = "unchanged"
WRITES = (CREATE, UPDATE, REPLACE)


@dataclass
class Change:
    """One file: what init proposes, what is there, and what it will do."""

    path: str
    proposed: str | None
    existing: str | None
    action: str
    detail: str = ""

    def diff(self) -> str:
        """The unified difference between the file as it is and as init would write it."""
        before = (self.existing or "").splitlines(keepends=True)
        after = (self.proposed or "").splitlines(keepends=True)
        lines = difflib.unified_diff(
            before,
            after,
            fromfile=f"a/{self.path}" if self.existing is not None else "/dev/null",
            tofile=f"b/{self.path}",
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def read_existing(root: Path, path: str) -> str | None:
    """The file's text, None when it does not exist; an unreadable file stops init."""
    target = root / path
    try:
        return target.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        # A directory on the way that is a file: reported by check_writable.
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise InitError(f"{target} cannot be read: {exc}") from None


def decide(root: Path, path: str, proposed: str, *, force: bool) -> Change:
    """Create a missing file, keep a different one (``force``: replace it)."""
    existing = read_existing(root, path)
    if existing is None:
        return Change(path, proposed, None, CREATE)
    if existing == proposed:
        return Change(path, proposed, existing, SAME)
    if force:
        return Change(path, proposed, existing, REPLACE)
    return Change(path, proposed, existing, KEEP, "differs from what init would write")


def _writable_dir(directory: Path) -> Path | None:
    """The directory that must be writable to create files in ``directory``, if it is not."""
    probe = directory
    while not probe.exists():
        probe = probe.parent
    if probe.is_dir() and os.access(probe, os.W_OK | os.X_OK):
        return None
    return probe


def check_writable(root: Path, changes: list[Change]) -> None:
    """Raise InitError naming every file or directory init would fail to write."""
    problems = []
    for change in changes:
        if change.action not in WRITES:
            continue
        target = root / change.path
        blocked = _writable_dir(target.parent)
        if blocked is not None:
            problems.append(f"{blocked} (for {change.path}) is not writable")
        elif target.exists() and not os.access(target, os.W_OK):
            problems.append(f"{target} is not writable")
    if problems:
        raise InitError(
            "nothing was written: " + "; ".join(dict.fromkeys(problems)) + ". Make them "
            "writable (or run init where you may write), then run it again"
        )


def write_all(root: Path, changes: list[Change]) -> None:
    """Write every change, each in one rename; on a failure, undo the ones already written."""
    done: list[Change] = []
    try:
        for change in changes:
            if change.action in WRITES and change.proposed is not None:
                write_text_atomic(root / change.path, change.proposed)
                done.append(change)
    except OSError as exc:
        for change in reversed(done):
            with contextlib.suppress(OSError):
                if change.existing is None:
                    (root / change.path).unlink()
                else:
                    write_text_atomic(root / change.path, change.existing)
        raise InitError(
            f"writing {root / change.path} failed ({exc}); the files written before it were "
            "put back as they were"
        ) from None
