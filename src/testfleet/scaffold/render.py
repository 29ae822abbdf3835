"""The files init writes, rendered from the templates shipped with testfleet.

The template language is deliberately tiny: ``{{ key }}`` (never after a ``$``, so
GitHub's ``${{ ... }}`` and the shell's ``$VAR`` pass through) and ``{% if key %}``,
``{% if not key %}``, ``{% else %}``, ``{% endif %}``, not nested, alone on their line
or inside one. An unknown key is an error, not an empty string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from testfleet import __version__
from testfleet.core import paths
from testfleet.runs.install import PIP
from testfleet.scaffold import lockimage
from testfleet.scaffold.detect import Project

# Pinned patch releases of the official image (python:X.Y.Z-slim-bookworm).
PYTHON_IMAGES = {
    "3.9": "3.9.23",
    "3.10": "3.10.18",
    "3.11": "3.11.13",
    "3.12": "3.12.11",
    "3.13": "3.13.5",
    "3.14": "3.14.0",
}
REPORT = str(paths.TIMING_REPORT)
BASELINE = str(paths.BASELINE_REPORT)
SUMMARY = str(paths.CI_SUMMARY)
WORKFLOW = ".github/workflows/tests.yml"
CODEOWNERS_PLACES = ("CODEOWNERS", ".github/CODEOWNERS", "docs/CODEOWNERS")

_TAG_LINE = re.compile(r"^[ \t]*(\{% [^%]+ %\})[ \t]*\n", re.MULTILINE)
_BLOCK = re.compile(r"\{% if (not )?(\w+) %\}(.*?)(?:\{% else %\}(.*?))?\{% endif %\}", re.DOTALL)
_KEY = re.compile(r"(?<!\$)\{\{ (\w+) \}\}")


class TemplateError(KeyError):
    """A template names a key the caller did not give."""


def render_text(template: str, values: dict[str, Any]) -> str:
    """``template`` with its conditions decided and its keys replaced."""

    def choose(match: re.Match[str]) -> str:
        negate, key, then, otherwise = match.groups()
        if key not in values:
            raise TemplateError(key)
        chosen = bool(values[key]) != bool(negate)
        return then if chosen else (otherwise or "")

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise TemplateError(key)
        return str(values[key])

    text = _TAG_LINE.sub(r"\1", template)
    return _KEY.sub(replace, _BLOCK.sub(choose, text))


def template(name: str) -> str:
    """The text of a template shipped in ``testfleet/scaffold/templates``."""
    return (resources.files("testfleet.scaffold") / "templates" / name).read_text("utf-8")


def slug(name: str) -> str:
    """A compose project name: lowercase letters, digits, ``-`` and ``_``."""
    cleaned = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")
    return cleaned or "project"


def default_branch(root: Path) -> str:
    """The branch pushes to run CI on: the remote's default, else master or main."""
    git = root / ".git"
    head = git / "refs" / "remotes" / "origin" / "HEAD"
    try:
        text = head.read_text(encoding="utf-8").strip()
        if text.startswith("ref: refs/remotes/origin/"):
            return text.rsplit("/", 1)[1]
    except OSError:
        pass
    has_main = (git / "refs" / "heads" / "main").exists()
    return "master" if (git / "refs" / "heads" / "master").exists() and not has_main else "main"


def _install_text(project: Project) -> str:
    if project.installer != PIP:
        # The lock's tool installs the locked versions (testfleet.runs.install).
        workspace = ", every workspace member" if project.members else ""
        chosen = [f"`{name}`" for name in [*project.extras, *project.dependency_groups]]
        also = f" with {', '.join(chosen)}" if chosen else ""
        return f"what `{project.installer}` locks (the project{also}{workspace}), then testfleet"
    parts = []
    if project.install_project:
        extras = f"[{','.join(project.extras)}]" if project.extras else ""
        parts.append(f"the project (`pip install -e .{extras}`)")
    parts += [f"the dependency group `{group}`" for group in project.dependency_groups]
    parts += [f"`{name}`" for name in project.requirements]
    parts.append("testfleet")
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]


# Build requirements that take the version from git; all read SETUPTOOLS_SCM_PRETEND_VERSION.
SCM_BUILDERS = ("setuptools-scm", "setuptools_scm", "hatch-vcs", "flit-scm", "flit_scm")


def version_from_git(project: Project) -> bool:
    """Whether building the project needs git metadata (a setuptools-scm based version)."""
    requires = (project.pyproject or {}).get("build-system", {}).get("requires", [])
    return any(str(item).lower().startswith(SCM_BUILDERS) for item in requires)


def manifests(project: Project) -> list[str]:
    """The files the image's dependency stage reads (pyproject.toml always exists by then)."""
    return ["pyproject.toml", *project.requirements]


def values_for(project: Project, *, neo4j: bool, target: str | None = "test") -> dict[str, Any]:
    """Every key the templates use, for this project."""
    mounts = "".join(
        f"    --mount=type=bind,source={name},target=/tmp/project/{name} \\\n"
        for name in manifests(project)
    )
    return {
        "name": project.name,
        "slug": slug(project.name),
        "python_image": f"{PYTHON_IMAGES.get(project.python, project.python)}-slim-bookworm",
        "testfleet_requirement": f"testfleet=={__version__}",
        "manifest_mounts": mounts,
        "pip_project": project.install_project and project.installer == PIP,
        "editable_flag": "--editable ",
        "scm_version": project.install_project and version_from_git(project),
        "neo4j": neo4j,
        "compose_target": target or "",
        "report": REPORT,
        "baseline": BASELINE,
        "summary": SUMMARY,
        "default_branch": default_branch(project.root),
        "test_dirs_text": ", ".join(f"`{name}/`" for name in project.test_dirs),
        "install_text": _install_text(project),
        **lockimage.values(project),
    }


def codeowners(project: Project) -> str:
    """CODEOWNERS naming the project's authors, or a line to fill in when none is known."""
    data = project.pyproject or {}
    people = data.get("project", {}).get("maintainers", []) + data.get("project", {}).get(
        "authors", []
    )
    emails = sorted({str(p["email"]) for p in people if isinstance(p, dict) and p.get("email")})
    poetry_authors = data.get("tool", {}).get("poetry", {}).get("authors", [])
    emails += sorted(
        {m.group(1) for a in poetry_authors if (m := re.search(r"<([^>]+@[^>]+)>", str(a)))}
    )
    head = (
        "# Who reviews what (GitHub CODEOWNERS). The test pipeline's files are listed so\n"
        "# that changes to how the suite runs get a second look.\n"
    )
    if emails:
        owners = " ".join(dict.fromkeys(emails))
        return head + f"*    {owners}\n"
    return head + (
        "# Replace @your-org/your-team with the owners, then uncomment:\n"
        "# *    @your-org/your-team\n"
    )


def workflow_path(root: Path) -> str:
    """The project's workflow that already runs the pipeline, else the one init adds."""
    folder = root / ".github" / "workflows"
    for path in sorted(folder.glob("*.y*ml")) if folder.is_dir() else []:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if "invoke ci" in text or "docker-compose.test.yml" in text:
            return path.relative_to(root).as_posix()
    return WORKFLOW


@dataclass(frozen=True)
class Rendered:
    """One file init proposes: its path relative to the root and its whole text."""

    path: str
    text: str


def render_all(project: Project, *, neo4j: bool, target: str | None = "test") -> list[Rendered]:
    """The files rendered from templates, in the order init lists them.

    ``target``: the Dockerfile stage the compose file builds (None: the last one).
    """
    values = values_for(project, neo4j=neo4j, target=target)
    pairs = [
        ("noxfile.py", "noxfile.py.tmpl"),
        ("tasks.py", "tasks.py.tmpl"),
        ("Dockerfile", "Dockerfile.tmpl"),
        (".dockerignore", "dockerignore.tmpl"),
        ("docker-compose.test.yml", "docker-compose.test.yml.tmpl"),
        (workflow_path(project.root), "ci.yml.tmpl"),
        ("docs/testing.md", "testing.md.tmpl"),
        ("docs/rollback.md", "rollback.md.tmpl"),
    ]
    found = [Rendered(path, render_text(template(name), values)) for path, name in pairs]
    # One CODEOWNERS only: GitHub reads the first of .github/, the root, docs/.
    if not any((project.root / place).exists() for place in CODEOWNERS_PLACES[1:]):
        found.append(Rendered("CODEOWNERS", codeowners(project)))
    return found
