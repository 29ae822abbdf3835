"""`testfleet config`: every setting's effective value and where it came from."""

from __future__ import annotations

import argparse
import json

from testfleet.cli import output
from testfleet.cli.parsing import Commands, add_command
from testfleet.settings import config
from testfleet.settings.kinds import Option
from testfleet.settings.table import SECTIONS, SETTINGS

NAME = "config"
OPTIONS = (
    Option(NAME, ("names",), "only these settings", nargs="*", metavar="NAME"),
    *output.options(NAME, ("text", "json")),
    # The reference tables of docs/configuration.md, generated from the declarations.
    Option(NAME, ("--reference",), argparse.SUPPRESS, action="store_true"),
)


def add(commands: Commands) -> None:
    add_command(
        commands,
        NAME,
        OPTIONS,
        handle,
        help="show every setting's effective value and where it came from",
        description="Reads [tool.testfleet] in the project's pyproject.toml and the "
        "environment and prints each setting's value and its source: a command-line option "
        "beats an environment variable, which beats pyproject.toml, which beats the default. "
        "Exit 0, or 2 when the table has an unknown key or a wrong type, pyproject.toml is "
        "malformed or a variable has a value that cannot be used.",
    )


def handle(args: argparse.Namespace) -> int:
    if args.reference:
        text = config.render_reference(SETTINGS, SECTIONS)
    else:
        loaded = config.load()
        values = [loaded.resolve(name) for name in args.names or loaded.settings]
        if args.format == "json":
            text = json.dumps(config.render_json(loaded, values), indent=2) + "\n"
        else:
            text = config.render_text(loaded, values, SECTIONS)
    output.emit(text, args.output)
    return output.EXIT_OK
