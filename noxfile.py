"""nox sessions: serial, parallel, randomized and coverage runs, lint and typecheck.

Every test session runs under `coverage run` so that `nox -s coverage` can combine
them all; the logic of each run lives in the `testfleet` command, not here.
"""

from __future__ import annotations

import nox

nox.needs_version = ">=2024.10.9"
nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"
# Deterministic order in the serial and parallel sessions: order is `randomized`'s business.
FIXED_ORDER = ("-p", "no:randomly")


def install(session: nox.Session, *args: str) -> None:
    """Install into the session's venv; without one (the Docker image) everything is there."""
    if session.venv_backend == "none":
        return
    session.install(*args)


def testfleet(session: nox.Session, *args: str) -> None:
    """`testfleet ARGS` under coverage, in the session's environment with the suite installed."""
    install(session, "-e", ".[test]")
    session.run("coverage", "run", "-m", "testfleet", *args)


@nox.session(python=PYTHON, default=False)
def tests(session: nox.Session) -> None:
    """Run the suite serially, in a fixed order, without xdist; timing in $TESTFLEET_REPORT."""
    testfleet(session, "run", "--workers", "1", "--", *FIXED_ORDER, *session.posargs)


@nox.session(python=PYTHON)
def tests_parallel(session: nox.Session) -> None:
    """Run the suite on $PYTEST_WORKERS workers (default auto), then `serial` tests alone."""
    testfleet(session, "run", "--", *FIXED_ORDER, *session.posargs)


@nox.session(python=PYTHON, default=False)
def randomized(session: nox.Session) -> None:
    """Run the suite in random order with $TESTFLEET_SEEDS seeds (default 3); -- --seeds N."""
    testfleet(session, "randomized", *session.posargs)


@nox.session(python=PYTHON, default=False)
def coverage(session: nox.Session) -> None:
    """Combine the coverage data of the test sessions; terminal, HTML and XML reports."""
    install(session, "coverage[toml]>=7.10")
    session.run("coverage", "combine")
    # Only `coverage report` enforces fail_under, so that HTML and XML are always written.
    session.run("coverage", "html", "--fail-under=0")
    session.run("coverage", "xml", "--fail-under=0")
    session.run("coverage", "report")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Check style and common bugs with ruff."""
    install(session, "ruff>=0.6")
    session.run(
        "ruff", "check", "src", "tests", "benchmarks", "noxfile.py", "tasks.py", *session.posargs
    )
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "noxfile.py", "tasks.py")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """Type-check src/ with mypy in strict mode."""
    install(session, "-e", ".[test]", "mypy>=1.11")
    session.run("mypy", *session.posargs)


if __name__ == "__main__":
    nox.main()
