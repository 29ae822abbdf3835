"""A command's parser, built from declared options, and the arguments after ``--``."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeAlias

from testfleet.settings.kinds import Option
from testfleet.settings.table import setting_options

__all__ = ["Commands", "add_command", "add_options", "pytest_args", "setting_options"]

#: What ``add_subparsers`` returns; a command module adds its parser to it.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Handler = Callable[[argparse.Namespace], int]


def add_options(parser: argparse.ArgumentParser, options: Iterable[Option]) -> None:
    for option in options:
        option.add_to(parser)


def add_command(
    commands: Commands,
    name: str,
    options: Sequence[Option],
    handler: Handler,
    **kwargs: Any,
) -> argparse.ArgumentParser:
    """The parser of ``name``: its settings' options first, then its own ``options``.

    ``name`` may be a subcommand's full name (``history prune``): the table's options are
    found by it, the parser is added under its last word.
    """
    parser: argparse.ArgumentParser = commands.add_parser(name.split()[-1], **kwargs)
    add_options(parser, (*setting_options(name), *options))
    parser.set_defaults(handler=handler)
    return parser


def pytest_args(
    rest: Sequence[str],
    options: argparse.ArgumentParser | None = None,
    namespace: argparse.Namespace | None = None,
) -> list[str]:
    """The pytest arguments: those after ``--``.

    With ``options``, the arguments before ``--`` are the command's options that followed
    a positional (argparse's REMAINDER took them) and are parsed into ``namespace``.
    Without, the arguments are pytest's with or without a leading ``--``.
    """
    given = list(rest)
    if options is None:
        return given[1:] if given[:1] == ["--"] else given
    cut = given.index("--") if "--" in given else len(given)
    if given[:cut]:
        options.parse_args(given[:cut], namespace=namespace)
    return given[cut + 1 :]
