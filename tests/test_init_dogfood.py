"""What `testfleet init` writes for a project like this one matches this repository's files.

This repository is init's first user: its Dockerfile, compose file and workflow were the
model for the templates. The plan for this checkout is computed (nothing is written) and
compared with the files here in substance: same image, stages, user, command and
environment; same Neo4j service and health gate; same CI steps; no setting missing from
pyproject.toml.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from testfleet import scaffold

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def plan() -> scaffold.Plan:
    return scaffold.plan(ROOT)


def proposed(plan: scaffold.Plan, path: str) -> str:
    change = next(item for item in plan.changes if item.path == path)
    assert change.proposed is not None
    return change.proposed


def yaml(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


def instructions(dockerfile: str, name: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    return [line.strip() for line in joined.splitlines() if line.startswith(name + " ")]


def test_init_finds_this_repository_as_it_is(plan: scaffold.Plan) -> None:
    project = plan.project
    found = (project.layout, project.packages, project.backend)
    assert found == ("src", ["testfleet"], "setuptools")
    assert (project.test_dirs, project.extras) == (["tests"], ["test"])
    assert plan.neo4j


def test_the_dockerfile_has_our_base_image_stages_user_command_and_environment(
    plan: scaffold.Plan,
) -> None:
    ours = (ROOT / "Dockerfile").read_text()
    theirs = proposed(plan, "Dockerfile")
    assert instructions(theirs, "FROM")[0] == instructions(ours, "FROM")[0]
    stages = [line.split(" AS ")[1] for line in instructions(theirs, "FROM")]
    assert stages == ["python", "deps", "test"]
    for name in ("USER", "CMD", "WORKDIR"):
        assert set(instructions(theirs, name)) <= set(instructions(ours, name)), name
    ours_env = " ".join(instructions(ours, "ENV"))
    for assignment in " ".join(instructions(theirs, "ENV")).split():
        if "=" in assignment:
            assert assignment in ours_env, assignment


def test_the_compose_file_has_our_neo4j_service_and_health_gate(plan: scaffold.Plan) -> None:
    ours = yaml((ROOT / "docker-compose.test.yml").read_text())["services"]
    theirs = yaml(proposed(plan, "docker-compose.test.yml"))["services"]
    assert set(theirs) == set(ours)
    assert theirs["neo4j"]["image"] == ours["neo4j"]["image"]
    assert theirs["neo4j"]["healthcheck"] == ours["neo4j"]["healthcheck"]
    assert theirs["tests"]["depends_on"] == ours["tests"]["depends_on"]
    assert theirs["tests"]["build"]["target"] == ours["tests"]["build"]["target"]
    assert theirs["tests"]["volumes"] == ours["tests"]["volumes"]
    assert set(theirs["tests"]["environment"]) <= set(ours["tests"]["environment"])


def test_the_workflow_runs_the_same_steps_as_ours(plan: scaffold.Plan) -> None:
    path = ".github/workflows/ci.yml"
    ours = yaml((ROOT / path).read_text())["jobs"]["tests"]
    theirs = yaml(proposed(plan, path))["jobs"]["tests"]
    assert theirs["env"] == ours["env"]

    def commands(job: dict[str, Any]) -> list[str]:
        return [line for step in job["steps"] for line in step.get("run", "").splitlines()]

    for line in commands(theirs):
        if line.strip() != "mkdir -p reports":
            assert line in commands(ours), line
    assert [s.get("uses") for s in theirs["steps"]] == [s.get("uses") for s in ours["steps"]]


def test_pyproject_already_has_every_coverage_setting_init_adds(plan: scaffold.Plan) -> None:
    change = next(item for item in plan.changes if item.path == "pyproject.toml")
    assert not [item for item in change.detail.split(", ") if "coverage" in item]


def test_our_noxfile_tasks_and_pyproject_are_what_init_leaves_as_they_are(
    plan: scaffold.Plan,
) -> None:
    # Both use the libraries and pyproject.toml has every table init adds: nothing to do.
    actions = {item.path: item.action for item in plan.changes}
    for path in ("noxfile.py", "tasks.py", "pyproject.toml", ".gitignore"):
        assert actions[path] == "unchanged", path
    assert not [item for item in plan.advice if "noxfile.py" in item or "tasks.py" in item]
