"""`testfleet init`: a project set up; the work is in testfleet.scaffold."""

from __future__ import annotations

import argparse
from pathlib import Path

from testfleet.cli.parsing import Commands, add_command
from testfleet.settings.kinds import Option

NAME = "init"
OPTIONS = (
    Option(NAME, ("path",), "the project (default: here)", type=Path, nargs="?", default=Path()),
    Option(
        NAME,
        ("--neo4j",),
        "add a Neo4j service even though the neo4j driver is not among the dependencies",
        action="store_true",
    ),
    Option(NAME, ("--force",), "replace files that differ", action="store_true"),
    Option(NAME, ("--dry-run",), "only show what would change", action="store_true"),
)


def add(commands: Commands) -> None:
    add_command(
        commands,
        NAME,
        OPTIONS,
        handle,
        help="set a project up: noxfile, tasks, Dockerfile, compose, CI workflow, docs",
        description="Writes a thin noxfile.py and tasks.py, a Dockerfile with a test stage, "
        "docker-compose.test.yml, a GitHub workflow, docs/testing.md, docs/rollback.md, "
        "docs/test-isolation-audit.md and CODEOWNERS, and adds [tool.testfleet] and the "
        "coverage settings to pyproject.toml. A file the project has is kept (its difference "
        "is shown) unless --force. Exit 0 when done, 2 when the project cannot be set up "
        "(nothing is written then).",
    )


def handle(args: argparse.Namespace) -> int:
    # Imported here: the scaffold (its templates and project detection) is for this
    # command alone, not for `testfleet --help`, which builds every command's parser.
    from testfleet import scaffold

    return scaffold.run(args.path, neo4j=args.neo4j, force=args.force, dry_run=args.dry_run)
