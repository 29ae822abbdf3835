"""``testfleet init``: set a project up with testfleet's test pipeline.

:func:`plan` reads the project and proposes every file (nothing is written);
:func:`run` shows the plan, writes it unless asked not to, and says what to run next.
"""

from __future__ import annotations

import importlib.util
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from testfleet.diagnose.audit import scan as audit
from testfleet.runs.install import LOCKFILES, PIP
from testfleet.scaffold import pyfiles, render
from testfleet.scaffold.detect import InitError, Project, detect
from testfleet.scaffold.dockerfile import compose_target
from testfleet.scaffold.pyproject import edit_pyproject
from testfleet.scaffold.writer import (
    CREATE,
    KEEP,
    REPLACE,
    SAME,
    UPDATE,
    WRITES,
    Change,
    check_writable,
    decide,
    read_existing,
    write_all,
)

__all__ = ["InitError", "Plan", "plan", "run"]
AUDIT_DOC = "docs/test-isolation-audit.md"
EXIT_OK = 0
EXIT_USAGE = 2


@dataclass
class Plan:
    """The project as detected, one change per file, and what the user must do by hand."""

    project: Project
    neo4j: bool
    changes: list[Change]
    advice: list[str] = field(default_factory=list)


def audit_document(project: Project) -> str:
    """docs/test-isolation-audit.md: ``testfleet audit`` of the project's tests, as markdown."""
    paths = [project.root / name for name in project.test_dirs]
    result = audit.audit_paths(paths, project.root)
    text = audit.render(result, "markdown")
    # The rules are documented with testfleet, not in the project's docs/.
    return text.replace("[diagnose.md](diagnose.md#static-audit)", "`testfleet audit --help`")


GITIGNORE = (".nox/", "reports/*", "!" + render.BASELINE, ".coverage", ".coverage.*")


def gitignore(existing: str | None) -> str:
    """.gitignore with what the runs write (kept out) and the baseline (kept in) added."""
    text = existing or ""
    present = {line.strip() for line in text.splitlines()}
    missing = [line for line in GITIGNORE if line not in present]
    if not missing:
        return text
    if text and not text.endswith("\n"):
        text += "\n"
    head = "\n" if text else ""
    return (
        text
        + head
        + "# Written by the test runs; the timing baseline is committed.\n"
        + ("\n".join(missing) + "\n")
    )


CONFTEST_NEW = '''"""pytest settings for the whole checkout."""

# The task runners' files are no tests, and they import nox and invoke, which the test
# environments do not have: --doctest-modules must not import them.
collect_ignore = ["noxfile.py", "tasks.py"]
'''
CONFTEST_ADDED = """
# The task runners' files are no tests, and they import nox and invoke, which the test
# environments do not have: --doctest-modules must not import them.
collect_ignore = [*globals().get("collect_ignore", []), "noxfile.py", "tasks.py"]
"""


def conftest(existing: str | None) -> str:
    """The root conftest.py with noxfile.py and tasks.py left out of collection."""
    if existing is None:
        return CONFTEST_NEW
    if "noxfile.py" in existing:
        return existing
    return existing + ("" if existing.endswith("\n") or not existing else "\n") + CONFTEST_ADDED


def _python_file(project: Project, path: str, proposed: str, *, force: bool) -> Change:
    existing = read_existing(project.root, path)
    if existing is None or force:
        return decide(project.root, path, proposed, force=force)
    merge = (pyfiles.merge_noxfile if path == "noxfile.py" else pyfiles.merge_tasks)(existing)
    if merge.text is None:
        return Change(path, None, existing, KEEP if merge.advice else SAME, merge.advice)
    return Change(path, merge.text, existing, UPDATE, "testfleet's added beside its own")


def plan(root: Path, *, neo4j: bool = False, force: bool = False) -> Plan:
    """Every file init would write for the project at ``root``; nothing is written."""
    project = detect(root)
    use_neo4j = neo4j or project.uses_neo4j
    changes: list[Change] = []
    advice = list(project.notes)
    target = compose_target(root, force=force)
    advice += [target.advice] if target.advice else []
    for item in render.render_all(project, neo4j=use_neo4j, target=target.stage):
        if item.path in ("noxfile.py", "tasks.py"):
            change = _python_file(project, item.path, item.text, force=force)
            if change.action == KEEP:
                advice.append(change.detail)
        else:
            change = decide(root, item.path, item.text, force=force)
        changes.append(change)
    changes.append(decide(root, AUDIT_DOC, audit_document(project), force=force))
    if project.collects_root_modules:
        before = read_existing(root, "conftest.py")
        after = conftest(before)
        action = SAME if after == before else (CREATE if before is None else UPDATE)
        changes.append(Change("conftest.py", after, before, action))
    ignored = read_existing(root, ".gitignore")
    wanted = gitignore(ignored)
    action = SAME if wanted == ignored else (CREATE if ignored is None else UPDATE)
    changes.append(Change(".gitignore", wanted, ignored, action))
    existing = read_existing(root, "pyproject.toml")
    edit = edit_pyproject(existing, project)
    advice += edit.advice
    if edit.text == existing:
        changes.append(Change("pyproject.toml", existing, existing, SAME))
    else:
        action = CREATE if existing is None else UPDATE
        changes.append(
            Change("pyproject.toml", edit.text, existing, action, "added " + ", ".join(edit.added))
        )
    return Plan(project, use_neo4j, changes, advice)


def describe(project: Project, neo4j: bool) -> str:
    """One line: what init found, and why it chose the Python and Neo4j."""
    layout = {"src": "src layout", "flat": "flat layout", "none": "no package"}[project.layout]
    packaging = "not installed" if not project.install_project else project.backend
    tests = ", ".join(f"{name}/" for name in project.test_dirs)
    settle = [f"extras {project.extras}" if project.extras else ""]
    settle.append(f"groups {project.dependency_groups}" if project.dependency_groups else "")
    settle.append(f"requirements {project.requirements}" if project.requirements else "")
    installs = "; ".join(item for item in settle if item) or "no test extra found"
    if project.members:
        names = ", ".join(member.name for member in project.members)
        tested = ", ".join(project.tested_members) or "none of them"
        installs += f", workspace members {names} (the tests import {tested})"
    if project.installer != PIP:
        installs += f", installed by {project.installer} from {LOCKFILES[project.installer]}"
    why = f" ({project.python_reason})" if project.python_reason else ""
    signs = project.neo4j_signs or (["--neo4j"] if neo4j else [])
    return (
        f"{project.name}: {layout} ({', '.join(project.packages) or '-'}), {packaging}, "
        f"tests in {tests}, {installs}, Python {project.python}{why}, "
        f"Neo4j {'yes (' + ', '.join(signs) + ')' if neo4j else 'no'}"
    )


LABELS = {
    CREATE: ("created", "would create"),
    UPDATE: ("updated", "would update"),
    REPLACE: ("replaced", "would replace"),
    KEEP: ("kept", "would keep"),
    SAME: ("unchanged", "unchanged"),
}


HEADINGS = {
    CREATE: "its whole text",
    UPDATE: "what init adds",
    REPLACE: "the file as it was (-) and what replaces it (+)",
    KEEP: "the file as it is (-) and what init would write (+)",
}


def next_commands(written: list[str]) -> list[str]:
    """The commands to run after init, each one that parses as a shell command."""
    commands = []
    # invoke ci runs nox and coverage (coverage erase) from the environment it runs in.
    tools = ("nox", "invoke", "coverage")
    missing = [name for name in tools if importlib.util.find_spec(name) is None]
    if missing:
        commands.append(shlex.join(["python", "-m", "pip", "install", *missing]))
    commands += ["nox -s tests_parallel", "invoke baseline", "invoke ci"]
    files = [*written, render.BASELINE]
    commands.append(shlex.join(["git", "add", *files]))
    return commands


def show(result: Plan, *, dry_run: bool, out: TextIO) -> None:
    """The plan, file by file, with the difference of every file that is kept or changed."""
    out.write(f"testfleet init: {describe(result.project, result.neo4j)}\n")
    for change in result.changes:
        label = LABELS[change.action][1 if dry_run else 0]
        detail = f": {change.detail}" if change.detail and change.action != KEEP else ""
        out.write(f"  {label:<13} {change.path}{detail}\n")
    for change in result.changes:
        shown = change.action in (KEEP, REPLACE, UPDATE) or (dry_run and change.action == CREATE)
        if shown and change.proposed is not None:
            out.write(f"\n{change.path} ({LABELS[change.action][1 if dry_run else 0]}): ")
            out.write(HEADINGS[change.action] + "\n")
            out.write(change.diff())
    kept = [c.path for c in result.changes if c.action == KEEP and c.proposed is not None]
    if kept:
        out.write(
            f"\nKept as they are: {', '.join(kept)}. `testfleet init --force` replaces them.\n"
        )
    for item in result.advice:
        out.write(f"\nTo do by hand: {item}\n")


def run(
    root: Path,
    *,
    neo4j: bool = False,
    force: bool = False,
    dry_run: bool = False,
    out: TextIO | None = None,
) -> int:
    """``testfleet init``: exit 0 when set up (or shown), 2 when init cannot work here."""
    out = out if out is not None else sys.stdout
    try:
        result = plan(root, neo4j=neo4j, force=force)
        if not dry_run:
            check_writable(root, result.changes)
    except InitError as exc:
        print(f"testfleet: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    show(result, dry_run=dry_run, out=out)
    if dry_run:
        out.write("\nDry run: nothing was written.\n")
        return EXIT_OK
    try:
        write_all(root, result.changes)
    except InitError as exc:
        print(f"testfleet: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    written = [c.path for c in result.changes if c.action in WRITES]
    where = "" if root.resolve() == Path.cwd().resolve() else shlex.join(["cd", str(root)])
    out.write("\nNext:\n")
    for command in ([where] if where else []) + next_commands(written):
        out.write(f"  {command}\n")
    return EXIT_OK
