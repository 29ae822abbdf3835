"""What every command shares: exit statuses, the output options and the one way to write them.

``--format``, ``--output``, ``--json``, ``--summary`` and ``--step-summary`` mean the same in
every command: they are declared here and written through ``emit`` and ``append_summaries``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from testfleet.core.atomic import append_text_atomic, write_text_atomic
from testfleet.settings.kinds import Option

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
OUTPUT_HELP = "write to this file (atomically) instead of stdout"


def options(
    command: str,
    formats: tuple[str, ...] | None = None,
    *,
    format_help: str = "output format (default text)",
    output: bool = True,
    json_help: str | None = None,
    summary: bool = False,
) -> tuple[Option, ...]:
    """The output options of ``command``, those it has."""
    declared: list[Option] = []
    if formats is not None:
        declared.append(
            Option(command, ("--format",), format_help, choices=formats, default="text")
        )
    if output:
        declared.append(Option(command, ("--output", "-o"), OUTPUT_HELP, type=Path))
    if json_help is not None:
        declared.append(Option(command, ("--json",), json_help, type=Path))
    if summary:
        declared += summary_options(command)
    return tuple(declared)


def summary_options(command: str) -> tuple[Option, ...]:
    """``--summary FILE`` and ``--step-summary``: where the markdown section is appended."""
    return (
        Option(
            command,
            ("--summary",),
            "append the markdown section to this file, atomically",
            type=Path,
        ),
        Option(
            command,
            ("--step-summary",),
            f"also append the markdown section to the file named by ${STEP_SUMMARY_ENV}, "
            "when that is set",
            action="store_true",
        ),
    )


def emit(text: str, output: Path | None) -> None:
    """``text`` to ``--output`` (atomically), or else to stdout."""
    if output is not None:
        write_text_atomic(output, text)
    else:
        sys.stdout.write(text)


def step_summary_file() -> Path | None:
    """The file named by ``$GITHUB_STEP_SUMMARY``, when it is set."""
    name = os.environ.get(STEP_SUMMARY_ENV, "").strip()
    return Path(name) if name else None


def summary_targets(args: argparse.Namespace) -> list[Path]:
    """``--summary``, and with ``--step-summary`` the file of ``$GITHUB_STEP_SUMMARY``."""
    step = step_summary_file() if args.step_summary else None
    return [target for target in (args.summary, step) if target is not None]


def append_summaries(args: argparse.Namespace, markdown: str) -> None:
    """Append the markdown section to every summary file the options name."""
    for target in summary_targets(args):
        append_text_atomic(target, markdown)


def error(message: str) -> int:
    print(f"testfleet: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def warn(message: str) -> None:
    print(message, file=sys.stderr)
