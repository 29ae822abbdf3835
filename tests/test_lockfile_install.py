"""Sessions install what the project locks: the installer chosen, the commands planned and run."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

import testfleet.nox
from testfleet.nox import Environment
from testfleet.runs import install as lockfile
from testfleet.settings import config


def on_path(name: str) -> Any:
    return lambda tool: f"/usr/bin/{tool}" if tool == name else None


@pytest.mark.parametrize(
    ("files", "tools", "expected"),
    [
        ({"uv.lock": ""}, None, "uv"),
        # uv comes from the index when missing; Poetry and PDM manage their own installs.
        ({"poetry.lock": ""}, "poetry", "poetry"),
        ({"poetry.lock": ""}, None, "pip"),
        ({"pdm.lock": ""}, "pdm", "pdm"),
        ({"uv.lock": "", "poetry.lock": ""}, "poetry", "uv"),
        ({"requirements.txt": ""}, "poetry", "pip"),
    ],
)
def test_the_installer_follows_the_lockfile_and_the_tools_on_the_path(
    tmp_path: Path, files: dict[str, str], tools: str | None, expected: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert lockfile.detect(tmp_path, which=on_path(tools or "-")) == expected


def test_uv_syncs_the_frozen_lock_with_extras_groups_and_every_workspace_member() -> None:
    request = lockfile.Request(extras=("test",), groups=("dev", "neo4j"))
    assert lockfile.sync_command("uv", request, workspace=True, python="/v/bin/python") == [
        *("sync", "--frozen", "--inexact", "--python", "/v/bin/python"),
        *("--extra", "test", "--group", "dev", "--group", "neo4j", "--all-packages"),
    ]


def test_uv_leaves_out_a_project_that_is_not_installed_and_installs_it_not_editable() -> None:
    request = lockfile.Request(install_project=False, editable=False)
    command = lockfile.sync_command("uv", request, workspace=False, python="py")
    assert command[-2:] == ["--no-install-project", "--no-editable"]
    assert "--all-packages" not in command


def test_poetry_and_pdm_install_their_locks_with_the_same_choices() -> None:
    request = lockfile.Request(extras=("test",), groups=("dev",), install_project=False)
    assert lockfile.sync_command("poetry", request, workspace=False, python="py") == [
        *("install", "--no-interaction", "--extras", "test", "--with", "dev", "--no-root"),
    ]
    assert lockfile.sync_command("pdm", request, workspace=False, python="py") == [
        *("sync", "-G", "test", "-G", "dev", "--no-self"),
    ]
    with pytest.raises(ValueError, match="pip"):
        lockfile.sync_command("pip", request, workspace=False, python="py")


def test_only_a_check_that_names_an_outdated_lock_counts_as_stale() -> None:
    uv_says = "error: The lockfile at `uv.lock` needs to be updated, but `--locked` was provided."
    assert lockfile.is_stale("uv", uv_says)
    assert not lockfile.is_stale("uv", "error: Failed to fetch: `https://pypi.org/simple/six/`")
    assert "run `uv lock`" in lockfile.stale_message("uv")
    assert "\n" not in lockfile.stale_message("poetry")


def test_a_workspace_is_told_by_its_tool_uv_workspace_table(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.uv]\npackage = true\n", encoding="utf-8")
    assert not lockfile.is_uv_workspace(tmp_path)
    pyproject.write_text("[tool.uv.workspace]\nmembers = ['packages/*']\n", encoding="utf-8")
    assert lockfile.is_uv_workspace(tmp_path)


class FakeSession:
    """The part of a nox session the install uses, recording what it was asked to do."""

    venv_backend = "virtualenv"

    def __init__(self, location: Path) -> None:
        self.bin = str(location / "bin")
        self.virtualenv = type("Venv", (), {"location": str(location)})()
        self.calls: list[tuple[str, ...]] = []
        self.envs: list[dict[str, str] | None] = []

    def install(self, *args: str) -> None:
        self.calls.append(("install", *args))

    def run(self, *args: str, env: dict[str, str] | None = None, external: bool = False) -> None:
        self.calls.append(("run", *args))
        self.envs.append(env)

    def error(self, *args: Any) -> None:
        raise AssertionError(args)


def fake_uv(folder: Path, *, lock_output: str, lock_status: int) -> Path:
    """A `uv` that answers `uv lock --locked` as told."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "uv"
    script.write_text(
        f"#!/bin/sh\nif [ \"$1\" = lock ]; then echo '{lock_output}' >&2; exit {lock_status}; fi\n",
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return folder


@pytest.fixture
def uv_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\nversion = '1'\n", encoding="utf-8")
    (root / "uv.lock").write_text("version = 1\n", encoding="utf-8")
    monkeypatch.chdir(root)
    return root


def test_a_uv_session_syncs_the_lock_into_its_virtualenv_then_adds_testfleet(
    uv_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = fake_uv(tmp_path / "tools", lock_output="", lock_status=0)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    session = FakeSession(tmp_path / "venv")
    environment = Environment(dependency_groups=("dev",), testfleet="testfleet==9")
    testfleet.nox.install(session, environment, "pytest-randomly")  # type: ignore[arg-type]
    python = str(tmp_path / "venv" / "bin" / "python")
    uv = str(tools / "uv")
    on_top = ("testfleet==9", testfleet.nox.COVERAGE_REQUIREMENT, "pytest-randomly")
    assert session.calls == [
        ("run", uv, "sync", "--frozen", "--inexact", "--python", python, "--group", "dev"),
        ("run", uv, "pip", "install", "--python", python, *on_top),
    ]
    assert session.envs[0] is not None
    assert session.envs[0]["UV_PROJECT_ENVIRONMENT"] == str(tmp_path / "venv")


def test_the_lock_check_uses_the_sessions_python_not_the_one_python_version_names(
    uv_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # uv, left to choose, takes .python-version's 3.99 and goes to download it; this uv
    # fails as the real one does when it cannot.
    (uv_project / ".python-version").write_text("3.99\n", encoding="utf-8")
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "uv").write_text(
        '#!/bin/sh\n[ "$1" = lock ] && [ "$3" != --python ] && { echo "error: dns error" >&2; '
        'exit 2; }\necho "$@" >> "$0.calls"\n',
        encoding="utf-8",
    )
    (tools / "uv").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    session = FakeSession(tmp_path / "venv")
    testfleet.nox.install(session, Environment(testfleet="testfleet==9"))  # type: ignore[arg-type]
    python = str(tmp_path / "venv" / "bin" / "python")
    assert (tools / "uv.calls").read_text().splitlines() == [f"lock --locked --python {python}"]


def test_a_stale_uv_lock_stops_the_session_with_one_line_and_status_2(
    uv_project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    said = "The lockfile at `uv.lock` needs to be updated, but `--locked` was provided."
    tools = fake_uv(tmp_path / "tools", lock_output=said, lock_status=1)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    session = FakeSession(tmp_path / "venv")
    with pytest.raises(SystemExit) as stopped:
        testfleet.nox.install(session, Environment(), "x")  # type: ignore[arg-type]
    assert stopped.value.code == 2
    assert capsys.readouterr().err == lockfile.stale_message("uv") + "\n"
    assert session.calls == []


def test_installer_pip_keeps_the_one_pip_install_despite_a_lockfile(uv_project: Path) -> None:
    session = FakeSession(uv_project / ".nox")
    environment = Environment(installer="pip", coverage=False, testfleet="testfleet")
    testfleet.nox.install(session, environment)  # type: ignore[arg-type]
    assert session.calls == [("install", "-e", ".", "testfleet")]


def test_the_installer_setting_takes_the_four_tools_and_refuses_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.testfleet]\ninstaller = "poetry"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert Environment.from_config(config.load()).installer == "poetry"
    monkeypatch.setenv("TESTFLEET_INSTALLER", "conda")
    with pytest.raises(config.ConfigError, match="TESTFLEET_INSTALLER"):
        config.load().get("installer")
