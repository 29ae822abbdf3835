"""``python -m testfleet.container``: build the test image and run it in compose, for real.

    python -m testfleet.container run [--offline] [--project DIR] [-- COMMAND ...]
    python -m testfleet.container base [--project DIR]

Exit status: the container command's own; 1 when a build failed or the graph service
never became healthy; 2 for no usable Docker engine or a bad argument; 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from testfleet.container import offline
from testfleet.container.compose import GraphNeverHealthy
from testfleet.container.engine import EngineError, connect
from testfleet.container.workflow import COMPOSE_FILE, DEFAULT_CACHE, Plan, execute, wheelhouse_for

PROG = "python -m testfleet.container"


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds above 0, such as 180"
        )
    return value


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    commands = main.add_subparsers(dest="action", required=True)
    run = commands.add_parser(
        "run", help="build the test image and run it next to the graph service"
    )
    base = commands.add_parser("base", help="build the offline base images only")
    for sub in (run, base):
        sub.add_argument(
            "--project", type=Path, default=Path(), help="the project's folder (default: here)"
        )
        sub.add_argument(
            "--cache", type=Path, default=DEFAULT_CACHE, help="where the wheelhouse goes"
        )
        sub.add_argument(
            "--mirror", default=offline.DEFAULT_MIRROR, help="Debian mirror for debootstrap"
        )
        sub.add_argument("--rebuild-rootfs", action="store_true", help="debootstrap the base anew")
    run.add_argument(
        "--offline",
        action="store_true",
        help="no image registry: Debian-built base, the local Bolt server for Neo4j",
    )
    run.add_argument(
        "--no-build",
        dest="build",
        action="store_false",
        help="run the images an earlier run built, building nothing",
    )
    run.add_argument(
        "--health-timeout",
        type=positive_seconds,
        default=180.0,
        help="seconds to wait for a healthy graph service (default 180)",
    )
    run.add_argument(
        "command", nargs="*", help="the tests' command (default: the image's, invoke ci)"
    )
    return main


def plan_from(args: argparse.Namespace) -> Plan:
    project = args.project.resolve()
    if not (project / COMPOSE_FILE).is_file():
        raise EngineError(
            f"{project} has no {COMPOSE_FILE}: run in a project set up by `testfleet init`, "
            "or pass --project DIR"
        )
    return Plan(
        project=project,
        command=tuple(getattr(args, "command", ())),
        offline=getattr(args, "offline", True),
        health_timeout=getattr(args, "health_timeout", 180.0),
        cache=args.cache,
        mirror=args.mirror,
        rebuild_rootfs=args.rebuild_rootfs,
        build=getattr(args, "build", True),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        plan = plan_from(args)
        engine = connect()
        if args.action == "base":
            offline.build_base_images(
                engine, wheelhouse_for(plan), mirror=plan.mirror, rebuild_rootfs=plan.rebuild_rootfs
            )
            return 0
        return execute(engine, plan)
    except EngineError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except (offline.OfflineBuildError, GraphNeverHealthy) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"{PROG}: interrupted; the containers, networks and volumes are removed",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
