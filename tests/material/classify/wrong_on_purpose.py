"""A suite that is wrong on purpose, for `testfleet classify` (tests/test_classify.py).

Copied into a scratch directory as ``test_wrong_on_purpose.py`` and run with
``testfleet run --workers 2``: its name keeps the outer pytest from collecting it here.
With ``--dist loadgroup`` each ``xdist_group`` goes to a worker of its own, so the
shared-file race below always happens, on two workers, and never in a serial run.

- ``test_reads_back_the_shared_file``: parallel-only (a shared file)
- ``test_sees_a_clean_environment``: order-dependent (``test_pollutes_the_environment``
  runs before it on its worker)
- ``test_is_flaky``: flaky, with a probability seeded by how often it ran
- ``test_always_fails``: a plain failure
- ``test_finds_the_admin``: order-dependent on a test of the other worker
  (``test_registers_the_admin``): it fails in its worker's order and alone, and passes in
  the suite's serial order

The files that order the race are named after the xdist run (``PYTEST_XDIST_TESTRUNUID``),
so that every parallel rerun races again.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent
SHARED = HERE / "shared.txt"
COUNTER = HERE / "flaky-runs"
#: Seeds 0.. of this salt give the outcomes the test expects (see test_is_flaky).
FLAKY_SALT = "classify"


def marker(name: str) -> Path:
    return HERE / f"{name}-{os.environ.get('PYTEST_XDIST_TESTRUNUID', 'serial')}"


#: Filled by test_registers_the_admin, read by test_finds_the_admin: one process only.
REGISTRY: dict[str, str] = {}


def wait_for(path: Path) -> None:
    # Only under xdist: the wait turns the race of two workers into a certainty, and a
    # serial run (where the other test is not running) must not pay for it.
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return
    deadline = time.monotonic() + 30
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.01)


@pytest.mark.xdist_group("reader")
def test_reads_back_the_shared_file() -> None:
    SHARED.write_text("reader")
    marker("reader-wrote").touch()
    wait_for(marker("writer-wrote"))
    assert SHARED.read_text() == "reader"


@pytest.mark.xdist_group("reader")
def test_registers_the_admin() -> None:
    REGISTRY["admin"] = "root"


@pytest.mark.xdist_group("writer")
def test_overwrites_the_shared_file() -> None:
    wait_for(marker("reader-wrote"))
    SHARED.write_text("writer")
    marker("writer-wrote").touch()


@pytest.mark.xdist_group("writer")
def test_pollutes_the_environment() -> None:
    os.environ["CLASSIFY_POLLUTED"] = "1"


@pytest.mark.xdist_group("writer")
def test_sees_a_clean_environment() -> None:
    assert "CLASSIFY_POLLUTED" not in os.environ


@pytest.mark.xdist_group("writer")
def test_is_flaky() -> None:
    # The n-th run of this test fails with probability 1/2, seeded by n: random-looking,
    # yet the same outcomes in every run of the suite.
    runs = int(COUNTER.read_text()) if COUNTER.exists() else 0
    COUNTER.write_text(str(runs + 1))
    assert random.Random(f"{FLAKY_SALT}{runs}").random() >= 0.5


@pytest.mark.xdist_group("writer")
def test_always_fails() -> None:
    assert 1 + 1 == 3


@pytest.mark.xdist_group("writer")
def test_passes() -> None:
    pass


@pytest.mark.xdist_group("writer")
def test_finds_the_admin() -> None:
    assert REGISTRY.get("admin") == "root"
