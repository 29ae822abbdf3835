"""The whole container run of a project: base images, test image, compose run, clean-up.

A project is either this repository (its Dockerfile installs the ``dev`` extra of
pyproject.toml) or one set up by ``testfleet init`` (its Dockerfile installs testfleet,
then what ``testfleet.scaffold.deps`` reads from its manifests). Offline, both get
their wheels from one wheelhouse built on the host.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import testfleet
from testfleet.container import offline as images
from testfleet.container.compose import (
    GRAPH_SERVICE,
    TESTS_SERVICE,
    ComposeProject,
    clean_up,
    project_name,
    readable_by,
    start_graph,
)
from testfleet.container.engine import Engine
from testfleet.scaffold.deps import project_requirements

COMPOSE_FILE = "docker-compose.test.yml"
#: The override that replaces Neo4j offline; the same file as this repository's own.
OFFLINE_OVERRIDE = Path(__file__).with_name("docker-compose.offline.yml")
#: The user the test image runs as when the host user is root (the image refuses 0).
DEFAULT_UID = 10001
DEFAULT_CACHE = Path.home() / ".cache" / "testfleet" / "offline"
#: What `nox -s docker` runs by default: the Neo4j tests and the timing capture, offline.
#: The first `--` ends testfleet.container's options; the second is nox's.
NOX_SESSION_ARGS = ("--offline", "--", "nox", "-s", "tests_parallel", "--", "-m", "neo4j")


@dataclass(frozen=True)
class Plan:
    """What one run does; built from the command line."""

    project: Path
    command: tuple[str, ...] = ()
    offline: bool = False
    health_timeout: float = 180.0
    cache: Path = DEFAULT_CACHE
    mirror: str = images.DEFAULT_MIRROR
    rebuild_rootfs: bool = False
    #: False: run the images as they are (built by an earlier run), nothing is built.
    build: bool = True

    @property
    def name(self) -> str:
        """The compose project's name, which also names its images."""
        return project_name(self.project / COMPOSE_FILE)

    @property
    def tests_image(self) -> str:
        return f"{self.name}:offline"


def testfleet_checkout() -> Path | None:
    """The source tree of the running testfleet, when it runs from one (editable install)."""
    root = Path(testfleet.__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "testfleet"' in pyproject.read_text(encoding="utf-8"):
        return root
    return None


def is_testfleet(project: Path) -> bool:
    pyproject = project / "pyproject.toml"
    return pyproject.is_file() and 'name = "testfleet"' in pyproject.read_text(encoding="utf-8")


def wheelhouse_for(plan: Plan) -> images.Wheelhouse:
    """Every wheel the project's Dockerfile and the graph service install."""
    checkout = testfleet_checkout()
    graph = [req for req in images.GRAPH_REQUIREMENTS if req != "testfleet"]
    local = (checkout,) if checkout is not None else ()
    if is_testfleet(plan.project):
        requirements = images.pyproject_requirements(plan.project / "pyproject.toml", "dev")
    else:
        own = images.pyproject_requirements(checkout / "pyproject.toml") if checkout else []
        requirements = [*own, *project_requirements(plan.project)]
        if checkout is None:
            graph.append(f"testfleet=={testfleet.__version__}")
    return images.Wheelhouse(
        directory=plan.cache / "wheels" / plan.name,
        requirements=tuple(dict.fromkeys([*requirements, *graph])),
        local=local,
        name=plan.name,
    )


def app_ids() -> tuple[int, int]:
    """The ids the image runs as: the caller's, or 10001 for root, which the image refuses."""
    uid, gid = os.getuid(), os.getgid()
    return (uid, gid) if uid != 0 else (DEFAULT_UID, DEFAULT_UID)


def prepare_reports(project: Path, uid: int, gid: int) -> Path:
    """``reports/`` exists and the container's user may write to it (it is bind-mounted)."""
    reports = project / "reports"
    reports.mkdir(exist_ok=True)
    if os.getuid() == 0:
        for path in [reports, *reports.rglob("*")]:
            os.chown(path, uid, gid, follow_symlinks=False)
    return reports


def build_test_image(engine: Engine, plan: Plan, uid: int, gid: int) -> None:
    args = ["--build-arg", f"APP_UID={uid}", "--build-arg", f"APP_GID={gid}"]
    if plan.offline:
        args += ["--build-arg", f"PYTHON_IMAGE={images.python_image(plan.name)}"]
    images.run(
        [
            engine.docker,
            "build",
            "--target",
            "test",
            *args,
            "--tag",
            plan.tests_image,
            plan.project,
        ],
        what="docker build --target test",
        env=engine.build_env(),
    )


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI job cancelled) cleans up as Ctrl-C does."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def compose_env(plan: Plan, uid: int, gid: int) -> dict[str, str]:
    env = {**os.environ, "HOST_UID": str(uid), "HOST_GID": str(gid)}
    env.setdefault("TESTFLEET_TESTS_IMAGE", plan.tests_image)
    env.setdefault("TESTFLEET_GRAPH_IMAGE", images.GRAPH_IMAGE)
    return env


def services(project: ComposeProject) -> list[str]:
    result = project.run("config", "--services", capture=True)
    return result.stdout.split()


def run_in_compose(engine: Engine, plan: Plan, uid: int, gid: int) -> int:
    """Graph service up and healthy, the tests' command, then everything down."""
    with readable_by(engine, plan.project / COMPOSE_FILE) as compose_file:
        files = [compose_file, *([OFFLINE_OVERRIDE] if plan.offline else [])]
        project = ComposeProject(
            engine=engine,
            directory=plan.project,
            files=files,
            name=plan.name,
            env=compose_env(plan, uid, gid),
        )
        try:
            if GRAPH_SERVICE in services(project):
                start_graph(project, plan.health_timeout)
            return project.run("run", "--rm", TESTS_SERVICE, *plan.command).returncode
        finally:
            # A second Ctrl-C must not stop the clean-up half-way; the commands it
            # starts inherit the ignored signal too.
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                left = clean_up(project)
            finally:
                signal.signal(signal.SIGINT, previous)
            if left:
                print(f"container: could not remove: {', '.join(left)}", flush=True)


def execute(engine: Engine, plan: Plan) -> int:
    """Build what is missing, run the tests' command in compose, return its exit status."""
    uid, gid = app_ids()
    with terminate_as_interrupt():
        if plan.build and plan.offline:
            images.build_base_images(
                engine,
                wheelhouse_for(plan),
                mirror=plan.mirror,
                rebuild_rootfs=plan.rebuild_rootfs,
            )
        if plan.build:
            build_test_image(engine, plan, uid, gid)
        prepare_reports(plan.project, uid, gid)
        return run_in_compose(engine, plan, uid, gid)
