"""`testfleet init` on sample projects of each layout: what it finds, writes, keeps and refuses."""

from __future__ import annotations

import ast
import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from init_samples import SAMPLES, make_sample, snapshot
from testfleet import scaffold
from testfleet.cli.program import main
from testfleet.scaffold import deps, pyfiles, render
from testfleet.scaffold.detect import InitError, detect
from testfleet.settings import config

GENERATED = (
    "noxfile.py",
    "tasks.py",
    "Dockerfile",
    ".dockerignore",
    "docker-compose.test.yml",
    ".github/workflows/tests.yml",
    "docs/testing.md",
    "docs/rollback.md",
    "docs/test-isolation-audit.md",
    "CODEOWNERS",
    "pyproject.toml",
    ".gitignore",
)


def init(root: Path, *args: str) -> int:
    return main(["init", str(root), *args])


# --- detection --------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(SAMPLES))
def test_init_detects_the_layout_packaging_tests_and_test_dependencies_of_each_sample(
    tmp_path: Path, key: str
) -> None:
    sample = make_sample(tmp_path, key)
    project = detect(tmp_path)
    assert (project.layout, project.backend) == (sample.layout, sample.backend)
    assert project.test_dirs == [sample.test_dir]
    assert project.install_project is sample.install_project
    assert project.extras == list(sample.extras)
    assert project.dependency_groups == list(sample.groups)
    assert project.requirements == list(sample.requirements)
    assert project.uses_neo4j is sample.neo4j


def test_a_poetry_group_that_pip_cannot_install_is_named_in_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("def test_a():\n    pass\n")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.poetry]\nname = "p"\n[tool.poetry.group.dev.dependencies]\npytest = "^8"\n'
    )
    project = detect(tmp_path)
    assert project.backend == "poetry"
    assert project.extras == []
    assert "Poetry group 'dev'" in project.notes[0]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("pyproject.toml", '[tool.pytest]\ntestpaths = ["checks"]\n'),
        ("pyproject.toml", '[tool.pytest.ini_options]\ntestpaths = "checks"\n'),
        ("pytest.ini", "[pytest]\ntestpaths = checks\n"),
        ("setup.cfg", "[tool:pytest]\ntestpaths =\n    checks\n"),
        ("tox.ini", "[tox]\nenv_list = py\n[pytest]\ntestpaths = checks\n"),
    ],
)
def test_tests_are_found_where_the_pytest_configuration_says(
    tmp_path: Path, name: str, text: str
) -> None:
    for folder in ("checks", "tests"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "test_a.py").write_text("def test_a():\n    pass\n")
    (tmp_path / name).write_text(text)
    assert detect(tmp_path).test_dirs == ["checks"]


def test_a_dev_group_of_build_and_lint_tools_alone_is_not_taken_for_the_tests(
    tmp_path: Path,
) -> None:
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "test_a.py").write_text("def test_a():\n    pass\n")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "t"\nversion = "1"\n[build-system]\nrequires = ["flit_core"]\n'
        'build-backend = "flit_core.buildapi"\n'
        '[dependency-groups]\ndev = ["build", "ruff", "tox>=4"]\n'
        '[project.optional-dependencies]\nwidechars = ["wcwidth"]\ndev = ["pytest-cov"]\n'
    )
    project = detect(tmp_path)
    assert (project.backend, project.dependency_groups, project.extras) == ("flit", [], ["dev"])


def test_a_uv_project_without_a_build_system_is_not_installed(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("def test_a():\n    pass\n")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "v"\nversion = "1"\n[dependency-groups]\ntest = ["pytest"]\n'
    )
    project = detect(tmp_path)
    assert (project.backend, project.install_project) == ("uv", False)
    assert project.dependency_groups == ["test"]


def test_python_is_the_running_one_unless_requires_python_excludes_it(tmp_path: Path) -> None:
    from testfleet.scaffold.detect import choose_python

    assert choose_python({"project": {"requires-python": ">=3.9"}}) == "3.11"
    assert choose_python({"project": {"requires-python": ">=3.12"}}) == "3.12"
    assert choose_python({"project": {"requires-python": "<3.11"}}) == "3.9"


# --- what init writes -------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(SAMPLES))
def test_init_writes_every_file_and_a_second_run_changes_nothing(
    tmp_path: Path, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    make_sample(tmp_path, key)
    assert init(tmp_path) == 0
    first = snapshot(tmp_path)
    for name in GENERATED:
        assert name in first, name
    for name in ("noxfile.py", "tasks.py"):
        ast.parse(first[name].decode(), filename=name)
    capsys.readouterr()
    assert init(tmp_path) == 0
    assert snapshot(tmp_path) == first
    out = capsys.readouterr().out
    assert "created" not in out
    assert "updated" not in out
    for name in GENERATED:
        assert f"unchanged     {name}" in out


@pytest.mark.parametrize("key", sorted(SAMPLES))
def test_the_settings_init_writes_are_read_back_by_testfleet_config(
    tmp_path: Path, key: str
) -> None:
    sample = make_sample(tmp_path, key)
    assert init(tmp_path) == 0
    settings = config.load(tmp_path, environ={})
    assert settings.get("install_project") is sample.install_project
    assert list(settings.get("extras")) == list(sample.extras)
    assert list(settings.get("dependency_groups")) == list(sample.groups)
    assert [str(item) for item in settings.get("requirements")] == list(sample.requirements)
    assert list(settings.get("python")) == ["3.11"]


def test_the_thin_noxfile_and_tasks_are_exactly_the_agreed_lines(tmp_path: Path) -> None:
    make_sample(tmp_path, "src-hatchling")
    assert init(tmp_path) == 0
    noxfile = (tmp_path / "noxfile.py").read_text()
    body = noxfile.split('"""', 2)[2]
    code = [line for line in body.splitlines() if line.strip()]
    assert code == [
        "from __future__ import annotations",
        "import nox",
        "import testfleet.nox",
        'nox.needs_version = ">=2024.10.9"',
        "testfleet.nox.register()  # sessions tests, tests_parallel, randomized, coverage",
        'if __name__ == "__main__":',
        "    nox.main()",
    ]
    tasks = (tmp_path / "tasks.py").read_text()
    assert "from testfleet.invoke import namespace" in tasks
    assert "def " not in tasks


def test_pyproject_keeps_its_comments_and_order_and_gains_the_testfleet_and_coverage_tables(
    tmp_path: Path,
) -> None:
    make_sample(tmp_path, "src-hatchling")
    before = (tmp_path / "pyproject.toml").read_text()
    assert init(tmp_path) == 0
    after = (tmp_path / "pyproject.toml").read_text()
    assert after.startswith(before)
    assert 'test = ["pytest>=8"]  # what the tests need' in after
    data = tomllib.loads(after)
    assert data["tool"]["testfleet"] == {
        "python": "3.11",
        "install_project": True,
        "editable": True,
        "extras": ["test"],
    }
    assert data["tool"]["coverage"]["run"] == {"parallel": True, "patch": ["subprocess"]}
    assert data["tool"]["coverage"]["paths"] == {
        "source": ["src/calc", "/app/src/calc", "*/site-packages/calc"]
    }


def test_coverage_settings_the_project_has_are_kept_and_what_stands_in_the_way_is_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_sample(tmp_path, "src-hatchling")
    with (tmp_path / "pyproject.toml").open("a") as handle:
        handle.write("\n[tool.coverage.run]\nparallel = false\nbranch = true  # keep\n")
    assert init(tmp_path) == 0
    text = (tmp_path / "pyproject.toml").read_text()
    data = tomllib.loads(text)
    assert data["tool"]["coverage"]["run"] == {
        "parallel": False,
        "branch": True,
        "patch": ["subprocess"],
    }
    assert "branch = true  # keep" in text
    assert "parallel = false: parallel runs" in capsys.readouterr().out


def test_a_pyproject_whose_tool_tables_are_split_by_another_table_is_edited_in_place(
    tmp_path: Path,
) -> None:
    make_sample(tmp_path, "src-hatchling")
    text = (
        (tmp_path / "pyproject.toml")
        .read_text()
        .replace(
            "[tool.pytest.ini_options]",
            '[tool.ruff]\nline-length = 99\n\n[dependency-groups]\ndev = ["build"]\n\n'
            "[tool.pytest.ini_options]",
        )
    )
    (tmp_path / "pyproject.toml").write_text(text)
    assert init(tmp_path) == 0
    after = (tmp_path / "pyproject.toml").read_text()
    assert after.startswith(text)
    data = tomllib.loads(after)
    assert data["tool"]["ruff"] == {"line-length": 99}
    assert data["tool"]["testfleet"]["extras"] == ["test"]
    assert data["tool"]["coverage"]["run"]["parallel"] is True


def test_a_project_whose_coverage_settings_live_in_coveragerc_is_told_what_to_add_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_sample(tmp_path, "src-hatchling")
    (tmp_path / ".coveragerc").write_text("[run]\nbranch = True\n")
    assert init(tmp_path) == 0
    assert "coverage" not in tomllib.loads((tmp_path / "pyproject.toml").read_text())["tool"]
    assert (tmp_path / ".coveragerc").read_text() == "[run]\nbranch = True\n"
    out = capsys.readouterr().out
    assert "coverage reads its settings from .coveragerc" in out
    assert "/app/src/calc" in out


def test_a_project_without_pyproject_gets_one_with_only_the_tool_tables(tmp_path: Path) -> None:
    make_sample(tmp_path, "flat-requirements")
    assert init(tmp_path) == 0
    data = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    assert set(data) == {"tool"}
    assert data["tool"]["testfleet"] == {
        "python": "3.11",
        "install_project": False,
        "requirements": ["requirements-dev.txt", "requirements.txt"],
    }


def test_neo4j_adds_a_healthy_gated_service_only_when_the_driver_is_used_or_asked_for(
    tmp_path: Path,
) -> None:
    make_sample(tmp_path / "plain", "src-hatchling")
    make_sample(tmp_path / "graph", "neo4j-setuptools")
    make_sample(tmp_path / "asked", "src-hatchling")
    assert init(tmp_path / "plain") == 0
    assert init(tmp_path / "graph") == 0
    assert init(tmp_path / "asked", "--neo4j") == 0
    assert "neo4j" not in (tmp_path / "plain" / "docker-compose.test.yml").read_text()
    for name in ("graph", "asked"):
        compose = (tmp_path / name / "docker-compose.test.yml").read_text()
        assert "condition: service_healthy" in compose
        assert "NEO4J_URI: bolt://neo4j:7687" in compose


def test_codeowners_names_the_authors_and_is_not_written_when_github_has_one(
    tmp_path: Path,
) -> None:
    make_sample(tmp_path / "a", "neo4j-setuptools")
    make_sample(tmp_path / "b", "src-hatchling")
    (tmp_path / "b" / ".github").mkdir()
    (tmp_path / "b" / ".github" / "CODEOWNERS").write_text("* @team\n")
    assert init(tmp_path / "a") == 0
    assert init(tmp_path / "b") == 0
    assert "*    grace@example.com" in (tmp_path / "a" / "CODEOWNERS").read_text()
    assert not (tmp_path / "b" / "CODEOWNERS").exists()


def test_the_audit_page_lists_what_testfleet_audit_finds_in_the_tests(tmp_path: Path) -> None:
    make_sample(tmp_path, "src-hatchling")
    (tmp_path / "tests" / "test_shared.py").write_text(
        "def test_writes_tmp():\n    open('/tmp/shared.txt', 'w').write('x')\n"
    )
    assert init(tmp_path) == 0
    page = (tmp_path / "docs" / "test-isolation-audit.md").read_text()
    assert "`testfleet audit tests --format markdown`" in page
    assert "`tests/test_shared.py:2` | TF101" in page
    assert "diagnose.md" not in page


def test_the_next_commands_parse_and_name_the_sessions_and_tasks_init_set_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_sample(tmp_path, "poetry")
    assert init(tmp_path) == 0
    out = capsys.readouterr().out
    commands = out.split("\nNext:\n", 1)[1].splitlines()
    words = [shlex.split(command) for command in commands]
    assert ["cd", str(tmp_path)] in words
    assert ["nox", "-s", "tests_parallel"] in words
    assert ["invoke", "ci"] in words
    assert words[-1][:2] == ["git", "add"]
    assert "noxfile.py" in words[-1]


def test_a_workflow_that_already_runs_the_pipeline_is_the_one_init_compares_with(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_sample(tmp_path, "src-hatchling")
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "lint.yml").write_text("name: lint\n")
    (workflows / "ci.yaml").write_text("name: ci\njobs: {t: {steps: [{run: invoke ci}]}}\n")
    assert init(tmp_path) == 0
    assert sorted(p.name for p in workflows.iterdir()) == ["ci.yaml", "lint.yml"]
    assert "  kept          .github/workflows/ci.yaml" in capsys.readouterr().out


def test_gitignore_gains_the_run_outputs_once_and_keeps_the_baseline_in(tmp_path: Path) -> None:
    make_sample(tmp_path, "poetry")
    (tmp_path / ".gitignore").write_text("*.pyc\n.coverage")
    assert init(tmp_path) == 0
    text = (tmp_path / ".gitignore").read_text()
    assert text.startswith("*.pyc\n.coverage\n\n# Written by the test runs")
    lines = text.splitlines()
    assert lines.count(".coverage") == 1
    assert "!reports/test-timing-baseline.json" in lines
    assert lines.index("reports/*") < lines.index("!reports/test-timing-baseline.json")


@pytest.mark.parametrize("existing", [None, "import pytest\n\ncollect_ignore = ['setup.py']\n"])
def test_a_suite_that_imports_every_module_does_not_import_the_task_runners_files(
    tmp_path: Path, existing: str | None
) -> None:
    make_sample(tmp_path, "flat-setuptools-inside")
    with (tmp_path / "pyproject.toml").open("a") as handle:
        handle.write('\n[tool.pytest.ini_options]\naddopts = "--doctest-modules"\n')
    if existing is not None:
        (tmp_path / "conftest.py").write_text(existing)
    assert init(tmp_path) == 0
    text = (tmp_path / "conftest.py").read_text()
    assert text.startswith(existing or '"""pytest settings')
    namespace: dict[str, object] = {}
    exec(compile(text, "conftest.py", "exec"), namespace)
    expected = ["setup.py"] if existing else []
    assert namespace["collect_ignore"] == [*expected, "noxfile.py", "tasks.py"]
    assert init(tmp_path) == 0
    assert (tmp_path / "conftest.py").read_text() == text


def test_pytest_with_doctest_modules_collects_the_tests_and_not_the_noxfile_after_init(
    pytester: pytest.Pytester,
) -> None:
    make_sample(pytester.path, "flat-setuptools-inside")
    with (pytester.path / "pyproject.toml").open("a") as handle:
        handle.write('\n[tool.pytest.ini_options]\naddopts = "--doctest-modules -p no:randomly"\n')
    assert init(pytester.path) == 0
    # The noxfile must not be imported: make that fail loudly if it were.
    noxfile = pytester.path / "noxfile.py"
    noxfile.write_text("raise ImportError('collected')\n" + noxfile.read_text())
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=5)


def test_a_suite_limited_to_its_testpaths_gets_no_conftest(tmp_path: Path) -> None:
    make_sample(tmp_path, "src-hatchling")
    text = (tmp_path / "pyproject.toml").read_text().replace("-n auto", "--doctest-modules -n auto")
    (tmp_path / "pyproject.toml").write_text(text)
    assert init(tmp_path) == 0
    assert not (tmp_path / "conftest.py").exists()


# --- never overwrite, --force, --dry-run --------------------------------------------------


def test_a_file_the_project_has_is_kept_and_its_difference_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_sample(tmp_path, "src-hatchling")
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\n")
    assert init(tmp_path) == 0
    assert (tmp_path / "Dockerfile").read_text() == "FROM python:3.11-slim\n"
    out = capsys.readouterr().out
    assert "  kept          Dockerfile" in out
    assert "-FROM python:3.11-slim\n" in out
    assert "+ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm\n" in out
    assert "Kept as they are: Dockerfile. `testfleet init --force` replaces them." in out
    assert init(tmp_path, "--force") == 0
    assert "AS test" in (tmp_path / "Dockerfile").read_text()


def test_dry_run_shows_every_file_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_sample(tmp_path, "uv-groups")
    before = snapshot(tmp_path)
    assert init(tmp_path, "--dry-run") == 0
    assert snapshot(tmp_path) == before
    out = capsys.readouterr().out
    assert "would create  noxfile.py" in out
    assert "would update  pyproject.toml" in out
    assert '+dependency_groups = ["dev"]\n' in out
    assert out.endswith("Dry run: nothing was written.\n")


# --- an existing noxfile.py or tasks.py ---------------------------------------------------


def test_an_existing_noxfile_gets_the_two_lines_after_its_imports(tmp_path: Path) -> None:
    make_sample(tmp_path, "src-hatchling")
    own = '"""Ours."""\nimport nox\n\n\n@nox.session\ndef lint(session):\n    session.run("ruff")\n'
    (tmp_path / "noxfile.py").write_text(own)
    assert init(tmp_path) == 0
    text = (tmp_path / "noxfile.py").read_text()
    assert text.startswith(
        '"""Ours."""\nimport nox\n\nimport testfleet.nox\n\ntestfleet.nox.register()'
    )
    assert text.endswith(own.split("import nox\n", 1)[1])
    assert init(tmp_path) == 0
    assert (tmp_path / "noxfile.py").read_text() == text


def test_a_noxfile_with_a_session_of_the_same_name_is_kept_and_the_lines_are_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_sample(tmp_path, "src-hatchling")
    own = "import nox\n\n\n@nox.session(name='tests')\ndef run_tests(session):\n    pass\n"
    (tmp_path / "noxfile.py").write_text(own)
    assert init(tmp_path) == 0
    assert (tmp_path / "noxfile.py").read_text() == own
    out = capsys.readouterr().out
    assert "noxfile.py defines the session(s) tests" in out
    assert "    testfleet.nox.register()" in out


def test_tasks_are_added_beside_an_explicit_namespace_or_the_module_tasks(tmp_path: Path) -> None:
    explicit = (
        "from invoke import Collection, task\n\n@task\ndef docs(c):\n    pass\n\n"
        "ns = Collection(docs)\n"
    )
    merged = pyfiles.merge_tasks(explicit)
    assert merged.text is not None
    assert merged.text.startswith(explicit)
    assert "    ns.add_task(_task)" in merged.text
    implicit = "from invoke import task\n\n@task\ndef docs(c):\n    pass\n"
    merged = pyfiles.merge_tasks(implicit)
    assert merged.text is not None
    assert "namespace = _testfleet_collection()" in merged.text
    clash = "from invoke import task\n\n@task(name='ci')\ndef pipeline(c):\n    pass\n"
    assert pyfiles.merge_tasks(clash).text is None
    assert "tasks.py defines the task(s) ci" in pyfiles.merge_tasks(clash).advice


def lists(root: Path, *command: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=root, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_nox_and_invoke_list_the_sessions_and_tasks_of_the_files_init_writes(
    tmp_path: Path,
) -> None:
    make_sample(tmp_path, "src-hatchling")
    assert init(tmp_path) == 0
    sessions = lists(tmp_path, "nox", "--list")
    for name in ("tests", "tests_parallel", "randomized", "coverage"):
        assert f" {name}" in sessions
    tasks = lists(tmp_path, "invoke", "--list")
    for name in ("ci", "baseline", "report"):
        assert f"  {name}" in tasks


def test_a_project_s_own_tasks_and_sessions_stay_beside_testfleet_s_after_init(
    tmp_path: Path,
) -> None:
    make_sample(tmp_path, "src-hatchling")
    (tmp_path / "tasks.py").write_text(
        "from invoke import task\n\n\n@task\ndef docs(c):\n    pass\n"
    )
    (tmp_path / "noxfile.py").write_text(
        "import nox\n\n\n@nox.session\ndef lint(session):\n    pass\n"
    )
    assert init(tmp_path) == 0
    tasks = lists(tmp_path, "invoke", "--list")
    assert "  docs" in tasks
    assert "  ci" in tasks
    sessions = lists(tmp_path, "nox", "--list")
    assert " lint" in sessions
    assert " tests_parallel" in sessions


# --- bad input: exit 2, nothing written ---------------------------------------------------


def test_a_malformed_pyproject_is_refused_with_its_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_sample(tmp_path, "src-hatchling")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = \n')
    before = snapshot(tmp_path)
    assert init(tmp_path) == 2
    assert snapshot(tmp_path) == before
    err = capsys.readouterr().err
    assert "pyproject.toml is not valid TOML" in err
    assert "line 3, column 11" in err


def test_a_project_without_tests_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "helpers.py").write_text("")
    assert init(tmp_path) == 2
    assert snapshot(tmp_path) == {"pkg/__init__.py": b"", "tests/helpers.py": b""}
    assert "no tests found" in capsys.readouterr().err


def test_a_noxfile_that_does_not_parse_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_sample(tmp_path, "src-hatchling")
    (tmp_path / "noxfile.py").write_text("import nox\ndef broken(:\n")
    before = snapshot(tmp_path)
    assert init(tmp_path) == 2
    assert snapshot(tmp_path) == before
    assert "noxfile.py:2:" in capsys.readouterr().err


def test_a_place_init_cannot_write_to_stops_it_before_any_file_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_sample(tmp_path, "src-hatchling")
    # docs is a file, so docs/testing.md cannot be created: found before writing anything.
    (tmp_path / "docs").write_text("not a directory\n")
    before = snapshot(tmp_path)
    assert init(tmp_path) == 2
    assert snapshot(tmp_path) == before
    err = capsys.readouterr().err
    assert "nothing was written" in err
    assert "(for docs/testing.md) is not writable" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to a read-only directory")
def test_a_read_only_project_is_refused(tmp_path: Path) -> None:
    make_sample(tmp_path, "src-hatchling")
    before = snapshot(tmp_path)
    tmp_path.chmod(0o555)
    try:
        assert init(tmp_path) == 2
    finally:
        tmp_path.chmod(0o755)
    assert snapshot(tmp_path) == before


def test_a_write_that_fails_part_way_puts_back_the_files_already_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    make_sample(tmp_path, "src-hatchling")
    before = snapshot(tmp_path)
    from testfleet.scaffold import writer

    real = writer.write_text_atomic
    calls: list[Path] = []

    def failing(path: Path, text: str) -> None:
        calls.append(path)
        if path.name == "pyproject.toml" and text != before["pyproject.toml"].decode():
            raise OSError(28, "No space left on device")
        real(path, text)

    monkeypatch.setattr(writer, "write_text_atomic", failing)
    assert init(tmp_path) == 2
    assert len(calls) > 5
    assert snapshot(tmp_path) == before
    assert "put back as they were" in capsys.readouterr().err


def test_a_path_that_is_no_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init(tmp_path / "missing") == 2
    assert "is not a directory" in capsys.readouterr().err


# --- pieces -----------------------------------------------------------------------------


def test_templates_refuse_an_unknown_key_and_leave_dollar_expressions_alone() -> None:
    text = "${{ github.ref }} {{ name }} $VAR{% if flag %} on{% else %} off{% endif %}\n"
    rendered = render.render_text(text, {"name": "x", "flag": False})
    assert rendered == "${{ github.ref }} x $VAR off\n"
    with pytest.raises(render.TemplateError):
        render.render_text("{{ nope }}", {})


@pytest.mark.parametrize(
    ("constraint", "specifier"),
    [
        ("^1.2.3", ">=1.2.3,<2"),
        ("^0.2", ">=0.2,<0.3"),
        ("^0.0.3", ">=0.0.3,<0.0.4"),
        ("~1.2", ">=1.2,<1.3"),
        ("*", ""),
        ("1.4", "==1.4"),
        (">=2,<3", ">=2,<3"),
    ],
)
def test_poetry_constraints_become_pep_440_specifiers(constraint: str, specifier: str) -> None:
    assert deps.poetry_constraint(constraint) == specifier


def test_the_image_requirements_follow_the_testfleet_table_of_each_sample(tmp_path: Path) -> None:
    make_sample(tmp_path / "uv", "uv-groups")
    make_sample(tmp_path / "poetry", "poetry")
    make_sample(tmp_path / "flat", "flat-requirements")
    for name in ("uv", "poetry", "flat"):
        assert init(tmp_path / name) == 0
    uv = deps.project_requirements(tmp_path / "uv")
    assert uv[:4] == ["hatchling", "editables", "ruff", "pytest>=8"]
    poetry = deps.project_requirements(tmp_path / "poetry")
    assert poetry[:2] == ["poetry-core>=1.0.0", "pytest>=8.0,<9"]
    flat = deps.project_requirements(tmp_path / "flat")
    assert flat[0] == "pytest>=8"
    for found in (uv, poetry, flat):
        assert found[-len(deps.SESSION_TOOLS) :] == list(deps.SESSION_TOOLS)


def test_a_version_from_git_gets_a_stand_in_in_the_image_which_holds_no_git(
    tmp_path: Path,
) -> None:
    make_sample(tmp_path / "scm", "src-hatchling")
    make_sample(tmp_path / "plain", "src-hatchling")
    pyproject = tmp_path / "scm" / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('"hatchling>=1.18"', '"hatchling>=1.18", "hatch-vcs"')
    )
    for name in ("scm", "plain"):
        assert init(tmp_path / name) == 0
    assert "ENV SETUPTOOLS_SCM_PRETEND_VERSION=" in (tmp_path / "scm" / "Dockerfile").read_text()
    assert "SETUPTOOLS_SCM" not in (tmp_path / "plain" / "Dockerfile").read_text()
    # hatchling's editable install needs `editables`, installed without build isolation.
    assert deps.project_requirements(tmp_path / "scm")[:3] == [
        "hatchling>=1.18",
        "hatch-vcs",
        "editables",
    ]


def test_the_deps_command_prints_one_requirement_a_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_sample(tmp_path, "neo4j-setuptools")
    assert init(tmp_path) == 0
    capsys.readouterr()
    assert deps.main([str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == ["setuptools>=69", "neo4j>=5.0", "pytest"]


def test_plan_returns_the_same_changes_the_cli_writes(tmp_path: Path) -> None:
    make_sample(tmp_path, "flat-setuptools-inside")
    planned = scaffold.plan(tmp_path)
    assert init(tmp_path) == 0
    for change in planned.changes:
        assert (tmp_path / change.path).read_text() == change.proposed


def test_detect_raises_a_clear_error_for_an_unreadable_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").mkdir()
    with pytest.raises(InitError, match="cannot be read"):
        detect(tmp_path)
