"""Finding the Docker engine, a client that builds with BuildKit, and a compose command.

Debian bookworm's packages give an engine (``docker.io``) and Compose 1.29
(``docker-compose``) but no buildx: a newer client found first on ``PATH`` refuses to
build with BuildKit without buildx, while the engine's own 20.10 client builds with
it. So the client is chosen by what it can do, not by where it is on ``PATH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: The variable that names the docker client to use, skipping the search.
CLIENT_ENV = "TESTFLEET_DOCKER"
#: How long a question to the engine may take before it counts as no answer.
PROBE_TIMEOUT = 20.0
NO_ENGINE = (
    "no Docker engine answers `docker info`: start one (Debian, as root: "
    "apt-get install -y docker.io docker-compose debootstrap && dockerd &) or point "
    "DOCKER_HOST at a running engine, then try again"
)
NO_BUILDKIT = (
    "no docker client here builds with BuildKit (the Dockerfile's cache and bind mounts "
    "need it): install buildx (the docker-buildx package) or Debian's docker.io client, "
    f"or name a client with {CLIENT_ENV}=/path/to/docker"
)
NO_COMPOSE = (
    "neither `docker compose` nor `docker-compose` is installed: install Compose "
    "(Debian: apt-get install -y docker-compose)"
)


class EngineError(Exception):
    """Docker cannot be used as it is here; the message says what to install or start."""


@dataclass(frozen=True)
class Engine:
    """The commands that reach one engine: a BuildKit-capable client and compose."""

    docker: str
    compose: tuple[str, ...]

    def build_env(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a ``docker build``: BuildKit on, whatever the client's default."""
        return {**(os.environ if environ is None else environ), "DOCKER_BUILDKIT": "1"}


def _answers(command: Sequence[str], env: Mapping[str, str] | None = None) -> bool:
    try:
        result = subprocess.run(
            list(command),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=PROBE_TIMEOUT,
            check=False,
            env=None if env is None else dict(env),
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _clients(path: str) -> list[str]:
    """Every ``docker`` executable on ``path``, in ``PATH`` order, each once."""
    found: list[str] = []
    for folder in path.split(os.pathsep):
        candidate = Path(folder or ".") / "docker"
        if os.access(candidate, os.X_OK) and candidate.is_file():
            resolved = str(candidate.resolve())
            if resolved not in found:
                found.append(resolved)
    return found


def _client_version(docker: str) -> tuple[int, ...]:
    try:
        text = subprocess.run(
            [docker, "version", "--format", "{{.Client.Version}}"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ()
    digits = [part for part in text.strip().split("+")[0].split(".") if part.isdigit()]
    return tuple(int(part) for part in digits)


def builds_with_buildkit(docker: str) -> bool:
    """With buildx, or a client before 23.0, whose ``DOCKER_BUILDKIT=1`` needs no buildx."""
    if _answers([docker, "buildx", "version"]):
        return True
    version = _client_version(docker)
    return bool(version) and version < (23,)


def find_client(environ: Mapping[str, str] | None = None) -> str:
    """The docker client to use: ``$TESTFLEET_DOCKER``, else the first that builds with BuildKit."""
    env = os.environ if environ is None else environ
    if env.get(CLIENT_ENV):
        return env[CLIENT_ENV]
    clients = _clients(env.get("PATH", ""))
    if not clients:
        raise EngineError(NO_ENGINE)
    for client in clients:
        if builds_with_buildkit(client):
            return client
    raise EngineError(NO_BUILDKIT)


def find_compose(docker: str) -> tuple[str, ...]:
    """``docker compose`` (v2) where the plugin is there, else Compose 1's ``docker-compose``."""
    if _answers([docker, "compose", "version"]):
        return (docker, "compose")
    legacy = shutil.which("docker-compose")
    if legacy is not None:
        return (legacy,)
    raise EngineError(NO_COMPOSE)


def connect(environ: Mapping[str, str] | None = None) -> Engine:
    """The engine's commands, once the engine answers; EngineError says what is missing."""
    docker = find_client(environ)
    if not _answers([docker, "info"]):
        raise EngineError(NO_ENGINE)
    return Engine(docker=docker, compose=find_compose(docker))
