"""`testfleet shard --plan N`: how the suite would split into N CI shards."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from testfleet.cli import output
from testfleet.cli.parsing import Commands, add_command, pytest_args
from testfleet.settings import argtypes
from testfleet.settings.kinds import Option
from testfleet.sharding import plan as sharding

NAME = "shard"
OPTIONS = (
    Option(
        NAME,
        ("--plan",),
        "number of shards",
        type=argtypes.positive_int,
        required=True,
        metavar="N",
    ),
    Option(
        NAME,
        ("--durations",),
        "timing report whose durations choose the split (default: the baseline, "
        "reports/test-timing-baseline.json, when it exists)",
        type=Path,
        default=None,
    ),
    *output.options(NAME, ("text", "markdown", "json")),
    Option(NAME, ("pytest_args",), "-- then pytest arguments", nargs=argparse.REMAINDER),
)


def add(commands: Commands) -> None:
    add_command(
        commands,
        NAME,
        OPTIONS,
        handle,
        help="show how the suite splits into N CI shards: tests and predicted seconds each",
        description="Collects the suite (nothing runs) and prints the plan every shard of "
        "`testfleet run --shard I/N` computes: each shard's test count and predicted seconds, "
        "from the durations of the committed baseline. Arguments after -- go to pytest.",
    )


def handle(args: argparse.Namespace) -> int:
    if args.durations is not None and not args.durations.is_file():
        return output.error(f"--durations: {args.durations} does not exist: give a timing report")
    with tempfile.TemporaryDirectory(prefix="testfleet-plan-") as tmp:
        document = sharding.collect_plan(
            args.plan, pytest_args(args.pytest_args), args.durations, Path(tmp)
        )
    if args.format == "json":
        text = json.dumps(document, indent=2) + "\n"
    else:
        text = sharding.render_plan(document, args.format)
    output.emit(text, args.output)
    return output.EXIT_OK
