"""Generated suites with a planted collision, and one trial of `testfleet classify` on them.

Each suite has two xdist groups, so that ``--dist loadgroup`` puts them on two workers:
``left`` and ``right`` each hold one test that takes a shared resource for a moment (the
*writers*) among quick tests that share nothing. The two writers start together, so one of
them fails under ``-n 2`` and both pass serially; classify must name the other writer.

Kinds of shared resource:

- ``cwd``: a fixed file name in the current directory;
- ``tmp``: a fixed file name in the system temp directory;
- ``port``: a fixed TCP port on 127.0.0.1.

An environment variable cannot collide across xdist workers (each is a process of its
own with its own environment): it is order dependence, the business of `testfleet bisect`.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

KINDS = ("cwd", "tmp", "port")
#: Seconds each writer holds the resource: long enough that the two always overlap.
HOLD = 0.4
REPORT = "reports/run.json"

_TAKE = {
    "cwd": (
        "SHARED = Path('collide-shared-{token}.txt')",
        "    SHARED.write_text('{side}')\n"
        "    time.sleep({hold})\n"
        "    assert SHARED.read_text() == '{side}'\n",
    ),
    "tmp": (
        "SHARED = Path(tempfile.gettempdir()) / 'collide-shared-{token}.txt'",
        "    SHARED.write_text('{side}')\n"
        "    time.sleep({hold})\n"
        "    assert SHARED.read_text() == '{side}'\n",
    ),
    "port": (
        "PORT = {port}",
        "    with socket.socket() as server:\n"
        "        server.bind(('127.0.0.1', PORT))\n"
        "        server.listen()\n"
        "        time.sleep({hold})\n",
    ),
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def writer(side: str) -> str:
    return f"test_{side}.py::test_{side}_takes_the_shared_resource"


def write_suite(path: Path, kind: str) -> None:
    """A suite whose two writers collide on a ``kind`` resource when they run together."""
    shared, body = _TAKE[kind]
    values = {"token": uuid.uuid4().hex[:8], "port": free_port(), "hold": HOLD}
    head = (
        "import socket\nimport tempfile\nimport time\nfrom pathlib import Path\n\n"
        "import pytest\n\n" + shared.format(**values) + "\n"
    )
    (path / "pytest.ini").write_text("[pytest]\n")
    for side, quick_first in (("left", 0), ("right", 2)):
        quick = [
            f"@pytest.mark.xdist_group('{side}')\ndef test_{side}_quick_{n}() -> None:\n"
            "    time.sleep(0.02)\n"
            for n in range(3)
        ]
        take = (
            f"@pytest.mark.xdist_group('{side}')\n"
            f"def test_{side}_takes_the_shared_resource() -> None:\n"
            + body.format(side=side, **values)
        )
        tests = [*quick[:quick_first], take, *quick[quick_first:]]
        (path / f"test_{side}.py").write_text(head + "\n\n" + "\n\n".join(tests))


@dataclass(frozen=True)
class Trial:
    """What one trial gave: the run's failures and what classify said of each."""

    run_status: int
    failed: list[str]
    #: node id -> (class, the tests it collides with, the reproduce command)
    said: dict[str, tuple[str, list[str], str]]
    output: str

    @property
    def right(self) -> bool:
        """Each failure parallel-only with the other writer, and at least one failure."""
        if not self.failed:
            return False
        for nodeid in self.failed:
            side = "left" if "left" in nodeid else "right"
            other = writer("right" if side == "left" else "left")
            if self.said.get(nodeid, ("", [], ""))[:2] != ("parallel-only", [other]):
                return False
        return True


def clean_env() -> dict[str, str]:
    """The environment of the inner runs: no outer pytest, xdist or testfleet settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TESTFLEET_"))}


def run_trial(path: Path, kind: str, runs: int = 1) -> Trial:
    """Write a ``kind`` suite in ``path``, run it under ``-n 2``, classify its failures."""
    write_suite(path, kind)
    run = [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-p", "no:randomly"]
    done = subprocess.run(
        [*run, f"--testfleet-report={REPORT}"],
        cwd=path, env=clean_env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    report = json.loads((path / REPORT).read_text())
    failed = sorted(t["nodeid"] for t in report["tests"] if t["outcome"] == "failed")
    classified = subprocess.run(
        [sys.executable, "-m", "testfleet", "classify", REPORT, "--runs", str(runs)],
        cwd=path, env=clean_env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    said: dict[str, tuple[str, list[str], str]] = {}
    result_file = path / "reports" / "classification.json"
    if result_file.exists():
        for result in json.loads(result_file.read_text())["results"]:
            said[result["nodeid"]] = (result["class"], result["collides_with"], result["reproduce"])
    return Trial(done.returncode, failed, said, classified.stdout + classified.stderr)


def reproduces(path: Path, command: str) -> bool:
    """Whether the reproduce command shows the failure again (it exits 1 when it does)."""
    done = subprocess.run(
        [*shlex.split(command), "--times", "2"], cwd=path, env=clean_env(), capture_output=True,
        check=False,
    )  # fmt: skip
    return done.returncode == 1
