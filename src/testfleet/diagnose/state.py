"""The state a polluter leaves behind: snapshots of one process, and what changed between two.

A snapshot holds what a test can leave for the next one in the same process: the
attributes of the project's own modules (and of the classes they define), the environment,
the files in the current directory and the temp directory, and the current directory
itself. Values are kept as their identity and, for simple values and containers, a digest
of their repr, so that a rebinding (``mod.X = 2``) and a mutation (``mod.CACHE.append``)
both show. `state_hooks` takes the snapshots inside the pytest process of a probe; the
`fixes` module turns each :class:`Change` into a patch a person can apply.
"""

from __future__ import annotations

import hashlib
import os
import reprlib
import sys
import tempfile
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ATTRIBUTE = "attribute"
ENVIRON = "environ"
FILE = "file"
CWD = "cwd"
FIXTURE = "fixture"

#: Directories of the cwd that are tools' caches or environments, not the suite's state.
SKIPPED_DIRS = frozenset(
    {".git", ".hg", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".tox",
     ".nox", ".venv", "venv", "node_modules", ".eggs"}
)  # fmt: skip
#: The most files of the cwd a snapshot lists: a polluter's file is found near the top.
MAX_FILES = 5000
#: Containers longer than this keep only their identity: their repr would cost too much.
MAX_LENGTH = 10_000
#: The project a copy was made of (`propose` runs each probe in a copy): a package
#: installed in editable mode (a src layout, say) is imported from there, not from the copy.
ROOT_ENV = "TESTFLEET_STATE_ROOT"
#: pytest's own variables, and the one above: they change with every test, or are ours.
PYTEST_ENVIRON = frozenset({"PYTEST_CURRENT_TEST", ROOT_ENV})
SIMPLE = (type(None), bool, int, float, complex, str, bytes)
CONTAINERS = (list, tuple, dict, set, frozenset)

_SHORT = reprlib.Repr()
_SHORT.maxstring = 60
_SHORT.maxother = 60


@dataclass(frozen=True)
class Value:
    """One value as a snapshot keeps it: identity, and for plain data its repr's digest."""

    identity: int
    digest: str | None
    shown: str


@dataclass(frozen=True)
class Change:
    """One difference between the state before a polluter and after it."""

    kind: str
    #: The attribute ("MODE", "Config.DEBUG"), variable, file, directory or fixture name.
    name: str
    #: rebound, mutated, set, changed, removed, created: what happened to it.
    how: str
    #: The module of an attribute; "cwd" or "tmp" for a file.
    place: str = ""
    before: str | None = None
    after: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def subject(self) -> str:
        """What changed, named as a person would look for it."""
        return {
            ATTRIBUTE: f"{self.place}.{self.name}",
            ENVIRON: f"${self.name}",
            FILE: f"{self.name} (in the {'temp' if self.place == 'tmp' else 'current'} directory)",
            CWD: "the current directory",
            FIXTURE: f"the fixture value {self.name} (shared with the victim)",
        }[self.kind]

    def describe(self) -> str:
        if self.kind == ENVIRON and self.how == "set":
            return f"{self.subject()} set to {self.after!r}"
        if self.before is None or self.after is None or self.how in ("created", "removed"):
            return f"{self.subject()} {self.how}"
        return f"{self.subject()} {self.how}: {self.before} -> {self.after}"


@dataclass
class Snapshot:
    attributes: dict[str, Value] = field(default_factory=dict)
    environ: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    cwd: str = ""
    #: More files than MAX_FILES: a file missing from the list may just be past the cut.
    truncated: bool = False


def value_of(obj: object) -> Value:
    """The identity of ``obj`` and, for plain data, a digest of its full repr."""
    shown = _short(obj)
    try:
        data = obj if _plain(obj, 0) else _instance_data(obj)
        text = None if data is None else repr(data)
    except Exception:
        # Any attribute lookup or repr may fail (a lazy settings object not configured
        # yet, a proxy outside its context); the identity is still kept.
        return Value(id(obj), None, shown)
    if text is None:
        return Value(id(obj), None, shown)
    return Value(id(obj), hashlib.sha1(text.encode(errors="replace")).hexdigest(), shown)


def _instance_data(obj: object) -> dict[str, Any] | None:
    """The attributes of an instance, when they are plain data (a settings object, say)."""
    if isinstance(obj, type | types.ModuleType | types.FunctionType):
        return None
    data = getattr(obj, "__dict__", None)
    return data if isinstance(data, dict) and _plain(data, 0) else None


def _short(obj: object) -> str:
    try:
        return _SHORT.repr(obj)
    except Exception:
        # A repr that fails shows as its type.
        return f"<{type(obj).__name__}>"


def _plain(obj: object, depth: int) -> bool:
    """Simple values, and containers of them not too long nor too deep."""
    if isinstance(obj, SIMPLE):
        return True
    if not isinstance(obj, CONTAINERS) or depth > 4 or len(obj) > MAX_LENGTH:
        return False
    items = [*obj.keys(), *obj.values()] if isinstance(obj, dict) else list(obj)
    return all(_plain(item, depth + 1) for item in items)


def own_modules(modules: Mapping[str, object], roots: Sequence[Path]) -> Iterator[types.ModuleType]:
    """The modules loaded from files under one of ``roots`` and not from an installed
    environment."""
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    for module in list(modules.values()):
        path = getattr(module, "__file__", None)
        if not isinstance(module, types.ModuleType) or not isinstance(path, str):
            continue
        resolved = Path(path).resolve()
        if any(resolved.is_relative_to(r) for r in roots) and not any(
            resolved.is_relative_to(p) for p in prefixes
        ):
            yield module


def roots(rootdir: Path) -> list[Path]:
    """Where the project's own modules are: pytest's rootdir, and the project a copy was
    made of (``ROOT_ENV``)."""
    original = os.environ.get(ROOT_ENV)
    return [rootdir.resolve(), *([Path(original).resolve()] if original else [])]


def attributes(modules: Iterator[types.ModuleType]) -> dict[str, Value]:
    """``"module:name"`` and ``"module:Class.name"`` of each module, and their values."""
    found: dict[str, Value] = {}
    for module in modules:
        for name, obj in list(vars(module).items()):
            if name.startswith("__"):
                continue
            try:
                found.update(_attribute(module.__name__, name, obj))
            except Exception:
                # Even isinstance looks ``__class__`` up, which a proxy may refuse: such
                # an attribute is left out rather than the whole snapshot.
                continue
    return found


def _attribute(module: str, name: str, obj: object) -> dict[str, Value]:
    # Functions count by identity: a patched function never put back is state too.
    if isinstance(obj, types.ModuleType):
        return {}
    if isinstance(obj, type):
        return _class_attributes(module, name, obj) if obj.__module__ == module else {}
    return {f"{module}:{name}": value_of(obj)}


def _class_attributes(module: str, name: str, cls: type) -> dict[str, Value]:
    # Plain data, and methods by identity (one patched and never put back); other
    # descriptors are the class's machinery, not state a test leaves.
    return {
        f"{module}:{name}.{attribute}": value_of(obj)
        for attribute, obj in list(vars(cls).items())
        if not attribute.startswith("__")
        and (_plain(obj, 0) or isinstance(obj, types.FunctionType))
    }


def files(directory: Path, *, recursive: bool) -> dict[str, str]:
    """Relative path -> size and modification time of the files (and empty dirs) under it."""
    found: dict[str, str] = {}
    for current, dirs, names in os.walk(directory):
        dirs[:] = sorted(
            d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("pytest-of-")
        )
        base = Path(current)
        for name in [*names, *(() if recursive else dirs)]:
            path = base / name
            try:
                info = path.stat()
            except OSError:
                continue
            kind = "dir" if path.is_dir() else f"{info.st_size}:{info.st_mtime_ns}"
            found[path.relative_to(directory).as_posix()] = kind
            if len(found) >= MAX_FILES:
                return found
        if not recursive:
            break
    return found


def take(roots: Sequence[Path], directory: Path) -> Snapshot:
    """The state of this process now: ``roots`` hold the project's own modules, and
    ``directory`` is where the run started (the current directory of the first test)."""
    cwd = Path.cwd()
    listed = {f"cwd:{k}": v for k, v in files(directory, recursive=True).items()}
    tmp = Path(tempfile.gettempdir())
    listed.update({f"tmp:{k}": v for k, v in files(tmp, recursive=False).items()})
    return Snapshot(
        attributes(own_modules(sys.modules, roots)),
        {k: v for k, v in os.environ.items() if k not in PYTEST_ENVIRON},
        listed,
        str(cwd),
        truncated=len(listed) >= MAX_FILES,
    )


def diff(before: Snapshot, after: Snapshot) -> list[Change]:
    """Every difference from ``before`` to ``after``, in a stable order."""
    changes: list[Change] = []
    for key in sorted(before.attributes.keys() & after.attributes.keys()):
        old, new = before.attributes[key], after.attributes[key]
        module, name = key.split(":", 1)
        if old.identity != new.identity:
            changes.append(Change(ATTRIBUTE, name, "rebound", module, old.shown, new.shown))
        elif old.digest != new.digest:
            changes.append(Change(ATTRIBUTE, name, "mutated", module, old.shown, new.shown))
    for name in sorted(before.environ.keys() | after.environ.keys()):
        old_env, new_env = before.environ.get(name), after.environ.get(name)
        if old_env != new_env:
            how = "set" if old_env is None else "removed" if new_env is None else "changed"
            changes.append(Change(ENVIRON, name, how, "", old_env, new_env))
    for key in sorted(before.files.keys() | after.files.keys()):
        old_file, new_file = before.files.get(key), after.files.get(key)
        cut = new_file is None and (before.truncated or after.truncated)
        if old_file != new_file and not cut:
            place, name = key.split(":", 1)
            how = "created" if old_file is None else "removed" if new_file is None else "changed"
            changes.append(Change(FILE, name, how, place))
    if before.cwd != after.cwd:
        changes.append(Change(CWD, after.cwd, "changed", "", before.cwd, after.cwd))
    return _outermost_files(changes)


def _outermost_files(changes: list[Change]) -> list[Change]:
    """Files created inside a directory that was created too: the directory says it all."""
    created = {(c.place, c.name) for c in changes if c.kind == FILE and c.how == "created"}

    def inside_new(change: Change) -> bool:
        parents = Path(change.name).parents
        return any((change.place, p.as_posix()) in created for p in parents if str(p) != ".")

    return [c for c in changes if c.kind != FILE or not inside_new(c)]
