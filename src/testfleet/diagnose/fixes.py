"""Patch suggestions for the state a polluter leaves: one or two ways to reset each change.

Each :class:`~testfleet.diagnose.state.Change` gets the fixes a person would write: in the
polluter itself (``monkeypatch`` instead of a plain assignment, ``tmp_path`` for files, a
copy of a shared fixture value), or an autouse fixture in the polluter's conftest.py that
puts the state back after each test (or a narrower fixture scope). They are suggestions:
`propose` applies each to a copy of the project and keeps only those a rerun confirms.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from testfleet.diagnose import edits, polluter_fixes
from testfleet.diagnose.proposal import Suggestion
from testfleet.diagnose.state import ATTRIBUTE, CWD, ENVIRON, FILE, FIXTURE, Change

#: Suggestions tried at most: each costs a copy of the project and a pytest run.
MAX_SUGGESTIONS = 12
FOUND_BY = "found by testfleet bisect"

#: (imports, the fixture's text) of one autouse fixture for conftest.py.
Fixture = tuple[list[str], str]
#: The file's new lines from a polluter function and its file, or None when it does not fit.
Rewrite = Callable[[edits.Function], tuple[list[str], str] | None]


def _slug(text: str) -> str:
    return re.sub(r"\W+", "_", text).strip("_").lower()[:40]


def _attribute_fixture(change: Change, polluter: str) -> Fixture:
    owner_class, _, attribute = change.name.rpartition(".")
    owner = f'importlib.import_module("{change.place}")' + (
        f".{owner_class}" if owner_class else ""
    )
    mutated = change.how == "mutated"
    saved = f"copy.deepcopy(owner.{attribute})" if mutated else f"owner.{attribute}"
    text = (
        "@pytest.fixture(autouse=True)\n"
        f"def _restore_{_slug(change.place + '_' + change.name)}():\n"
        f'    """{change.place}.{change.name} as before each test: {polluter} changes it '
        f'({FOUND_BY})."""\n'
        f"    owner = {owner}\n"
        f"    saved = {saved}\n"
        "    yield\n"
        f"    owner.{attribute} = saved\n"
    )
    return ["import importlib", *(["import copy"] if mutated else []), "import pytest"], text


def _environ_fixture(change: Change, polluter: str) -> Fixture:
    name = change.name
    text = (
        "@pytest.fixture(autouse=True)\n"
        f"def _restore_env_{_slug(name)}():\n"
        f'    """${name} as before each test: {polluter} changes it ({FOUND_BY})."""\n'
        f'    saved = os.environ.get("{name}")\n'
        "    yield\n"
        "    if saved is None:\n"
        f'        os.environ.pop("{name}", None)\n'
        "    else:\n"
        f'        os.environ["{name}"] = saved\n'
    )
    return ["import os", "import pytest"], text


def _file_fixture(change: Change, polluter: str) -> Fixture:
    in_tmp = change.place == "tmp"
    directory = "Path(tempfile.gettempdir())" if in_tmp else "Path.cwd()"
    where = "temp" if in_tmp else "current"
    created = change.how == "created"
    verb = "Removes" if created else "Puts back"
    if created:
        keep = ["    yield\n", "    if path.is_dir():\n", "        shutil.rmtree(path)\n"]
        keep += ["    else:\n", "        path.unlink(missing_ok=True)\n"]
        imports = ["import shutil"]
    else:
        keep = ["    saved = path.read_bytes()\n", "    yield\n", "    path.write_bytes(saved)\n"]
        imports = []
    text = (
        "@pytest.fixture(autouse=True)\n"
        f"def _keep_{_slug(change.place + '_' + change.name)}():\n"
        f'    """{verb} {change.name} ({where} directory) after each test: {polluter} '
        f'{"creates" if created else "changes"} it ({FOUND_BY})."""\n'
        f'    path = {directory} / "{change.name}"\n' + "".join(keep)
    )
    imports += [
        *(["import tempfile"] if in_tmp else []),
        "import pytest",
        "from pathlib import Path",
    ]
    return imports, text


def _cwd_fixture(change: Change, polluter: str) -> Fixture:
    text = (
        "@pytest.fixture(autouse=True)\n"
        "def _restore_cwd():\n"
        f'    """The current directory as before each test: {polluter} changes it '
        f'({FOUND_BY})."""\n'
        "    saved = os.getcwd()\n"
        "    yield\n"
        "    os.chdir(saved)\n"
    )
    return ["import os", "import pytest"], text


FIXTURES: dict[str, Callable[[Change, str], Fixture]] = {
    ATTRIBUTE: _attribute_fixture,
    ENVIRON: _environ_fixture,
    FILE: _file_fixture,
    CWD: _cwd_fixture,
}


def _import_order(statement: str) -> tuple[bool, bool, str]:
    # The standard library first, plain imports before from-imports; pytest last.
    return statement == "import pytest", statement.startswith("from "), statement


def conftest_suggestion(root: Path, polluter: str, changes: Sequence[Change]) -> Suggestion:
    """Autouse fixtures in the conftest.py beside ``polluter`` (created if need be)."""
    _, name = edits.test_name(polluter)
    directory = Path(edits.test_name(polluter)[0]).parent
    fixtures = [(change, FIXTURES[change.kind](change, name)) for change in changes]
    relative = (directory / "conftest.py").as_posix()
    path = root / relative
    old = edits.read_lines(path) if path.is_file() else None
    imports = list(dict.fromkeys(i for imports, _ in (f for _, f in fixtures) for i in imports))
    lines = edits.with_imports(old or [], sorted(imports, key=_import_order))
    text = "".join(lines).rstrip("\n")
    for _, (_, fixture) in fixtures:
        text += ("\n\n\n" if text else "") + fixture.rstrip("\n")
    new = (text + "\n").splitlines(keepends=True)
    title = (
        f"{relative}: an autouse fixture puts back {changes[0].subject()} after each test"
        if len(changes) == 1
        else f"{relative}: autouse fixtures put back all {len(changes)} changes after each test"
    )
    return Suggestion(
        title,
        {relative: "".join(new)},
        edits.unified_diff(relative, old, new),
        list(changes),
    )


def suggest(root: Path, polluters: Sequence[str], changes: Sequence[Change]) -> list[Suggestion]:
    """Every fix of every change: in the polluter first, then in conftest.py."""
    if not polluters:
        return []
    first = polluters[0]
    found: list[Suggestion] = []
    for change in changes:
        found += polluter_fixes.in_polluters(root, polluters, change)
        if change.kind == FIXTURE:
            found += polluter_fixes.narrower_fixture(root, first, change)
        else:
            found.append(conftest_suggestion(root, first, [change]))
    return found


def combined(root: Path, polluters: Sequence[str], changes: Sequence[Change]) -> Suggestion | None:
    """The conftest.py fixtures of all the changes at once: for a victim that needs more than
    one of them undone (tried when no single fix is enough)."""
    kept = [change for change in changes if change.kind != FIXTURE]
    return conftest_suggestion(root, polluters[0], kept) if polluters and len(kept) > 1 else None
