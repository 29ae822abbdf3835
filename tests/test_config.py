"""`[tool.testfleet]`, the environment and options: one precedence, and clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testfleet.cli.program import main
from testfleet.settings import config
from testfleet.settings.table import SECTIONS, SETTINGS

DOCS = Path(__file__).parent.parent / "docs" / "configuration.md"


def write_pyproject(root: Path, table: str) -> Path:
    path = root / "pyproject.toml"
    path.write_text(f'[project]\nname = "sample"\n\n[tool.testfleet]\n{table}', encoding="utf-8")
    return path


def run_config(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["config", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_without_pyproject_every_setting_has_its_default(project: Path) -> None:
    loaded = config.load(environ={})
    assert loaded.path is None
    for value in loaded.values():
        assert value.source == config.DEFAULT
        assert value.value == value.setting.default


def test_a_project_without_a_testfleet_table_gets_the_defaults(project: Path) -> None:
    (project / "pyproject.toml").write_text('[project]\nname = "x"\n', encoding="utf-8")
    loaded = config.load(environ={})
    assert loaded.path == project / "pyproject.toml"
    assert loaded.resolve("workers").source == config.DEFAULT


def test_option_beats_environment_beats_pyproject_beats_default(project: Path) -> None:
    write_pyproject(project, "workers = 3\nseeds = 7\n")
    environ = {"PYTEST_WORKERS": "2"}
    loaded = config.load(environ=environ)
    assert loaded.resolve("workers", option=5).value == 5
    assert loaded.resolve("workers", option=5).source == config.OPTION_SOURCE
    assert loaded.resolve("workers").value == 2
    assert loaded.resolve("workers").source == config.ENV_SOURCE
    assert loaded.resolve("seeds").value == 7
    assert loaded.resolve("seeds").source == config.PYPROJECT_SOURCE
    assert loaded.resolve("classify_runs").value == 3
    assert loaded.resolve("classify_runs").source == config.DEFAULT


def test_an_empty_environment_variable_counts_as_unset(project: Path) -> None:
    write_pyproject(project, 'workers = "auto"\n')
    loaded = config.load(environ={"PYTEST_WORKERS": "  "})
    assert loaded.resolve("workers").source == config.PYPROJECT_SOURCE


def test_values_are_read_into_their_types(project: Path) -> None:
    write_pyproject(
        project,
        'python = "3.12"\nextras = ["test", "neo4j"]\npytest_args = "-m \'not slow\' -q"\n'
        'install_project = false\nflaky_threshold = 2\nreport = "out/timing.json"\n',
    )
    loaded = config.load(
        environ={"TESTFLEET_DEPENDENCY_GROUPS": "test, lint", "TESTFLEET_EDITABLE": "no"}
    )
    assert loaded.get("python") == ["3.12"]
    assert loaded.get("extras") == ["test", "neo4j"]
    assert loaded.get("pytest_args") == ["-m", "not slow", "-q"]
    assert loaded.get("install_project") is False
    assert loaded.get("flaky_threshold") == 2.0
    assert loaded.get("report") == Path("out/timing.json")
    assert loaded.get("dependency_groups") == ["test", "lint"]
    assert loaded.get("editable") is False


def test_relative_paths_in_pyproject_are_relative_to_the_project(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_pyproject(project, 'baseline = "reports/base.json"\n')
    (project / "tests").mkdir()
    monkeypatch.chdir(project / "tests")
    loaded = config.load(environ={})
    assert loaded.path == project / "pyproject.toml"
    assert loaded.get("baseline") == project / "reports" / "base.json"


def test_the_search_for_pyproject_stops_at_the_top_of_the_checkout(tmp_path: Path) -> None:
    write_pyproject(tmp_path, "seeds = 9\n")
    inner = tmp_path / "other"
    (inner / ".git").mkdir(parents=True)
    assert config.find_pyproject(inner) is None
    assert config.find_pyproject(tmp_path / "sub" / "dir") == tmp_path / "pyproject.toml"


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("wokers = 2\n", "has no setting 'wokers' (did you mean 'workers'?)"),
        ('workers = "many"\n', "workers = 'many': worker count 'many' is not a number"),
        ("workers = true\n", "workers = True: expected a whole number >= 1 or 'auto', not a bool"),
        ("seeds = 0\n", "seeds = 0: 0 is below 1"),
        ('extras = "test"\nflaky_threshold = 120\n', "flaky_threshold = 120: 120 is out of range"),
        ("install_project = 1\n", "install_project = 1: expected true or false, not an integer"),
        ("extras = [1, 2]\n", "extras = [1, 2]: expected an array of strings"),
        ('neo4j = "sometimes"\n', "neo4j = 'sometimes': 'sometimes' is not a Neo4j mode"),
        ('neo4j_password = "secret"\n', "set the environment variable NEO4J_PASSWORD instead"),
    ],
)
def test_a_bad_table_is_a_usage_error_naming_the_key_and_the_file(
    project: Path, capsys: pytest.CaptureFixture[str], table: str, expected: str
) -> None:
    path = write_pyproject(project, table)
    status, out, err = run_config(capsys)
    assert status == 2
    assert out == ""
    assert f"testfleet: error: {path}: [tool.testfleet] " in err
    assert expected in err


def test_a_malformed_pyproject_is_reported_with_its_line_and_column(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_pyproject(project, "workers = \n")
    status, _, err = run_config(capsys)
    assert status == 2
    assert f"{path}: malformed TOML: " in err
    assert "(at line 5, column 11)" in err


def test_a_testfleet_key_that_is_no_table_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "pyproject.toml").write_text('[tool]\ntestfleet = "fast"\n', encoding="utf-8")
    status, _, err = run_config(capsys)
    assert status == 2
    assert "tool.testfleet must be a table" in err


def test_a_bad_environment_variable_is_a_usage_error_naming_it(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TESTFLEET_COVERAGE", "maybe")
    status, _, err = run_config(capsys)
    assert status == 2
    assert "environment variable TESTFLEET_COVERAGE='maybe' (coverage): " in err
    assert "use true or false" in err


def test_config_prints_each_value_with_where_it_came_from(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_pyproject(project, 'seeds = 5\nextras = ["test"]\n')
    monkeypatch.setenv("PYTEST_WORKERS", "1")
    monkeypatch.setenv("NEO4J_PASSWORD", "hunter2")
    status, out, _ = run_config(capsys)
    assert status == 0
    lines = {line.split("=")[0].strip(): line for line in out.splitlines() if " = " in line}
    assert set(lines) == {setting.name for setting in SETTINGS}
    assert lines["seeds"].split("#")[1].strip() == "pyproject.toml [tool.testfleet]"
    assert lines["seeds"].split("=")[1].split("#")[0].strip() == "5"
    assert lines["extras"].split("=")[1].split("#")[0].strip() == "[test]"
    assert lines["workers"].split("#")[1].strip() == "env PYTEST_WORKERS"
    assert lines["dist"].split("#")[1].strip() == "default"
    # A password is never printed, only whether it is set.
    assert "hunter2" not in out
    assert lines["neo4j_password"].split("=")[1].split("#")[0].strip() == "(set)"
    assert f"pyproject: {project / 'pyproject.toml'}" in out


def test_config_as_json_for_named_settings(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_pyproject(project, 'report = "out/t.json"\n')
    monkeypatch.setenv("TESTFLEET_SEEDS", "4")
    status, out, _ = run_config(capsys, "report", "seeds", "lock_dir", "--format", "json")
    assert status == 0
    assert json.loads(out) == {
        "pyproject": str(project / "pyproject.toml"),
        "settings": {
            "report": {"value": "out/t.json", "source": "pyproject", "env": "TESTFLEET_REPORT"},
            "seeds": {"value": 4, "source": "env", "env": "TESTFLEET_SEEDS"},
            "lock_dir": {"value": None, "source": "default", "env": "TESTFLEET_LOCK_DIR"},
        },
    }


def test_config_refuses_a_setting_that_does_not_exist(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run_config(capsys, "seed")
    assert (status, out) == (2, "")
    assert "testfleet has no setting 'seed' (did you mean 'seeds'?)" in err


def test_config_writes_its_output_to_a_file(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = project / "settings.json"
    status, out, _ = run_config(capsys, "--format", "json", "--output", str(target))
    assert status == 0
    assert out == ""
    assert json.loads(target.read_text(encoding="utf-8"))["settings"]["workers"]["value"] == "auto"


def test_every_setting_is_declared_once_with_a_known_section() -> None:
    names = [setting.name for setting in SETTINGS]
    assert len(names) == len(set(names))
    variables = [setting.env for setting in SETTINGS if setting.env]
    assert len(variables) == len(set(variables))
    assert {setting.section for setting in SETTINGS} <= set(SECTIONS)
    for setting in SETTINGS:
        if setting.default is not None and not isinstance(setting.default, list):
            # A default is a value of the setting's own type, printed as the docs show it.
            assert setting.kind.parse(config.show(setting.default)) == setting.default


def test_docs_list_every_setting_as_declared() -> None:
    reference = config.render_reference(SETTINGS, SECTIONS)
    assert reference in DOCS.read_text(encoding="utf-8"), (
        "docs/configuration.md is out of date: paste the output of `testfleet config --reference`"
    )


def test_declared_defaults_and_variables_agree_with_the_modules_that_use_them() -> None:
    from testfleet.core import workers
    from testfleet.diagnose import classify
    from testfleet.isolation import pools
    from testfleet.neo4j import config as neo4j
    from testfleet.reporting.analysis import Thresholds
    from testfleet.runs import randomized as runner

    declared = {setting.name: (setting.default, setting.env) for setting in SETTINGS}
    assert declared["workers"][1] == workers.WORKERS_ENV
    assert declared["seeds"] == (runner.DEFAULT_SEEDS, runner.SEEDS_ENV)
    assert declared["slower_ratio"][0] == Thresholds.ratio
    assert declared["slower_seconds"][0] == Thresholds.seconds
    assert declared["flaky_threshold"] == (classify.DEFAULT_THRESHOLD, classify.THRESHOLD_ENV)
    assert declared["classify_runs"] == (classify.DEFAULT_RUNS, classify.RUNS_ENV)
    assert declared["classification"][0] == classify.DEFAULT_OUTPUT
    assert declared["lock_dir"][1] == pools.LOCK_DIR_ENV
    assert declared["pool_timeout"][0] == pools.DEFAULT_TIMEOUT
    assert declared["neo4j"][1] == neo4j.MODE_ENV
    assert declared["neo4j_strategy"][1] == neo4j.STRATEGY_ENV
    assert declared["neo4j_uri"][1] == neo4j.URI_ENV
    assert declared["neo4j_user"][1] == neo4j.USER_ENV
    assert declared["neo4j_password"][1] == neo4j.PASSWORD_ENV
    assert declared["neo4j_timeout"][0] == neo4j.DEFAULT_TIMEOUT
    kinds = {setting.name: setting.kind.name for setting in SETTINGS}
    assert kinds["neo4j"] == "one of " + ", ".join(neo4j.MODES)
    assert kinds["neo4j_strategy"] == "one of " + ", ".join(neo4j.STRATEGY_CHOICES)
