"""Names that never collide, a scratch directory per worker, and settings pointed at it.

Unique names use the alphabet ``a-z0-9`` only, start with a letter and are at most
63 characters long, so one name is valid unquoted as a Neo4j label, property key or
relationship type, as a Neo4j database name (3-63 characters, a letter first, no
underscore), and as a file or directory name on every common file system.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import string
from collections.abc import MutableMapping
from pathlib import Path

import pytest

from testfleet.core import workers

ALPHABET = string.ascii_lowercase + string.digits
#: The longest name :func:`unique_name` returns: Neo4j's limit for database names.
MAX_NAME_LENGTH = 63
#: The longest prefix, after normalisation; the rest of the 63 characters is the suffix.
MAX_PREFIX_LENGTH = 24
#: Characters dropped from a prefix, so that ``user_sessions`` or ``My-Label`` are accepted.
SEPARATORS = "_-. "
#: Prefixes Neo4j keeps for itself: a database name may not start with these.
RESERVED_PREFIXES = ("system",)

_RUN_ID = re.compile(r"[a-z0-9]{12}")
_XDIST_WORKER = re.compile(r"gw(\d+)")

# One counter per process, not per config: two pytest sessions in one process (pytester
# in-process runs) may share a run id through TESTFLEET_RUN_ID and must not repeat
# names. A fork copies it, but the child's pid differs, and the pid is in the name.
_COUNTER = itertools.count()


def normalize_prefix(prefix: str) -> str:
    """Lowercase ``prefix`` and drop ``_ - . space``; ValueError when it cannot be made valid."""
    if not isinstance(prefix, str):
        raise TypeError(f"a unique-name prefix must be a str, not {type(prefix).__name__}")
    value = "".join(ch for ch in prefix.lower() if ch not in SEPARATORS)
    bad = sorted({ch for ch in value if ch not in ALPHABET})
    if bad:
        raise ValueError(
            f"unique-name prefix {prefix!r} contains {''.join(bad)!r}: use ASCII letters and "
            "digits only (names must be valid as Neo4j labels, database names and file names)"
        )
    if not value:
        raise ValueError(
            f"unique-name prefix {prefix!r} is empty once '_', '-', '.' and spaces are dropped: "
            "give a short word such as 'person' or 'sessions'"
        )
    if not value[0].isalpha():
        raise ValueError(
            f"unique-name prefix {prefix!r} starts with {value[0]!r}: start it with a letter "
            f"(Neo4j labels and database names must), e.g. 'n{value}'"
        )
    if len(value) > MAX_PREFIX_LENGTH:
        raise ValueError(
            f"unique-name prefix {prefix!r} is {len(value)} characters long: use at most "
            f"{MAX_PREFIX_LENGTH}, so that the name with its suffix fits Neo4j's "
            f"{MAX_NAME_LENGTH}-character limit"
        )
    if value.startswith(RESERVED_PREFIXES):
        raise ValueError(
            f"unique-name prefix {prefix!r} starts with 'system', which Neo4j reserves for "
            "its own databases: choose another word"
        )
    return value


def run_token(run_id: str) -> str:
    """The run id as 12 name characters: itself if it is 12 of ``a-z0-9``, else a hash."""
    if _RUN_ID.fullmatch(run_id):
        return run_id
    return hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:12]


def worker_token(worker: str) -> str:
    """``w3`` for xdist's ``gw3``, ``m`` for the main process, ``x`` and a hash otherwise."""
    if worker == workers.MAIN_WORKER:
        return "m"
    match = _XDIST_WORKER.fullmatch(worker)
    if match:
        return f"w{match.group(1)}"
    return "x" + hashlib.sha256(worker.encode("utf-8")).hexdigest()[:4]


def unique_name(prefix: str, config: pytest.Config) -> str:
    """A name no other call makes, in any test, worker or run: ``{prefix}{run}{worker}p{pid}n{n}``.

    The run id (12 characters) separates concurrent runs, even on other machines sharing
    one server; the worker id and process id separate the processes of a run; the
    counter separates the names of one process. Each field after the run id is digits
    led by a letter, so two different field values never spell the same name.
    """
    head = normalize_prefix(prefix)
    name = (
        f"{head}{run_token(workers.run_id(config))}"
        f"{worker_token(workers.worker_id(config))}p{os.getpid()}n{next(_COUNTER)}"
    )
    if len(name) > MAX_NAME_LENGTH:  # pragma: no cover - needs ~10**10 names in one process
        raise ValueError(f"unique name {name!r} is longer than {MAX_NAME_LENGTH} characters")
    return name


def worker_dir(factory: pytest.TempPathFactory, config: pytest.Config) -> Path:
    """This worker's scratch directory, created on first use and kept for the whole session.

    It sits in pytest's base temporary directory, which is new for every run and
    separate for every xdist worker, so no other worker or run ever writes there.
    """
    path = factory.getbasetemp() / f"testfleet-{workers.worker_id(config)}"
    path.mkdir(exist_ok=True)
    return path


class Redirect:
    """Points environment variables, attributes and mapping keys at a directory for one test.

    Every change goes through ``monkeypatch``, so it is undone when the test ends,
    whatever its outcome.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
        self.monkeypatch = monkeypatch
        self.directory = directory

    def path(self, subpath: str = "") -> Path:
        """``directory / subpath``, created; ``subpath`` must stay inside the directory."""
        target = (self.directory / subpath) if subpath else self.directory
        if subpath and (Path(subpath).is_absolute() or ".." in Path(subpath).parts):
            raise ValueError(
                f"subpath {subpath!r} leaves {self.directory}: give a relative path such as "
                "'data/sessions'"
            )
        target.mkdir(parents=True, exist_ok=True)
        return target

    def env(self, name: str, subpath: str = "") -> Path:
        """Set the environment variable ``name`` to the directory (or ``subpath`` in it)."""
        target = self.path(subpath)
        self.monkeypatch.setenv(name, str(target))
        return target

    def attr(self, target: object, name: str, subpath: str = "") -> Path:
        """Set ``target.name`` to the directory, as a str when it was a str, else as a Path."""
        if not hasattr(target, name):
            raise AttributeError(
                f"{target!r} has no attribute {name!r} to point at {self.directory}: "
                "check the settings attribute's name"
            )
        path = self.path(subpath)
        old = getattr(target, name)
        self.monkeypatch.setattr(target, name, str(path) if isinstance(old, str) else path)
        return path

    def item(self, mapping: MutableMapping[str, object], key: str, subpath: str = "") -> Path:
        """Set ``mapping[key]`` to the directory, as a str when it was a str, else as a Path."""
        path = self.path(subpath)
        old = mapping.get(key)
        self.monkeypatch.setitem(mapping, key, str(path) if isinstance(old, str) else path)
        return path


def worker_index(config: pytest.Config) -> int:
    """3 for xdist's ``gw3``, 0 for the main process (and any other worker id)."""
    match = _XDIST_WORKER.fullmatch(workers.worker_id(config))
    return int(match.group(1)) if match else 0
