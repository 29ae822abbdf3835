"""``python -m testfleet.runs.measure ARGS``: ``testfleet ARGS`` under coverage, workers included.

pytest-xdist workers are new processes, so coverage must follow subprocesses and write one
data file per process (``[tool.coverage.run] parallel = true`` and ``patch =
["subprocess"]``), or the workers' lines are lost. A project's own coverage settings are
read as usual; these two are added when it lacks them, so that it works unedited.
``coverage combine`` (the nox session ``coverage``) joins the files.
"""

from __future__ import annotations

import configparser
import os
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SUBPROCESS = "subprocess"
QUIET = ("module-not-measured", "no-data-collected")
#: What coverage needs from a project without coverage settings of its own.
MINIMAL_RC = "[run]\nparallel = True\npatch = subprocess\n"


def has_coverage_settings(directory: Path) -> bool:
    """Whether coverage finds settings of the project's own in ``directory``, as it looks."""
    if os.environ.get("COVERAGE_RCFILE") or (directory / ".coveragerc").is_file():
        return True
    pyproject = directory / "pyproject.toml"
    if pyproject.is_file():
        try:
            with pyproject.open("rb") as handle:
                if "coverage" in tomllib.load(handle).get("tool", {}):
                    return True
        except (OSError, tomllib.TOMLDecodeError):
            return False
    for name in ("setup.cfg", "tox.ini"):
        parser = configparser.RawConfigParser()
        try:
            parser.read(directory / name, encoding="utf-8")
        except configparser.Error:
            continue
        if any(section.startswith("coverage:") for section in parser.sections()):
            return True
    return False


def _coverage(coverage: Any) -> Any:
    if has_coverage_settings(Path.cwd()):
        return coverage.Coverage(data_suffix=True)
    # Coverage follows subprocesses only with a settings file (it hands the settings on
    # to them); a project without one gets this minimal one, read here and removed.
    handle, name = tempfile.mkstemp(prefix="testfleet-coveragerc-", suffix=".ini")
    try:
        os.write(handle, MINIMAL_RC.encode())
        os.close(handle)
        return coverage.Coverage(data_suffix=True, config_file=name)
    finally:
        Path(name).unlink()


def save_in_worker() -> None:
    """Save this process's coverage data now, when coverage measures it.

    An xdist worker does not end by itself: its controller's ``teardown_nodes`` gives the
    workers ten seconds to exit, then kills them, and coverage saves a process's data as
    it exits. A worker that measured a large suite on a busy machine can take longer, and
    all its lines were lost. Saved at the end of its session, before the worker tells the
    controller it finished, they are on disk before the controller starts to wait; the
    save at exit only adds what ran after.
    """
    # Looked up, not imported: a run that coverage does not measure never loads it.
    coverage = sys.modules.get("coverage")
    current = getattr(getattr(coverage, "Coverage", None), "current", None)
    measurer = current() if current is not None else None
    if measurer is not None:
        measurer.save()


def main(argv: Sequence[str] | None = None) -> int:  # pragma: no cover - runs as the measurer
    try:
        import coverage
    except ModuleNotFoundError:
        print(
            "testfleet: error: coverage is not installed here: pip install 'coverage[toml]' "
            "(or set coverage = false in [tool.testfleet])",
            file=sys.stderr,
        )
        return 2
    measurer = _coverage(coverage)
    measurer.set_option("run:parallel", True)
    # This process imported testfleet before the start, and runs no project code itself.
    quiet = list(measurer.get_option("run:disable_warnings") or [])
    measurer.set_option("run:disable_warnings", [*quiet, *QUIET])
    patches = list(measurer.get_option("run:patch") or [])
    if SUBPROCESS not in patches:
        measurer.set_option("run:patch", [*patches, SUBPROCESS])
    measurer.start()
    try:
        # Imported after the start, so that testfleet's own modules are measured too.
        from testfleet.cli.program import main as cli

        return cli(list(sys.argv[1:] if argv is None else argv))
    finally:
        measurer.stop()
        measurer.save()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
