"""Record runs into the history: after each `testfleet run`, or from old timing reports."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from testfleet.history import settings
from testfleet.history.store import (
    DEFAULT_KEEP_RUNS,
    DEFAULT_TIMEOUT,
    HistoryError,
    open_history,
    prune,
    reclaim,
    record,
    transaction,
)
from testfleet.timing import report as reports

CLASSIFICATION_SCHEMA = "testfleet.classification/1"
#: Where CI services name the branch and the CI run, in the order they are tried.
BRANCH_VARIABLES = ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME", "BRANCH_NAME")
CI_RUN_VARIABLES = ("GITHUB_RUN_ID", "CI_PIPELINE_ID", "BUILD_ID", "BUILD_NUMBER")

Echo = Callable[[str], None]


def git_branch(cwd: Path) -> str | None:
    """The checked-out branch of the repository at ``cwd``, from .git/HEAD."""
    for directory in (cwd, *cwd.parents):
        dot_git = directory / ".git"
        if dot_git.exists():
            head = dot_git / "HEAD"
            if dot_git.is_file():
                # A worktree: .git names the real git directory.
                text = dot_git.read_text(encoding="utf-8").strip()
                head = Path(text.removeprefix("gitdir:").strip()) / "HEAD"
            try:
                ref = head.read_text(encoding="utf-8").strip()
            except OSError:
                return None
            return ref.removeprefix("ref: refs/heads/") if ref.startswith("ref: ") else None
    return None


def live_meta(cwd: Path, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What a run just made knows about itself beyond its report: branch and CI run."""
    env = os.environ if environ is None else environ
    branch = next((env[v] for v in BRANCH_VARIABLES if env.get(v, "").strip()), None)
    ci_run = next((env[v] for v in CI_RUN_VARIABLES if env.get(v, "").strip()), None)
    return {"branch": branch or git_branch(cwd), "ci_run_id": ci_run, "source": "run"}


def load_classes(path: Path) -> dict[str, str]:
    """node id -> class from a ``testfleet classify`` result file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HistoryError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HistoryError(f"{path}: cannot be read as JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != CLASSIFICATION_SCHEMA:
        raise HistoryError(
            f"{path}: not a classification written by `testfleet classify` "
            f"(expected schema {CLASSIFICATION_SCHEMA})"
        )
    return {
        str(row["nodeid"]): str(row["class"])
        for row in data.get("results", [])
        if isinstance(row, dict) and "nodeid" in row and "class" in row
    }


def append(
    history: Path,
    loaded: Sequence[Mapping[str, Any]],
    meta: Mapping[str, Any],
    *,
    classes: Mapping[str, str] | None = None,
    keep_runs: int = DEFAULT_KEEP_RUNS,
    timeout: float = DEFAULT_TIMEOUT,
) -> int:
    """Record the runs of ``loaded`` reports in one transaction; returns runs folded by pruning."""
    with open_history(history, timeout=timeout) as conn:
        with transaction(conn, history):
            for data in loaded:
                record(conn, data, meta, classes)
            folded = prune(conn, keep_runs) if keep_runs else 0
        if folded:
            reclaim(conn, history)
        return folded


def import_reports(
    history: Path,
    paths: Sequence[Path],
    meta: Mapping[str, Any],
    *,
    classes: Mapping[str, str] | None = None,
    keep_runs: int = DEFAULT_KEEP_RUNS,
) -> list[dict[str, Any]]:
    """Load every report first, then record them all or none."""
    loaded = [reports.load(path) for path in paths]
    append(history, loaded, {**meta, "source": "import"}, classes=classes, keep_runs=keep_runs)
    return loaded


def stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells a file replaced by a run from the one that was there before it."""
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


def after_run(
    report_path: Path,
    before: tuple[int, int, int] | None,
    option_enabled: bool | None,
    option_path: Path | None,
    echo: Echo = print,
    loaded: Mapping[str, Any] | None = None,
) -> bool:
    """Record the run that just wrote ``report_path``, unless the history is turned off.

    Nothing is recorded when the run did not write its report (it was interrupted, or a
    phase wrote none): the report there is an earlier run's. ``loaded``: the report's
    contents, when the caller has them, so that the file is not read again.
    """
    try:
        root = Path.cwd()
        if not settings.enabled(option_enabled, root):
            return False
        history = settings.history_path(option_path, root)
        keep = settings.keep_runs(root)
    except ValueError as exc:
        echo(f"testfleet: warning: run not recorded in the history: {exc}")
        return False
    after = stamp(report_path)
    if after is None or after == before:
        return False
    return record_after_run(report_path, history, echo, keep_runs=keep, loaded=loaded)


def record_after_run(
    report_path: Path,
    history: Path,
    echo: Echo = print,
    keep_runs: int = DEFAULT_KEEP_RUNS,
    loaded: Mapping[str, Any] | None = None,
) -> bool:
    """Add the run of ``report_path`` to ``history``; a failure is told, never raised.

    The run's own reports are written before this is called: whatever happens to the
    history, they stay, and the run's exit status does not change.
    """
    try:
        data = reports.load(report_path) if loaded is None else loaded
        append(history, [data], live_meta(Path.cwd()), keep_runs=keep_runs)
    except (HistoryError, reports.ReportError, sqlite3.Error, OSError) as exc:
        echo(
            f"testfleet: warning: run not recorded in the history: {exc} "
            f"(the run's reports are written; record it later with "
            f"`testfleet history import {report_path}`)"
        )
        return False
    return True
