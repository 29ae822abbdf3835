"""Files replaced in one rename: a reader sees the old file or the whole new one, never half."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from testfleet.timing.records import dumps_report


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON so that ``path`` holds either the old file or the whole new one.

    The text goes to a temporary file in the same directory, is flushed to disk and
    then renamed over ``path``; a failure at any point removes the temporary file.
    """
    text = (
        dumps_report(data)
        if isinstance(data, dict) and "tests" in data
        else json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    )
    write_text_atomic(path, text)


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename (see :func:`write_json_atomic`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates the file as 0600; a report is an ordinary file.
        tmp.chmod(0o644)
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def append_text_atomic(path: Path, text: str) -> None:
    """Add ``text`` at the end of ``path`` (created if missing), replacing it in one rename.

    For sections of a summary that several commands write in turn: a reader never sees
    half a section, and a failure leaves the file as it was.
    """
    try:
        before = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        before = ""
    if before and not before.endswith("\n"):
        before += "\n"
    write_text_atomic(path, before + text)
