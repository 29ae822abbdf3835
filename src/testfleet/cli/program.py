"""The ``testfleet`` command: its commands, each a module of ``testfleet.cli``, and exit codes.

A command's module is imported only when the command runs or ``--help`` lists them all:
`testfleet report` does not pay for the imports of bisect, the audit or the history.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

import testfleet
from testfleet.cli.output import EXIT_INTERRUPTED, error
from testfleet.core import leave
from testfleet.settings.kinds import Option
from testfleet.timing.report import ReportError

#: Every command and its module, in the order ``testfleet --help`` lists them.
COMMANDS: dict[str, str] = {
    "report": "testfleet.cli.report",
    "merge": "testfleet.cli.merge",
    "run": "testfleet.cli.run",
    "randomized": "testfleet.cli.randomized",
    "bisect": "testfleet.cli.bisect",
    "classify": "testfleet.cli.classify",
    "audit": "testfleet.cli.audit",
    "config": "testfleet.cli.config",
    "history": "testfleet.cli.history",
    "init": "testfleet.cli.init",
    "shard": "testfleet.cli.shard",
    "combine": "testfleet.cli.combine",
}


class _Version(argparse.Action):
    """``--version``: the installed version, read only when asked for (it costs an import)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help=str(kwargs.get("help")))

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        # The package's __getattr__ reads the installed metadata only now.
        print(f"testfleet {testfleet.__version__}")
        parser.exit()


#: The options of ``testfleet`` itself, before the command.
OPTIONS = (Option("testfleet", ("--version",), "show the version and exit", action=_Version),)


def command_module(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name])


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with ``only`` the one command a run needs."""
    parser = argparse.ArgumentParser(
        prog="testfleet",
        description="Timing reports, phased parallel runs and randomized runs for pytest suites.",
    )
    for option in OPTIONS:
        option.add_to(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        if only is None or name == only:
            command_module(name).add(commands)
    return parser


def console() -> int:
    """The ``testfleet`` command, and ``python -m testfleet``.

    Here, unlike a call of :func:`main` from other code, `testfleet run` may run its
    pytest in this process: nothing else shares the process with that session. For the
    same reason the process leaves as soon as the command is done, without freeing a
    whole session's objects one by one (:mod:`testfleet.core.leave`).
    """
    status = main(in_process=True)
    leave.leave(status)
    return status


def main(argv: Sequence[str] | None = None, *, in_process: bool = False) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    # The command comes first: build only its parser. Anything else (--help, a typo)
    # gets the whole command line, which lists every command.
    only = arguments[0] if arguments and arguments[0] in COMMANDS else None
    args = build_parser(only).parse_args(arguments)
    args.in_process = in_process
    try:
        return int(args.handler(args))
    except (ReportError, ValueError, OSError) as exc:
        # A report that cannot be used, a value out of range, a file that cannot be read
        # or written: the message names it.
        return error(str(exc))
    except KeyboardInterrupt:
        print("testfleet: interrupted; reports that existed are left as they were", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
