"""`testfleet audit`: isolation hazards in test code, found without running it."""

from __future__ import annotations

import argparse
from pathlib import Path

from testfleet.cli import output
from testfleet.cli.parsing import Commands, add_command
from testfleet.diagnose.audit import rules as audit_rules
from testfleet.diagnose.audit import scan as audit
from testfleet.settings.kinds import Option

NAME = "audit"
OPTIONS = (
    Option(NAME, ("paths",), "files or directories", type=Path, nargs="+", metavar="PATH"),
    *output.options(NAME, audit.FORMATS),
    Option(
        NAME,
        ("--fail-on",),
        "exit 1 when a finding has this severity or higher (default low: any finding)",
        choices=audit_rules.SEVERITIES,
        default=audit_rules.LOW,
    ),
    Option(
        NAME,
        ("--exclude",),
        "skip paths matching this glob, relative to --root (repeatable), e.g. tests/material",
        action="append",
        default=[],
        metavar="GLOB",
    ),
    Option(
        NAME,
        ("--root",),
        "show paths relative to this directory (default: the current one)",
        type=Path,
        default=None,
    ),
)


def add(commands: Commands) -> None:
    add_command(
        commands,
        NAME,
        OPTIONS,
        handle,
        help="find isolation hazards in test code without running it",
        description="Reads the Python files under PATH (AST, nothing is imported or run) "
        "and lists what breaks parallel runs: shared paths and ports, shared state, fixed "
        "names, sleeps, pattern cleanups, data read but not created. Silence a line with "
        "'# testfleet: ignore[TF101]' (or a bare '# testfleet: ignore'). Exit 0 clean, "
        "1 findings at or above --fail-on, 2 an unknown path or a file that does not parse "
        "(the other files are still audited and reported).",
    )


def handle(args: argparse.Namespace) -> int:
    result = audit.audit_paths(args.paths, args.root, args.exclude)
    text = audit.render(result, args.format)
    output.emit(text, args.output)
    if args.output is not None:
        print(f"testfleet: audit: {audit.summary(result)}; written to {args.output}")
    if result.errors:
        # The findings above are incomplete: a file that does not parse was not audited.
        problems = "; ".join(result.errors)
        return output.error(f"{len(result.errors)} file(s) could not be audited: {problems}")
    return output.EXIT_FINDINGS if result.at_or_above(args.fail_on) else output.EXIT_OK
