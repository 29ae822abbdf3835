"""How a setting is declared: its kind (how it is written), its options and the record.

Imports no testfleet module but the worker-count parser: the settings table is built from
these, and loading reads them.
"""

from __future__ import annotations

import argparse
import builtins
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testfleet.core.workers import parse_workers


@dataclass(frozen=True)
class Kind:
    """How a setting is written: in an environment variable (text) and in TOML."""

    name: str
    #: Text of an environment variable or option to a value; raises ValueError saying what to use.
    parse: Callable[[str], Any]
    #: The TOML types accepted; a string is always read with ``parse``.
    toml_types: tuple[type, ...] = (str,)
    #: A TOML value of one of ``toml_types`` (other than str) to a value; default: as it is.
    convert: Callable[[Any], Any] | None = None

    def from_toml(self, value: Any) -> Any:
        if isinstance(value, bool) and bool not in self.toml_types:
            # bool is an int in Python; `workers = true` is no count.
            raise ValueError(f"expected {self.name}, not a boolean")
        if not isinstance(value, self.toml_types):
            raise ValueError(f"expected {self.name}, not {_toml_type(value)}")
        if isinstance(value, str) and str not in self.toml_types:
            raise ValueError(f"expected {self.name}, not a string")
        if isinstance(value, str):
            return self.parse(value)
        return self.convert(value) if self.convert is not None else value


def _toml_type(value: Any) -> str:
    names = {str: "a string", bool: "a boolean", int: "an integer", float: "a number"}
    names.update({list: "an array", dict: "a table"})
    return next((text for kind, text in names.items() if type(value) is kind), type(value).__name__)


def _text(text: str) -> str:
    return text.strip()


def _path(text: str) -> Path:
    if not text.strip():
        raise ValueError("the path is empty: give a file or directory name")
    return Path(text.strip()).expanduser()


def integer(minimum: int = 1) -> Kind:
    """A whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(str(text).strip())
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number, such as {max(minimum, 3)}") from None
        if value < minimum:
            raise ValueError(f"{value} is below {minimum}: use {minimum} or more")
        return value

    return Kind(f"a whole number >= {minimum}", parse, (int, str), convert=parse)


def number(minimum: float = 0.0, maximum: float | None = None) -> Kind:
    """A number from ``minimum`` to ``maximum``."""
    span = f">= {minimum:g}" if maximum is None else f"from {minimum:g} to {maximum:g}"

    def parse(text: str) -> float:
        try:
            value = float(str(text).strip())
        except ValueError:
            raise ValueError(f"{text!r} is not a number, such as 2.5") from None
        if not (value >= minimum and (maximum is None or value <= maximum)):
            raise ValueError(f"{value:g} is out of range: use a number {span}")
        return value

    return Kind(f"a number {span}", parse, (int, float, str), convert=parse)


def percent(maximum: float = 100.0) -> Kind:
    """A percentage from 0 to ``maximum``: ``5``, ``2.5`` or ``5%``."""
    plain = number(0, maximum)

    def parse(text: str) -> float:
        value: float = plain.parse(str(text).strip().removesuffix("%"))
        return value

    return Kind(f"a percentage from 0 to {maximum:g}", parse, (int, float, str), convert=parse)


TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def _flag(text: str) -> bool:
    value = text.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ValueError(f"{text!r} is not a yes/no value: use true or false (also 1/0, yes/no)")


def choice(*values: str) -> Kind:
    """One of ``values``."""

    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in values:
            raise ValueError(f"{text!r} is not one of {', '.join(values)}")
        return value

    return Kind("one of " + ", ".join(values), parse)


def _words(text: str) -> list[str]:
    return [part for part in text.replace(",", " ").split() if part]


def _strings(value: Any) -> list[str]:
    if not all(isinstance(item, str) for item in value):
        raise ValueError("expected an array of strings; an item is not a string")
    return [str(item).strip() for item in value]


def _args(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} cannot be split into arguments: {exc}") from None


def _workers(text: str) -> Any:
    return parse_workers(str(text))


TEXT = Kind("a string", _text)
PATH = Kind("a path", _path)
FLAG = Kind("true or false", _flag, (bool,))
#: Names: a TOML array of strings, or in the environment separated by commas or spaces.
NAMES = Kind("an array of strings", _words, (list, str), convert=_strings)
#: Command-line arguments: a TOML array, or a string split as a shell would.
ARGS = Kind("an array of arguments", _args, (list, str), convert=_strings)
WORKERS = Kind("a whole number >= 1 or 'auto'", _workers, (int, str), convert=_workers)


#: The ``command`` of a pytest option (testfleet's plugin) and of the Neo4j plugin's.
PYTEST = "pytest"
PYTEST_NEO4J = "pytest neo4j"
#: The ``command`` of an invoke task's option: named in the docs, built by invoke.
INVOKE_CI = "invoke ci"


#: An option's default left to argparse (None is a default of its own: "not given").
NOT_GIVEN: Any = object()


@dataclass(frozen=True)
class Option:
    """One option (or positional argument) of a ``testfleet`` command or of pytest.

    The fields are argparse's (and pytest's ``addoption``, which takes the same); one left
    at None (``default``: at NOT_GIVEN) is not passed, so argparse's own default applies.
    """

    #: The command that takes it (``run``, ``history prune``), or PYTEST / PYTEST_NEO4J.
    command: str
    #: ``("--output", "-o")``; a positional argument's name, ``("path",)``.
    flags: tuple[str, ...]
    help: str
    type: Callable[[str], Any] | None = None
    default: Any = NOT_GIVEN
    metavar: str | None = None
    dest: str | None = None
    action: str | builtins.type[argparse.Action] | None = None
    choices: tuple[str, ...] | None = None
    nargs: str | int | None = None
    required: bool | None = None
    #: Named in the docs' option column; False for a second name or another command's copy.
    in_docs: bool = True

    @property
    def reference(self) -> str:
        """How the docs name it: ``run --workers``, or a pytest option's flag alone."""
        if self.command in (PYTEST, PYTEST_NEO4J):
            return self.flags[0]
        return f"{self.command} {self.flags[0]}"

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``add_argument`` / ``addoption``."""
        names = ("help", "type", "metavar", "dest", "action", "choices", "nargs", "required")
        given = {name: getattr(self, name) for name in names}
        arguments = {name: value for name, value in given.items() if value is not None}
        if self.default is not NOT_GIVEN:
            arguments["default"] = self.default
        return arguments

    def add_to(self, parser: Any) -> None:
        """Add it to an argparse parser or a pytest option group."""
        adder = getattr(parser, "add_argument", None) or parser.addoption
        adder(*self.flags, **self.arguments())


@dataclass(frozen=True)
class Setting:
    """One setting: its key in ``[tool.testfleet]``, type, default, variable and help."""

    name: str
    kind: Kind
    default: Any
    env: str | None
    help: str
    #: Where it is used: the sections of ``testfleet config`` and docs/configuration.md.
    section: str = "run"
    #: The command-line and pytest options that override it, declared here, built from here.
    options: tuple[Option, ...] = ()
    #: How the default reads in the docs when it is no plain value (None, computed).
    default_text: str | None = None
    #: Never read from pyproject.toml (a password) and never shown.
    secret: bool = False

    @property
    def option(self) -> str | None:
        """The options as the docs name them, e.g. ``run --workers; invoke ci --workers``."""
        shown = [option.reference for option in self.options if option.in_docs]
        return "; ".join(shown) or None

    def describe_default(self) -> str:
        if self.default_text is not None:
            return self.default_text
        return show(self.default)


def show(value: Any) -> str:
    """A value as the docs and ``testfleet config`` print it."""
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(shlex.quote(str(item)) for item in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
