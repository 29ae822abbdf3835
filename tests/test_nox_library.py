"""testfleet.nox and testfleet.invoke: what a project's noxfile and tasks.py get."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import nox
import pytest

import testfleet.invoke
import testfleet.nox
from testfleet.nox import Environment, RegistrationError
from testfleet.settings import config


@pytest.fixture
def registry() -> Iterator[None]:
    """nox's session registry, empty for the test and as it was afterwards."""
    saved = nox.registry.get()
    nox.registry.reset()
    yield
    nox.registry.reset()
    nox.registry._REGISTRY.update(saved)


def test_a_package_is_installed_editable_with_its_extras_groups_and_requirements(
    project: Path,
) -> None:
    environment = Environment(
        install_project=True,
        extras=("test", "neo4j"),
        dependency_groups=("dev",),
        requirements=("requirements-test.txt",),
        testfleet="testfleet==1.2",
    )
    assert environment.install_args(project, "pytest-randomly") == [
        "-r",
        "requirements-test.txt",
        "-e",
        ".[test,neo4j]",
        "--group",
        "dev",
        "testfleet==1.2",
        testfleet.nox.COVERAGE_REQUIREMENT,
        "pytest-randomly",
    ]


def test_a_project_that_is_no_package_gets_only_its_requirements_and_testfleet(
    project: Path,
) -> None:
    environment = Environment(
        install_project=False, requirements=("requirements.txt",), testfleet="/w/tf.whl"
    )
    assert environment.install_args(project) == [
        "-r",
        "requirements.txt",
        "/w/tf.whl",
        testfleet.nox.COVERAGE_REQUIREMENT,
    ]


def test_a_project_that_is_testfleet_itself_is_not_installed_twice(project: Path) -> None:
    environment = Environment(install_project=True, editable=False, coverage=False, testfleet=".")
    assert environment.install_args(project) == ["."]


@pytest.mark.parametrize(
    ("files", "package"),
    [
        ({}, False),
        ({"pyproject.toml": "[tool.pytest.ini_options]\naddopts = '-ra'\n"}, False),
        ({"pyproject.toml": "[project]\nname = 'x'\nversion = '1'\n"}, True),
        ({"pyproject.toml": "[build-system]\nrequires = ['poetry-core']\n"}, True),
        ({"setup.py": "from setuptools import setup\nsetup()\n"}, True),
    ],
)
def test_the_project_is_installed_when_it_is_a_package(
    project: Path, files: dict[str, str], package: bool
) -> None:
    for name, text in files.items():
        (project / name).write_text(text, encoding="utf-8")
    args = Environment(coverage=False, testfleet="testfleet").install_args(project)
    assert args == (["-e", ".", "testfleet"] if package else ["testfleet"])


def test_testfleet_comes_from_where_the_running_one_came_from() -> None:
    # This checkout is installed with `pip install -e .`: sessions install the same.
    assert Path(testfleet.nox.running_testfleet()) == Path(testfleet.__file__).parents[2]


def test_sessions_run_testfleet_under_coverage_only_when_it_is_on() -> None:
    assert Environment(coverage=True).testfleet_command("run") == [
        "python",
        "-m",
        "testfleet.runs.measure",
        "run",
    ]
    assert Environment(coverage=False).testfleet_command("run") == [
        "python",
        "-m",
        "testfleet",
        "run",
    ]


def test_configured_pytest_arguments_come_before_those_after_the_double_dash() -> None:
    environment = Environment(pytest_args=("-m", "not slow"))
    assert testfleet.nox.pytest_args(environment, ["-x"]) == [
        "-p",
        "no:randomly",
        "-m",
        "not slow",
        "-x",
    ]
    assert testfleet.nox.randomized_args(environment, ["--seeds", "2", "--", "-x"]) == [
        "--seeds",
        "2",
        "--",
        "-m",
        "not slow",
        "-x",
    ]
    assert testfleet.nox.randomized_args(Environment(), ["--seeds", "2"]) == ["--seeds", "2"]


class RecordingSession:
    """What the session functions call on a nox session, recorded; ``run`` fails on request."""

    name = "tests_parallel"
    venv_backend = "none"

    def __init__(self, fail: bool = False) -> None:
        self.posargs = ["-x"]
        self.fail = fail
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    def run(self, *args: str) -> None:
        self.calls.append(("run", args))
        if self.fail:
            raise nox.command.CommandFailed("Returned code 1")

    def log(self, message: str) -> None:
        self.calls.append(("log", (message,)))

    def warn(self, message: str) -> None:
        self.calls.append(("warn", (message,)))


def run_parallel_session(environment: Environment, session: RecordingSession) -> None:
    function = testfleet.nox.make_sessions(environment)["tests_parallel"]
    function(cast(nox.Session, session))


def test_the_parallel_session_runs_in_collection_order_unless_random_order_is_set() -> None:
    session = RecordingSession()
    run_parallel_session(Environment(coverage=False), session)
    command = ["python", "-m", "testfleet", "run", "--", "-p", "no:randomly", "-x"]
    assert session.calls == [("run", tuple(command))]


def test_a_random_order_seed_is_printed_and_passed_to_pytest_randomly() -> None:
    session = RecordingSession()
    run_parallel_session(Environment(coverage=False, random_order=4242), session)
    again = "TESTFLEET_RANDOM_ORDER=4242 nox -s tests_parallel"
    command = ["python", "-m", "testfleet", "run", "--", "-p", "randomly"]
    assert session.calls == [
        ("log", (f"random order: pytest-randomly seed 4242 (again: {again})",)),
        ("run", (*command, "--randomly-seed=4242", "-x")),
    ]


def test_a_run_that_fails_in_a_fresh_random_order_names_the_command_that_repeats_it() -> None:
    session = RecordingSession(fail=True)
    with pytest.raises(nox.command.CommandFailed):
        run_parallel_session(Environment(coverage=False, random_order="fresh"), session)
    (_, (announced,)), (_, run), (kind, (warning,)) = session.calls
    seed = int(announced.split()[4])
    assert f"--randomly-seed={seed}" in run
    assert kind == "warn"
    assert warning == (
        f"failed in the random order of seed {seed}; "
        f"reproduce with: TESTFLEET_RANDOM_ORDER={seed} nox -s tests_parallel"
    )


@pytest.mark.parametrize(
    ("text", "expected"), [("off", "off"), ("Fresh", "fresh"), ("0", 0), (" 123 ", 123)]
)
def test_random_order_is_off_fresh_or_a_seed(
    project: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: object
) -> None:
    monkeypatch.setenv("TESTFLEET_RANDOM_ORDER", text)
    assert Environment.from_config(config.load()).random_order == expected


@pytest.mark.parametrize("text", ["on", "-1", "4294967296", "1.5"])
def test_a_random_order_that_is_no_seed_is_refused_naming_the_setting(
    project: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv("TESTFLEET_RANDOM_ORDER", text)
    with pytest.raises(config.ConfigError, match="TESTFLEET_RANDOM_ORDER") as raised:
        config.load().get("random_order")
    assert "off, fresh or a seed" in str(raised.value) or "no pytest-randomly seed" in str(
        raised.value
    )


def test_random_order_in_the_table_takes_a_seed_as_a_number(project: Path) -> None:
    (project / "pyproject.toml").write_text("[tool.testfleet]\nrandom_order = 7\n")
    assert Environment.from_config(config.load()).random_order == 7
    assert Environment.from_config(config.load()).random_order != "7"


def test_register_adds_the_four_sessions_with_settings_from_the_table(
    registry: None, project: Path
) -> None:
    (project / "pyproject.toml").write_text(
        '[tool.testfleet]\npython = ["3.11", "3.12"]\n', encoding="utf-8"
    )
    testfleet.nox.register()
    sessions = nox.registry.get()
    assert list(sessions) == list(testfleet.nox.SESSIONS)
    assert sessions["tests_parallel"].python == ["3.11", "3.12"]
    assert [name for name, func in sessions.items() if func.default] == ["tests_parallel"]
    assert sessions["coverage"].__doc__
    assert sessions["coverage"].__doc__.startswith("Combine the coverage data")


def test_register_takes_overrides_and_a_choice_of_sessions(registry: None, project: Path) -> None:
    testfleet.nox.register(
        sessions=("tests", "randomized"), default_sessions=("tests",), python="3.12"
    )
    sessions = nox.registry.get()
    assert list(sessions) == ["tests", "randomized"]
    assert sessions["tests"].python == "3.12"
    assert sessions["tests"].default
    assert not sessions["randomized"].default


def test_register_without_a_pyproject_uses_the_python_running_nox(
    registry: None, project: Path
) -> None:
    testfleet.nox.register()
    assert nox.registry.get()["tests"].python is None


def test_register_refuses_a_name_the_noxfile_already_has(registry: None, project: Path) -> None:
    @nox.session
    def tests(session: nox.Session) -> None:
        """The project's own."""

    with pytest.raises(RegistrationError) as raised:
        testfleet.nox.register()
    assert str(raised.value) == (
        "the noxfile already has a session named 'tests': rename yours, or leave "
        "testfleet's out with testfleet.nox.register(sessions=('tests_parallel', "
        "'randomized', 'coverage'))"
    )
    assert list(nox.registry.get()) == ["tests"]


def test_register_refuses_a_session_it_does_not_have(registry: None, project: Path) -> None:
    with pytest.raises(RegistrationError, match="has no session 'lint'"):
        testfleet.nox.register(sessions=("tests", "lint"))


def test_register_stops_at_a_bad_table_naming_the_key(registry: None, project: Path) -> None:
    (project / "pyproject.toml").write_text("[tool.testfleet]\nextra = []\n", encoding="utf-8")
    expected = r"has no setting 'extra' \(did you mean 'extras'\?\)"
    with pytest.raises(config.ConfigError, match=expected):
        testfleet.nox.register()
    assert nox.registry.get() == {}


def test_the_nox_library_loads_where_pytest_is_not_installed(project: Path) -> None:
    (project / "pyproject.toml").write_text('[tool.testfleet]\nextras = ["x"]\n', encoding="utf-8")
    code = (
        "import sys; sys.modules['pytest'] = None\n"
        "import testfleet.nox\n"
        "testfleet.nox.register()\n"
        "import nox; print(sorted(nox.registry.get()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=project
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['coverage', 'randomized', 'tests', 'tests_parallel']"


def test_each_collection_is_new_and_has_the_pipeline_tasks() -> None:
    first = testfleet.invoke.collection()
    second = testfleet.invoke.collection()
    assert first is not second
    assert sorted(first.task_names) == ["baseline", "ci", "combine", "report"]

    @testfleet.invoke.task
    def mine(c: object) -> None:
        """A project's own task."""

    first.add_task(mine)
    assert "mine" in first.task_names
    assert "mine" not in second.task_names
    assert "mine" not in testfleet.invoke.namespace.task_names
