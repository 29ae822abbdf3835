"""Every pytest command line testfleet starts is built here, so that they cannot drift apart.

Run phases, randomized seeds, bisection probes and reruns all start ``python -m pytest``
with the same interpreter; the only differences are spelled by the functions below.
"""

from __future__ import annotations

import enum
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

#: The ``--dist`` name of testfleet's own scheduler on ``testfleet run``. pytest-xdist's
#: ``--dist`` takes only its own modes, so the child pytest gets ``--dist load`` and
#: ``--testfleet-scheduler``, which makes testfleet's scheduler take over.
TESTFLEET_DIST = "testfleet"
#: The ``--dist`` modes of pytest-xdist 3.x that ``testfleet run --dist`` passes through.
XDIST_MODES = ("load", "loadscope", "loadfile", "loadgroup", "worksteal", "each")
DIST_CHOICES = (TESTFLEET_DIST, *XDIST_MODES)
DEFAULT_DIST = TESTFLEET_DIST


class ExitCode(enum.IntEnum):
    """pytest's exit statuses (``pytest.ExitCode``), for the commands that start pytest.

    The same numbers without importing pytest, which would add a quarter of a second to
    every ``testfleet`` command before its first pytest even starts.
    """

    OK = 0
    TESTS_FAILED = 1
    INTERRUPTED = 2
    INTERNAL_ERROR = 3
    USAGE_ERROR = 4
    NO_TESTS_COLLECTED = 5


def xdist_installed() -> bool:
    """Whether the child pytest (same interpreter) has pytest-xdist."""
    return importlib.util.find_spec("xdist") is not None


def pytest_command(args: Sequence[str]) -> list[str]:
    """``python -m pytest ARGS`` with this interpreter."""
    return [sys.executable, "-m", "pytest", *args]


def one_process() -> list[str]:
    """Arguments that keep a child pytest in one process, whatever the project's addopts say.

    ``-n 0``, not ``-p no:xdist``: with xdist unloaded, ``-n auto`` in a project's addopts
    is an unknown option and the ``xdist_group`` marker is no longer registered, an error
    under ``--strict-markers``. ``-n 0`` keeps both, and overrides an ``-n`` in addopts
    because command-line arguments come after them.
    """
    return ["-n", "0"] if xdist_installed() else []


def distributed(workers: int | str, dist: str) -> list[str]:
    """Arguments that spread the tests over ``workers`` xdist workers in ``dist`` mode."""
    if dist == TESTFLEET_DIST:
        return ["-n", str(workers), "--dist", "load", "--testfleet-scheduler"]
    return ["-n", str(workers), "--dist", dist]


def check_dist(dist: str) -> str:
    """``dist`` when testfleet run knows it, else a ValueError that lists the choices."""
    if dist not in DIST_CHOICES:
        raise ValueError(
            f"--dist {dist!r} is not a scheduling mode: use {TESTFLEET_DIST} (the default: "
            "longest tests first from past durations, `serial` tests last in the same "
            f"session) or one of xdist's: {', '.join(XDIST_MODES)}"
        )
    return dist


def path_option(name: str, path: Path | str) -> str:
    """``--name=PATH`` as one argument, never ``--name PATH``.

    pytest chooses its rootdir, and so the config file it reads, before it loads the
    plugins that know these options: the value of a two-argument option it does not know
    yet counts as a path to test, and a report outside the project would move the rootdir
    up to a common parent, where the project's pytest settings are not found.
    """
    return f"{name}={path}"


def report_args(path: Path) -> list[str]:
    """Arguments that make the child pytest write its timing report to ``path``."""
    return [path_option("--testfleet-report", path)]


def durations_args(sources: Sequence[Path]) -> list[str]:
    """Arguments that give the scheduler reports of earlier runs to take durations from."""
    args: list[str] = []
    for source in sources:
        args.append(path_option("--testfleet-durations", source))
    return args


def run_phase(
    pytest_args: Sequence[str],
    *,
    workers: int | str,
    dist: str,
    report: Path,
    serial: str = "run",
    durations: Sequence[Path] = (),
) -> list[str]:
    """The command of one phase of ``testfleet run``; the user's arguments come last."""
    if workers != 1:
        spread = distributed(workers, dist)
        if dist == TESTFLEET_DIST:
            spread += durations_args(durations)
    else:
        spread = one_process()
    serial_args = [] if serial == "run" else [f"--testfleet-serial={serial}"]
    return pytest_command([*spread, *serial_args, *report_args(report), *pytest_args])
