"""How the test image installs a project that locks its dependencies (uv, Poetry, PDM).

The image installs what the nox sessions install: the lock's tool makes the environment
from the lock, with the same extras, groups and workspace members, and the command lines
come from testfleet.runs.install, which decides them for the sessions too. The image's
dependency stage sees the manifests alone (pyproject.toml and the lockfile), so there the
tool installs the third-party packages only; the project and its workspace members are
installed in the test stage, after the code is copied. A change to the code therefore never
reinstalls the dependencies. The tool itself comes from the package index into a
virtualenv of its own (``/opt/installer``), so that its dependencies stay out of the tests'.
"""

from __future__ import annotations

import shlex
from typing import Any

from testfleet.runs import install as lockfile
from testfleet.scaffold.detect import Project
from testfleet.scaffold.pyproject import session_groups

#: The image's virtualenv (the Dockerfile's VIRTUAL_ENV) and where the manifests are mounted.
VENV_PYTHON = "/opt/venv/bin/python"
MANIFESTS_DIR = "/tmp/project"
INSTALLER_VENV = "/opt/installer"
#: The tool's release the image installs, pinned so that a rebuild reads the lock the same
#: way; the Dockerfile's INSTALLER_REQUIREMENT build argument takes another one.
INSTALLER_REQUIREMENTS = {
    lockfile.UV: "uv==0.13.10",
    lockfile.POETRY: "poetry==2.5.1",
    lockfile.PDM: "pdm==2.29.4",
}
#: What the tool's release needs pinned beside it: pdm 2.29 does not start with hishel 2,
#: which its own requirements allow.
INSTALLER_PINS = {lockfile.PDM: ("hishel[httpx2]>=1.4,<2",)}
#: Where each tool keeps its downloads: a BuildKit cache mount, kept across rebuilds.
CACHES = {
    lockfile.UV: "/root/.cache/uv",
    lockfile.POETRY: "/root/.cache/pypoetry",
    lockfile.PDM: "/root/.cache/pdm",
}


def request_of(project: Project) -> lockfile.Request:
    """What the sessions ask the lock's tool for: what init writes into [tool.testfleet].

    The image's install line names them; after changing them in [tool.testfleet], change
    the Dockerfile's two lock lines too (or write it again with ``testfleet init --force``).
    """
    groups = tuple(session_groups(project))
    return lockfile.Request(tuple(project.extras), groups, project.install_project, editable=True)


def commands(
    project: Project,
    python: str = VENV_PYTHON,
    tools: str = f"{INSTALLER_VENV}/bin",
    manifests: str = MANIFESTS_DIR,
) -> tuple[str, str]:
    """The dependency stage's command (third-party packages) and the test stage's (the code).

    ``python``: the image's virtualenv's; ``tools``: where the lock's tool is; ``manifests``:
    where the dependency stage mounts pyproject.toml and the lockfile.
    """
    installer = project.installer
    workspace = lockfile.is_uv_workspace(project.root)
    request = request_of(project)
    deps = lockfile.sync_command(installer, request, workspace=workspace, python=python, code=False)
    code = lockfile.sync_command(installer, request, workspace=workspace, python=python)
    tool = f"{tools}/{installer}"
    where = lockfile.directory_option(installer, manifests)
    # After the subcommand: PDM takes --project there only (uv and Poetry anywhere).
    return shlex.join([tool, deps[0], *where, *deps[1:]]), shlex.join([tool, *code])


def values(project: Project) -> dict[str, Any]:
    """The Dockerfile template's keys for the lock's install; ``locked`` false without a lock."""
    installer = project.installer
    if installer == lockfile.PIP:
        texts = ["installer", "lockfile", "installer_requirement", "installer_pins"]
        texts += ["installer_cache", "lock_mounts", "lock_sync_deps", "lock_sync_code"]
        flags = dict.fromkeys(["locked", "uv_lock", "pdm_lock", "lock_project"], False)
        return flags | dict.fromkeys(texts, "")
    deps, code = commands(project)
    mounts = "".join(
        f"    --mount=type=bind,source={name},target={MANIFESTS_DIR}/{name} \\\n"
        for name in ("pyproject.toml", lockfile.LOCKFILES[installer])
    )
    return {
        "locked": True,
        "uv_lock": installer == lockfile.UV,
        "pdm_lock": installer == lockfile.PDM,
        "installer": installer,
        "lockfile": lockfile.LOCKFILES[installer],
        "installer_requirement": INSTALLER_REQUIREMENTS[installer],
        "installer_pins": "".join(
            f" {shlex.quote(pin)}" for pin in INSTALLER_PINS.get(installer, ())
        ),
        "installer_cache": CACHES[installer],
        "lock_mounts": mounts,
        "lock_sync_deps": deps,
        "lock_sync_code": code,
        "lock_project": project.install_project,
    }
