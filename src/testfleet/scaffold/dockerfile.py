"""The stage of the project's own Dockerfile that the compose file builds.

init keeps a Dockerfile the project already has; its compose file builds the ``test``
stage of testfleet's Dockerfile. A kept Dockerfile without that stage would fail at
``docker compose build`` with "target stage test could not be found", so the compose file
builds the stage that exists (the last one) and init says what the image then needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

TEST_STAGE = "test"
# FROM [--platform=...] IMAGE [AS NAME]; Dockerfile keywords are case-insensitive.
FROM_LINE = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*\S+(?:\s+AS\s+(\S+))?\s*$", re.I | re.M)


@dataclass(frozen=True)
class Target:
    """The stage the compose file builds (None: the last one) and advice when it is not ours."""

    stage: str | None = TEST_STAGE
    advice: str = ""


def stages(text: str) -> list[str | None]:
    """The Dockerfile's stages in order, each by name (None for an unnamed one)."""
    return [match.group(1) for match in FROM_LINE.finditer(text)]


def compose_target(root: Path, *, force: bool) -> Target:
    """``test`` unless the Dockerfile init keeps lacks it; then its last stage, with advice."""
    path = root / "Dockerfile"
    if force or not path.is_file():
        return Target()
    try:
        found = stages(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return Target()
    named = [name for name in found if name]
    if TEST_STAGE in {name.lower() for name in named}:
        return Target()
    last = f"its last stage `{found[-1]}`" if found and found[-1] else "its last stage"
    return Target(
        None,
        f"Dockerfile (kept) has no `{TEST_STAGE}` stage, which docker-compose.test.yml would "
        f"build: the compose file builds {last} instead. That image must hold the tests, "
        "their dependencies, testfleet and nox; or add a stage "
        f"`FROM <base> AS {TEST_STAGE}` that installs them and set `target: {TEST_STAGE}` "
        "(`testfleet init --force` writes testfleet's Dockerfile)",
    )
