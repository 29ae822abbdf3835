"""How a test session's environment is installed: from the project's lockfile where it has one.

A project that commits ``uv.lock`` (or ``poetry.lock``, ``pdm.lock``) tests against the
versions it locked, and its own CI installs exactly those (``uv sync --frozen``). A session
that resolves the dependencies afresh with pip can pick a new major version the code does
not support, and fail before a test runs. So the lock's tool builds the session's virtualenv
from the lock, and testfleet and coverage are added on top; without a lockfile (or with
``installer = "pip"``) the session installs with pip as before.

The commands are planned by pure functions (tested in milliseconds); :func:`install_locked`
runs them in a nox session. Like testfleet.nox, this module imports neither nox nor pytest.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

UV = "uv"
PIP = "pip"
POETRY = "poetry"
PDM = "pdm"
INSTALLERS = (UV, PIP, POETRY, PDM)
LOCKFILES = {UV: "uv.lock", POETRY: "poetry.lock", PDM: "pdm.lock"}
#: A lock that no longer matches pyproject.toml is a usage error, as in the other commands.
EXIT_STALE_LOCK = 2
#: What each tool says when its lock is out of date (its check fails for other reasons too,
#: a network error, and those are reported as the tool wrote them).
STALE_SIGNS = {
    UV: ("needs to be updated",),
    POETRY: ("poetry lock",),
    PDM: ("not up to date", "not up-to-date"),
}


#: uv installs into UV_PROJECT_ENVIRONMENT; Poetry and PDM into the active VIRTUAL_ENV,
#: except that PDM prefers the interpreter saved in .pdm-python (a developer's .venv, or
#: the one `pdm lock` made): the session's and the image's environments would stay empty.
TOOL_ENV = {"PDM_IGNORE_SAVED_PYTHON": "1"}


@dataclass(frozen=True)
class Request:
    """What the session asks for, from ``[tool.testfleet]``."""

    extras: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    install_project: bool = True
    editable: bool = True


def detect(project: Path, which: Callable[[str], str | None] = shutil.which) -> str:
    """The installer for ``project``: uv with ``uv.lock``, poetry or pdm with their lock where
    the tool is on PATH, else pip.

    uv comes from the package index when it is missing, so ``uv.lock`` alone decides; Poetry
    and PDM manage their own installs, so a lock without the tool falls back to pip.
    """
    if (project / LOCKFILES[UV]).is_file():
        return UV
    for tool in (POETRY, PDM):
        if (project / LOCKFILES[tool]).is_file() and which(tool):
            return tool
    return PIP


def is_uv_workspace(project: Path) -> bool:
    """Whether pyproject.toml declares a uv workspace (``[tool.uv.workspace]``)."""
    try:
        with (project / "pyproject.toml").open("rb") as handle:
            document = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return "workspace" in document.get("tool", {}).get("uv", {})


def check_command(installer: str, python: str) -> list[str]:
    """The tool's arguments that fail when its lock does not match pyproject.toml.

    uv is given the session's Python: left to itself it takes the one ``.python-version``
    names, and downloads it from GitHub where the machine lacks it (init chose another).
    """
    if installer == UV:
        return ["lock", "--locked", "--python", python]
    return {POETRY: ["check", "--lock"], PDM: ["lock", "--check"]}[installer]


def stale_message(installer: str) -> str:
    """The one line a session prints for a lock that no longer matches pyproject.toml."""
    lockfile = LOCKFILES[installer]
    return (
        f"testfleet: {lockfile} does not match pyproject.toml: run `{installer} lock`, "
        f"commit {lockfile}, then run the session again"
    )


def is_stale(installer: str, output: str) -> bool:
    """Whether a failed check says the lock is out of date (not, say, that the index is down)."""
    text = output.lower()
    return any(sign in text for sign in STALE_SIGNS[installer])


def sync_command(
    installer: str, request: Request, *, workspace: bool, python: str, code: bool = True
) -> list[str]:
    """The tool's arguments that install the locked versions into the session's virtualenv.

    ``code``: whether the project's code is there. The test image's dependency stage sees the
    manifests alone, so there the tool installs the third-party packages and leaves out the
    project, its workspace members and other local paths (they come after the code).
    """
    if installer == UV:
        return _uv_sync(request, workspace=workspace, python=python, code=code)
    if installer == POETRY:
        args = ["install", "--no-interaction"]
        args += [item for extra in request.extras for item in ("--extras", extra)]
        args += [item for group in request.groups for item in ("--with", group)]
        return args if request.install_project and code else [*args, "--no-root"]
    if installer == PDM:
        args = ["sync"]
        args += [item for name in (*request.extras, *request.groups) for item in ("-G", name)]
        args += [] if request.install_project and code else ["--no-self"]
        return args if request.editable else [*args, "--no-editable"]
    raise ValueError(f"{installer!r} installs no lockfile: use one of uv, poetry, pdm")


def _uv_sync(request: Request, *, workspace: bool, python: str, code: bool) -> list[str]:
    """uv: ``--frozen`` (installs the lock as it is; the check before says it is current),
    ``--inexact`` (keeps what is added on top when a reused environment is synced again),
    ``--all-packages`` in a workspace, since tests import members the root does not depend on.
    """
    args = ["sync", "--frozen", "--inexact", "--python", python]
    args += [item for extra in request.extras for item in ("--extra", extra)]
    args += [item for group in request.groups for item in ("--group", group)]
    if workspace:
        args.append("--all-packages")
    if not code:
        # Members and path sources are not in the image yet; their dependencies are.
        args.append("--no-install-local")
    elif not request.install_project:
        args.append("--no-install-project")
    if not request.editable:
        args.append("--no-editable")
    return args


def directory_option(installer: str, directory: str) -> list[str]:
    """The tool's option that makes it read the project in ``directory``, not the working one
    (given after the subcommand: PDM takes it there only)."""
    return [{UV: "--directory", POETRY: "--directory", PDM: "--project"}[installer], directory]


class Session(Protocol):
    """The part of ``nox.Session`` used here."""

    @property
    def bin(self) -> str: ...

    @property
    def virtualenv(self) -> Any: ...

    def install(self, *args: str) -> None: ...

    def run(self, *args: str, env: dict[str, str] | None = None, external: bool = False) -> Any: ...

    def error(self, *args: Any) -> Any: ...


def find_uv(session: Session) -> str:
    """uv on PATH, or beside the Python running nox; else installed into the session from PyPI."""
    found = shutil.which(UV) or shutil.which(UV, path=str(Path(sys.executable).parent))
    if found:
        return found
    session.install(UV)
    return str(Path(session.bin) / UV)


def check_lock(session: Session, tool: str, installer: str, project: Path, python: str) -> None:
    """Stop with one line and exit status 2 when the lock does not match pyproject.toml."""
    done = subprocess.run(
        [tool, *check_command(installer, python)],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == 0:
        return
    if is_stale(installer, done.stdout + done.stderr):
        print(stale_message(installer), file=sys.stderr)
        raise SystemExit(EXIT_STALE_LOCK)
    session.error(f"{tool} {' '.join(check_command(installer, python))} failed:\n{done.stderr}")


def install_locked(
    session: Session, installer: str, project: Path, request: Request, on_top: Sequence[str]
) -> None:
    """Install the locked environment into the session's virtualenv, then ``on_top``."""
    tool = find_uv(session) if installer == UV else (shutil.which(installer) or installer)
    python = str(Path(session.bin) / "python")
    check_lock(session, tool, installer, project, python)
    location = str(session.virtualenv.location)
    env = {"UV_PROJECT_ENVIRONMENT": location, "VIRTUAL_ENV": location, **TOOL_ENV}
    command = sync_command(installer, request, workspace=is_uv_workspace(project), python=python)
    session.run(tool, *command, env=env, external=True)
    if not on_top:
        return
    if installer == UV:
        session.run(tool, "pip", "install", "--python", python, *on_top, external=True)
    else:
        session.install(*on_top)
