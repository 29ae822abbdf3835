"""This repository's coverage settings count every testfleet module once, wherever it ran from.

Tests run copies of testfleet as well as the checkout: a wheel installed into a temporary
directory, the nox sessions' environments, the container image's /app. With
``patch = ["subprocess"]`` each copy records data under its own path; a path that
``[tool.coverage.paths]`` does not map to src/testfleet makes `coverage combine` list the
module twice, and the nearly empty copy pulls the total below ``fail_under``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from coverage import Coverage

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "testfleet"

PROBE = """
import testfleet
from testfleet.core import atomic

print(testfleet.__file__)
"""


def record(data_dir: Path, import_root: Path, workdir: Path) -> None:
    """Run the probe under coverage with this repository's settings, importing from there."""
    # The outer run may itself be under coverage: its variables must not reach this one.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    env["PYTHONPATH"] = str(import_root)
    probe = workdir / "probe.py"
    probe.write_text(PROBE, encoding="utf-8")
    command = [sys.executable, "-m", "coverage", "run", f"--rcfile={ROOT / 'pyproject.toml'}"]
    done = subprocess.run(
        [*command, f"--data-file={data_dir / '.coverage'}", str(probe)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # The probe ran the copy it was meant to, not the editable install.
    assert done.stdout.strip() == str(import_root / "testfleet" / "__init__.py")


def test_coverage_combine_sees_each_testfleet_module_once_under_src_for_every_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    record(data_dir, PACKAGE.parent, tmp_path)
    # Where copies run: a wheel installed with `pip install --target site` (test_runner.py),
    # a virtual environment's site-packages, and any other directory.
    copies = [
        tmp_path / "site",
        tmp_path / "venv" / "lib" / "python3.11" / "site-packages",
        tmp_path / "elsewhere" / "lib",
    ]
    for copy in copies:
        shutil.copytree(PACKAGE, copy / "testfleet", ignore=shutil.ignore_patterns("__pycache__"))
        record(data_dir, copy, tmp_path)
    assert len(list(data_dir.glob(".coverage.*"))) == 1 + len(copies)

    # `coverage combine` as the coverage session runs it: in the checkout, its settings.
    monkeypatch.chdir(ROOT)
    settings = str(ROOT / "pyproject.toml")
    combined = Coverage(config_file=settings, data_file=str(tmp_path / ".coverage"))
    combined.combine([str(data_dir)], keep=True)
    measured = sorted(combined.get_data().measured_files())

    assert measured, "the probes recorded nothing"
    outside = [path for path in measured if not Path(path).is_relative_to(PACKAGE)]
    assert not outside, (
        f"{len(outside)} files not mapped to {PACKAGE} by [tool.coverage.paths], "
        f"such as {outside[:3]}"
    )
    names = {Path(path).relative_to(PACKAGE).as_posix() for path in measured}
    assert {"__init__.py", "core/atomic.py"} <= names
