"""One compose run of the test image: graph service up and healthy, tests, everything down.

``compose run`` alone waits for a healthy Neo4j with no limit but the healthcheck's
retries, and leaves the service running after it. Here the service is started first
and waited for with a deadline (its last log lines are shown when it never becomes
healthy), and whatever the project's containers, networks and volumes are, they are
removed at the end, also after a failure or Ctrl-C.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from testfleet.container.engine import Engine

GRAPH_SERVICE = "neo4j"
TESTS_SERVICE = "tests"
LOG_LINES = 30
POLL_INTERVAL = 1.0
_NAME_LINE = re.compile(r"^name:.*\n", re.MULTILINE)


class GraphNeverHealthy(Exception):
    """The graph service was not healthy in time; the message carries its last log lines."""


@dataclass
class ComposeProject:
    """The compose files of one project and how compose is called on them."""

    engine: Engine
    directory: Path
    files: Sequence[Path]
    name: str
    env: Mapping[str, str] = field(default_factory=dict)

    def command(self, *args: str) -> list[str]:
        files = [word for path in self.files for word in ("-f", str(path))]
        return [
            *self.engine.compose,
            "--project-directory",
            str(self.directory),
            "-p",
            self.name,
            *files,
            *args,
        ]

    def run(self, *args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
        command = self.command(*args)
        if not capture:
            print("container:", " ".join(command), flush=True)
        return subprocess.run(
            command,
            env=dict(self.env),
            stdin=subprocess.DEVNULL if capture else None,
            capture_output=capture,
            text=True,
            check=False,
        )


def project_name(compose_file: Path) -> str:
    """The file's top-level ``name:``, else its folder's name, as compose itself picks it."""
    match = re.search(r"^name:\s*(\S+)", compose_file.read_text(encoding="utf-8"), re.MULTILINE)
    name = match.group(1) if match else compose_file.resolve().parent.name
    return re.sub(r"[^a-z0-9_-]", "", name.lower())


@contextmanager
def readable_by(engine: Engine, compose_file: Path) -> Iterator[Path]:
    """The compose file as this compose reads it: Compose 1 refuses the top-level ``name:``.

    The name is passed with ``-p`` instead, and ``--project-directory`` keeps relative
    paths where they were, so the copy can live outside the project.
    """
    if engine.compose[-1] == "compose":
        yield compose_file
        return
    with tempfile.TemporaryDirectory(prefix="testfleet-compose-") as folder:
        copy = Path(folder) / compose_file.name
        copy.write_text(_NAME_LINE.sub("", compose_file.read_text(encoding="utf-8")), "utf-8")
        yield copy


def health_status(project: ComposeProject, service: str) -> str:
    """``healthy``, ``starting``, ``unhealthy``, ``exited``... of the service's container."""
    ids = project.run("ps", "-q", service, capture=True).stdout.split()
    if not ids:
        return "missing"
    # A container that has stopped says so, whatever its last health status was.
    template = (
        '{{if ne .State.Status "running"}}{{.State.Status}}'
        "{{else if .State.Health}}{{.State.Health.Status}}{{else}}running{{end}}"
    )
    result = subprocess.run(
        [project.engine.docker, "inspect", "--format", template, ids[0]],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return result.stdout.strip() or "missing"


def wait_healthy(
    status: Callable[[], str],
    timeout: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Poll ``status`` until ``healthy``; the last status seen if the deadline passes first.

    A container that has exited or is gone will not become healthy: the wait ends at once.
    """
    deadline = clock() + timeout
    while True:
        seen = status()
        if seen == "healthy" or seen in ("exited", "dead", "missing"):
            return seen
        if clock() >= deadline:
            return seen
        sleep(POLL_INTERVAL)


def start_graph(project: ComposeProject, timeout: float, service: str = GRAPH_SERVICE) -> None:
    """``up -d`` the graph service and wait; GraphNeverHealthy with its log tail otherwise."""
    started = project.run("up", "-d", service)
    seen = "not started" if started.returncode != 0 else ""
    if not seen:
        seen = wait_healthy(lambda: health_status(project, service), timeout)
        if seen == "healthy":
            return
    logs = project.run("logs", "--no-color", "--tail", str(LOG_LINES), service, capture=True)
    if seen in ("starting", "unhealthy", "running"):
        what = f"was not healthy after {timeout:g} s (last status: {seen})"
    else:
        what = f"stopped before it was healthy (status: {seen})"
    raise GraphNeverHealthy(
        f"the {service} service {what}; its last log lines:\n"
        f"{(logs.stdout + logs.stderr).rstrip() or '(none)'}"
    )


def _labelled(engine: Engine, kind: str, name: str) -> list[str]:
    command = [
        engine.docker,
        kind,
        "ls",
        "-q",
        "--filter",
        f"label=com.docker.compose.project={name}",
    ]
    if kind == "container":
        command.insert(3, "--all")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return result.stdout.split()


def clean_up(project: ComposeProject) -> list[str]:
    """``down`` with volumes and one-off containers, then anything still labelled; what was left."""
    project.run("down", "--volumes", "--remove-orphans", "--timeout", "10")
    engine, left = project.engine, list[str]()
    for kind in ("container", "network", "volume"):
        ids = _labelled(engine, kind, project.name)
        if ids:
            remove = ["rm", "--force"] if kind != "network" else ["rm"]
            subprocess.run([engine.docker, kind, *remove, *ids], capture_output=True, check=False)
            left.extend(f"{kind} {item}" for item in _labelled(engine, kind, project.name))
    return left
