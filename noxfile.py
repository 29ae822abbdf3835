"""nox sessions: testfleet's test sessions (testfleet.nox), and lint and typecheck of this repo.

`tests`, `tests_parallel`, `randomized` and `coverage` are the library's, configured in
[tool.testfleet] of pyproject.toml like any project's; tests_fast, lint and typecheck are ours.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import nox

try:
    import testfleet.nox
except ModuleNotFoundError as exc:
    if exc.name != "testfleet":
        raise
    # This repository only: its noxfile also runs where nox alone is installed (the
    # README's test command), so the sessions come from the checkout. Other projects
    # install testfleet next to nox (docs/adopting.md).
    sys.path.insert(0, str(Path(__file__).parent / "src"))
    import testfleet.nox

from testfleet.settings import config

nox.needs_version = ">=2024.10.9"
nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True

testfleet.nox.register()

PYTHON = "3.11"
CHECKED = ("src", "tests", "benchmarks", "noxfile.py", "tasks.py")


def install(session: nox.Session, *args: str) -> None:
    """Install into the session's venv; without one (the Docker image) everything is there."""
    if session.venv_backend != "none":
        session.install(*args)


@nox.session(python=PYTHON, default=False)
def tests_fast(session: nox.Session) -> None:
    """The quick loop: tests_parallel without the `e2e` tests and without coverage."""
    environment = testfleet.nox.Environment.from_config(config.load())
    fast = dataclasses.replace(
        environment, coverage=False, pytest_args=(*environment.pytest_args, "-m", "not e2e")
    )
    testfleet.nox.make_sessions(fast)["tests_parallel"](session)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Check style and common bugs with ruff."""
    install(session, "ruff>=0.6")
    session.run("ruff", "check", *CHECKED, *session.posargs)
    session.run("ruff", "format", "--check", *CHECKED)


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """Type-check src/ with mypy in strict mode."""
    install(session, "-e", ".[test]", "mypy>=1.11")
    session.run("mypy", *session.posargs)


@nox.session(python=False, default=False)
def docker(session: nox.Session) -> None:
    """Build the test image and run the Neo4j tests in compose, offline (docs/docker.md)."""
    # Whatever Python runs nox must have testfleet: the engine's commands are its logic.
    from testfleet.container.workflow import NOX_SESSION_ARGS

    args = session.posargs or list(NOX_SESSION_ARGS)
    session.run(sys.executable, "-m", "testfleet.container", "run", *args, external=True)


if __name__ == "__main__":
    nox.main()
