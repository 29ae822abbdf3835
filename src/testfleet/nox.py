"""The test sessions as a library: ``tests``, ``tests_parallel``, ``randomized``, ``coverage``.

A project's noxfile.py registers them in one line::

    import nox
    import testfleet.nox

    nox.needs_version = ">=2024.10.9"
    testfleet.nox.register()

What goes into each session's environment (the project, its extras, dependency groups and
requirements files, testfleet itself), the Python versions, extra pytest arguments and
coverage come from ``[tool.testfleet]`` (docs/configuration.md). Each session runs one
``testfleet`` command: the logic is in the command line, not here.

This module imports nothing that nox's own environment may lack (no pytest): it runs in
the process that loads the noxfile.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import nox

from testfleet import __version__
from testfleet.runs import install as lockfile
from testfleet.runs import order
from testfleet.settings import config as config_mod

SESSIONS = ("tests", "tests_parallel", "randomized", "coverage")
#: Sessions that a bare ``nox`` runs; the others run when named (``nox -s randomized``).
DEFAULT_SESSIONS = ("tests_parallel",)
#: Deterministic order in the serial and parallel sessions unless ``random_order`` asks:
#: order is `randomized`'s business.
FIXED_ORDER = order.FIXED_ORDER
COVERAGE_REQUIREMENT = "coverage[toml]>=7.10.3"
RANDOMLY_REQUIREMENT = "pytest-randomly>=3.15"


class RegistrationError(RuntimeError):
    """The noxfile cannot take the sessions as asked; the message says what to change."""


@dataclass(frozen=True)
class Environment:
    """What one session installs and how it runs pytest, from the settings."""

    #: None: when the project is a package (``is_package``).
    install_project: bool | None = None
    editable: bool = True
    extras: tuple[str, ...] = ()
    dependency_groups: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    testfleet: str | None = None
    coverage: bool = True
    pytest_args: tuple[str, ...] = ()
    #: ``off``, ``fresh`` or a seed: the order of ``tests`` and ``tests_parallel``.
    random_order: order.RandomOrder = order.OFF
    #: uv, pip, poetry or pdm; None: from the project's lockfile (testfleet.runs.install).
    installer: str | None = None

    @classmethod
    def from_config(cls, settings: config_mod.Config) -> Environment:
        return cls(
            install_project=settings.get("install_project"),
            editable=bool(settings.get("editable")),
            extras=tuple(settings.get("extras")),
            dependency_groups=tuple(settings.get("dependency_groups")),
            requirements=tuple(str(path) for path in settings.get("requirements")),
            testfleet=settings.get("testfleet_requirement"),
            coverage=bool(settings.get("coverage")),
            pytest_args=tuple(settings.get("pytest_args")),
            random_order=settings.get("random_order"),
            installer=settings.get("installer"),
        )

    def install_args(self, project: Path, *tools: str) -> list[str]:
        """The arguments of the one ``pip install`` that prepares a session."""
        args: list[str] = []
        for requirements in self.requirements:
            args += ["-r", requirements]
        package = is_package(project) if self.install_project is None else self.install_project
        if package:
            target = "." + (f"[{','.join(self.extras)}]" if self.extras else "")
            args += ["-e", target] if self.editable else [target]
        for group in self.dependency_groups:
            args += ["--group", group]
        return [*args, *self.on_top(project, package, *tools)]

    def on_top(self, project: Path, package: bool, *tools: str) -> list[str]:
        """What goes in beside the project's own dependencies: testfleet, coverage, ``tools``."""
        args: list[str] = []
        requirement = self.testfleet or running_testfleet()
        if not (package and _same_directory(requirement, project)):
            # Where the project is testfleet itself, it is already installed with the project.
            args.append(requirement)
        if self.coverage:
            args.append(COVERAGE_REQUIREMENT)
        return [*args, *tools]

    def lock_request(self) -> lockfile.Request:
        """What the lock's tool installs: the project (unless told not to), extras, groups."""
        package = self.install_project is not False
        return lockfile.Request(self.extras, self.dependency_groups, package, self.editable)

    def testfleet_command(self, *args: str) -> list[str]:
        """``testfleet ARGS``, under coverage (subprocesses and xdist workers too) when it is on."""
        if self.coverage:
            return ["python", "-m", "testfleet.runs.measure", *args]
        return ["python", "-m", "testfleet", *args]


def running_testfleet() -> str:
    """Where the running testfleet came from: its checkout or wheel, else its version on the index.

    A checkout installed with ``pip install -e PATH`` or ``pip install PATH`` records where
    it came from (PEP 610); sessions install the same, so that a team working from a checkout
    or a wheel never gets another testfleet from the index.
    """
    try:
        text = metadata.distribution("testfleet").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        text = None
    if text:
        url = str(json.loads(text).get("url", ""))
        parsed = urlparse(url)
        if parsed.scheme == "file" and Path(unquote(parsed.path)).exists():
            return unquote(parsed.path)
    return f"testfleet=={__version__}"


def is_package(project: Path) -> bool:
    """Whether pip can install ``project``: setup.py, or pyproject.toml that declares a package.

    A pyproject.toml that only configures tools (pytest, ruff) is no package: pip would build
    an empty distribution named UNKNOWN from it.
    """
    if (project / "setup.py").is_file():
        return True
    pyproject = project / "pyproject.toml"
    if not pyproject.is_file():
        return False
    try:
        with pyproject.open("rb") as handle:
            document = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        # Let pip say what is wrong with it.
        return True
    return "project" in document or "build-system" in document


def _same_directory(requirement: str, project: Path) -> bool:
    candidate = Path(requirement)
    return candidate.is_dir() and candidate.resolve() == project.resolve()


def pytest_args(
    environment: Environment, posargs: Sequence[str], seed: int | None = None
) -> list[str]:
    """The sessions' pytest arguments: the order, the configured ones, then those after ``--``."""
    return [*order.order_args(seed), *environment.pytest_args, *posargs]


def run_in_order(session: nox.Session, environment: Environment, *testfleet_args: str) -> None:
    """``testfleet RUN-ARGS -- PYTEST-ARGS`` in the configured order; a random one is announced.

    The seed is printed before the run, and after a failure with the command that repeats
    it: an order-dependent failure is only worth its report when it can be had again.
    """
    seed = order.seed_of(environment.random_order)
    if seed is not None:
        install(session, environment, RANDOMLY_REQUIREMENT)
    else:
        install(session, environment)
    args = pytest_args(environment, session.posargs, seed)
    command = environment.testfleet_command(*testfleet_args, "--", *args)
    if seed is None:
        session.run(*command)
        return
    repeat = order.repeat_command(seed, session.name)
    session.log(f"random order: pytest-randomly seed {seed} (again: {repeat})")
    try:
        session.run(*command)
    except nox.command.CommandFailed:
        session.warn(f"failed in the random order of seed {seed}; reproduce with: {repeat}")
        raise


def randomized_args(environment: Environment, posargs: Sequence[str]) -> list[str]:
    """``testfleet randomized`` arguments: its own, then ``--`` and pytest's."""
    own = list(posargs)
    theirs: list[str] = []
    if "--" in own:
        cut = own.index("--")
        own, theirs = own[:cut], own[cut + 1 :]
    pytest_part = [*environment.pytest_args, *theirs]
    return [*own, "--", *pytest_part] if pytest_part else own


def install(session: nox.Session, environment: Environment, *tools: str) -> None:
    """Prepare the session's environment; without one (``--no-venv``, an image) it is there.

    With a lockfile its tool installs the locked versions (testfleet.runs.install), else pip.
    """
    if session.venv_backend == "none":
        return
    project = Path.cwd()
    installer = environment.installer or lockfile.detect(project)
    if installer == lockfile.PIP:
        session.install(*environment.install_args(project, *tools))
        return
    request = environment.lock_request()
    on_top = environment.on_top(project, request.install_project, *tools)
    lockfile.install_locked(session, installer, project, request, on_top)


def make_sessions(environment: Environment) -> dict[str, Callable[[nox.Session], None]]:
    """The session functions, by name, bound to ``environment``."""

    def tests(session: nox.Session) -> None:
        """Run the suite serially, in a fixed order, without xdist; timing report as configured."""
        run_in_order(session, environment, "run", "--workers", "1")

    def tests_parallel(session: nox.Session) -> None:
        """Run the suite on $PYTEST_WORKERS workers (default auto), then `serial` tests alone."""
        run_in_order(session, environment, "run")

    def randomized(session: nox.Session) -> None:
        """Run the suite in random order with $TESTFLEET_SEEDS seeds (default 3); -- --seeds N."""
        install(session, environment, RANDOMLY_REQUIREMENT)
        args = randomized_args(environment, session.posargs)
        session.run(*environment.testfleet_command("randomized", *args))

    def coverage(session: nox.Session) -> None:
        """Combine the coverage data of the test sessions; terminal, HTML and XML reports."""
        if not environment.coverage:
            session.skip("coverage is off (coverage = false in [tool.testfleet])")
        if session.venv_backend != "none":
            session.install(COVERAGE_REQUIREMENT)
        session.run("coverage", "combine")
        # Only `coverage report` enforces fail_under, so that HTML and XML are always written.
        session.run("coverage", "html", "--fail-under=0")
        session.run("coverage", "xml", "--fail-under=0")
        session.run("coverage", "report", *session.posargs)

    return {
        "tests": tests,
        "tests_parallel": tests_parallel,
        "randomized": randomized,
        "coverage": coverage,
    }


_UNSET: Any = object()


def register(
    *,
    sessions: Iterable[str] = SESSIONS,
    default_sessions: Iterable[str] = DEFAULT_SESSIONS,
    python: str | Sequence[str] | None = _UNSET,
    venv_backend: str | None = None,
    reuse_venv: bool | None = None,
    settings: config_mod.Config | None = None,
) -> None:
    """Register testfleet's sessions in the noxfile being loaded.

    ``sessions`` picks which (all by default), ``default_sessions`` those a bare ``nox``
    runs, ``python`` overrides the ``python`` setting (None: the Python running nox).
    Raises RegistrationError when the noxfile already has a session of the same name.
    """
    chosen = list(sessions)
    unknown = [name for name in [*chosen, *default_sessions] if name not in SESSIONS]
    if unknown:
        raise RegistrationError(
            f"testfleet.nox has no session {', '.join(map(repr, unknown))}: "
            f"it has {', '.join(SESSIONS)}"
        )
    taken = [name for name in chosen if name in nox.registry.get()]
    if taken:
        others = [name for name in chosen if name not in taken]
        raise RegistrationError(
            f"the noxfile already has a session named {', '.join(map(repr, taken))}: rename "
            "yours, or leave testfleet's out with "
            f"testfleet.nox.register(sessions={tuple(others)!r})"
        )
    settings = settings if settings is not None else config_mod.load()
    environment = Environment.from_config(settings)
    versions = settings.get("python") if python is _UNSET else python
    if isinstance(versions, list):
        versions = versions[0] if len(versions) == 1 else versions
    functions = make_sessions(environment)
    defaults = set(default_sessions)
    for name in chosen:
        decorate = nox.session(
            name=name,
            python=versions,
            venv_backend=venv_backend,
            reuse_venv=reuse_venv,
            default=name in defaults,
        )
        decorate(functions[name])
