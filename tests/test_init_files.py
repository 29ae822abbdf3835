"""The container files and workflow `testfleet init` writes: linted, valid, and in step.

No Docker engine runs here, so they are checked as this repository's own are
(test_container_files.py): hadolint, the Compose Specification and GitHub workflow
schemas, and what the build context lets through.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import pytest
from docker.utils import exclude_paths
from ruamel.yaml import YAML

from init_samples import SAMPLES, make_sample
from testfleet.cli.program import main
from testfleet.scaffold import render


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> Mapping[str, Path]:
    """Every sample, initialised; `src-hatchling+neo4j` is the same sample with --neo4j."""
    made = {}
    for key in SAMPLES:
        root = tmp_path_factory.mktemp(key)
        make_sample(root, key)
        assert main(["init", str(root)]) == 0
        made[key] = root
    root = tmp_path_factory.mktemp("asked-neo4j")
    make_sample(root, "src-hatchling")
    assert main(["init", str(root), "--neo4j"]) == 0
    made["src-hatchling+neo4j"] = root
    return MappingProxyType(made)


def tool(name: str) -> str:
    beside_python = Path(sys.executable).with_name(name)
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed: install the `test` extra")
    return found


def run(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=False)


def load_yaml(path: Path) -> dict[str, object]:
    data: dict[str, object] = YAML(typ="safe", pure=True).load(path)
    return data


def test_hadolint_finds_nothing_in_the_dockerfile_of_any_sample(
    projects: Mapping[str, Path],
) -> None:
    files = [root / "Dockerfile" for root in projects.values()]
    result = run(tool("hadolint"), "--no-color", "--failure-threshold", "style", *files)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("schema", "name"),
    [
        ("vendor.compose-spec", "docker-compose.test.yml"),
        ("vendor.github-workflows", ".github/workflows/tests.yml"),
    ],
)
def test_compose_file_and_workflow_match_their_schemas_with_and_without_neo4j(
    projects: Mapping[str, Path], schema: str, name: str
) -> None:
    pytest.importorskip("check_jsonschema", reason="install the `test` extra (check-jsonschema)")
    files = [root / name for root in projects.values()]
    result = run(sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *files)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("key", ["neo4j-setuptools", "src-hatchling+neo4j"])
def test_the_tests_service_waits_for_a_healthy_neo4j_it_reaches_by_name(
    projects: Mapping[str, Path], key: str
) -> None:
    services = load_yaml(projects[key] / "docker-compose.test.yml")["services"]
    assert isinstance(services, dict)
    neo4j, tests = services["neo4j"], services["tests"]
    assert neo4j["healthcheck"]["test"][0] == "CMD-SHELL"
    assert "RETURN 1" in neo4j["healthcheck"]["test"][1]
    assert "ports" not in neo4j
    assert tests["depends_on"] == {"neo4j": {"condition": "service_healthy"}}
    assert tests["environment"]["NEO4J_URI"] == "bolt://neo4j:7687"
    password = neo4j["environment"]["NEO4J_AUTH"].split("/", 1)[1]
    assert password == tests["environment"]["NEO4J_PASSWORD"]


def test_without_neo4j_the_compose_file_has_the_tests_service_alone(
    projects: Mapping[str, Path],
) -> None:
    services = load_yaml(projects["src-hatchling"] / "docker-compose.test.yml")["services"]
    assert isinstance(services, dict)
    assert list(services) == ["tests"]
    assert "depends_on" not in services["tests"]


@pytest.mark.parametrize("key", sorted(SAMPLES))
def test_the_build_context_holds_what_the_image_reads_and_no_local_environment(
    projects: Mapping[str, Path], key: str
) -> None:
    root = projects[key]
    for extra in (".venv/bin/python", ".nox/x/y", "reports/test-timing.json"):
        (root / extra).parent.mkdir(parents=True, exist_ok=True)
        (root / extra).write_text("")
    patterns = (root / ".dockerignore").read_text().splitlines()
    kept = exclude_paths(str(root), [p for p in patterns if p and not p.startswith("#")])
    dockerfile = (root / "Dockerfile").read_text()
    for source in re.findall(r"--mount=type=bind,source=(\S+?),", dockerfile):
        assert source in kept, source
    assert not any(item.startswith((".venv", ".nox", "reports/test-timing.json")) for item in kept)
    assert "tests/" in "".join(kept) or "test/" in "".join(kept) or "ledger/tests" in "".join(kept)


@pytest.mark.parametrize("key", sorted(SAMPLES))
def test_the_image_runs_invoke_ci_as_a_non_root_user_on_a_pinned_python(
    projects: Mapping[str, Path], key: str
) -> None:
    dockerfile = (projects[key] / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)", dockerfile, re.M)
    # The base is a build argument (offline builds pass another); its default is pinned.
    assert froms[0] == "${PYTHON_IMAGE}"
    default = re.search(r"^ARG PYTHON_IMAGE=(\S+)", dockerfile, re.M)
    assert default is not None
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-bookworm", default.group(1))
    assert "AS test" in dockerfile
    assert dockerfile.rstrip().endswith('CMD ["invoke", "ci"]')
    assert "USER ${APP_UID}:${APP_GID}" in dockerfile
    # Dependencies before the code: the deps stage reads the manifests only.
    assert dockerfile.index("testfleet.scaffold.deps") < dockerfile.index("COPY --chown")
    installs = "--no-build-isolation --editable ." in dockerfile
    assert installs is SAMPLES[key].install_project


def test_the_workflow_publishes_the_summary_the_pipeline_writes(
    projects: Mapping[str, Path],
) -> None:
    workflow = load_yaml(projects["poetry"] / ".github/workflows/tests.yml")
    jobs = workflow["jobs"]  # type: ignore[index]
    # Each shard runs its part and uploads its reports; the combine job writes the summary.
    shard_runs = "\n".join(step.get("run", "") for step in jobs["tests"]["steps"])
    assert (
        "docker compose -f docker-compose.test.yml run --rm tests invoke ci --shard" in shard_runs
    )
    steps = jobs["combine"]["steps"]
    runs = "\n".join(step.get("run", "") for step in steps)
    assert "docker compose -f docker-compose.test.yml run --rm tests invoke combine" in runs
    assert f'cat {render.SUMMARY} >> "$GITHUB_STEP_SUMMARY"' in runs
    for job in ("tests", "combine"):
        upload = next(s for s in jobs[job]["steps"] if "upload-artifact" in s.get("uses", ""))
        assert upload["if"] == "always()"
