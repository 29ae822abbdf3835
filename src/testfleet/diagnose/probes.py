"""Probe command lines and the runner that starts them.

A probe is one pytest process that runs some tests and then the test under diagnosis (the
victim), in exactly that order, with xdist off. The node ids reach pytest through an order
file (`--testfleet-order-file`), never the command line: no list is too long, and the
node ids pytest did not collect come back in a file, not from its output. pytest is only
given the test files, so that it collects no more than the probe runs.

Printed commands, meant for a person, list the node ids on the command line instead:
they are short (the cause and the victim) and run without testfleet's order file.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from testfleet.diagnose import warm
from testfleet.runs import commands
from testfleet.scheduling import ordering

#: Options that would stop a probe before the victim runs, or that need the cache plugin
#: the probes switch off; each maps to whether it takes a separate value.
STOPPING_OPTIONS = {
    "-x": False,
    "--exitfirst": False,
    "--maxfail": True,
    "--sw": False,
    "--stepwise": False,
    "--stepwise-skip": False,
    "--lf": False,
    "--last-failed": False,
    "--ff": False,
    "--failed-first": False,
    "--nf": False,
    "--new-first": False,
    "--cache-clear": False,
    "--lfnf": True,
    "--last-failed-no-failures": True,
}
#: Options that choose tests: they chose the suite of the run being diagnosed, whose
#: node ids the probes now give themselves.
SELECTING_OPTIONS = {"-k": True, "-m": True, "--deselect": True}
#: pytest options that take a separate value, so that the value is not taken for a path.
VALUE_OPTIONS = frozenset(
    {
        "-p", "-c", "-o", "-W", "-n", "-r", "--rootdir", "--confcutdir", "--basetemp",
        "--tb", "--durations", "--durations-min", "--dist", "--junitxml", "--junit-xml",
        "--log-level", "--log-cli-level", "--log-file", "--log-file-level", "--cov",
        "--cov-report", "--cov-config", "--cov-fail-under", "--randomly-seed", "--timeout",
        "--import-mode", "--capture", "--color", "--show-capture", "--maxprocesses", "--tx",
        "--override-ini", "--ignore", "--ignore-glob", "--testfleet-report",
        "--testfleet-serial", "--testfleet-lock-dir", "--testfleet-pool-timeout",
        "--testfleet-order-file", "--reruns", "--reruns-delay", "--inifile", "--config-file",
        "--pythonwarnings", "--assert", "--debug", "--strict-markers-file", "--max-worker-restart",
        "--verbosity", "--report-log", "--html", "--alluredir",
    }
)  # fmt: skip
#: The most probes at once: a split in five parts already saves most rounds.
MAX_JOBS = 4
#: Probe outcomes of the victim that count as failing; a probe that timed out counts too.
FAILING = frozenset({"failed", "error", "timeout"})


class ProbeError(Exception):
    """A probe could not run the victim; the message says why and how it was run."""


class NotCollected(Exception):
    """pytest did not collect some node ids of a probe: the suite changed since the order."""

    def __init__(self, missing: Sequence[str]) -> None:
        super().__init__(f"{len(missing)} node ids not collected")
        self.missing = list(missing)


@dataclass(frozen=True)
class ProbeArgs:
    """The user's pytest arguments, sorted by what the probes do with them."""

    kept: list[str]
    #: Options that stop early or need the cache: left out, and said so.
    dropped: list[str]
    #: Paths, node ids, -k, -m, --deselect: they chose the run's tests; the probes do.
    selection: list[str]


def split_args(args: Sequence[str], cwd: Path | None = None) -> ProbeArgs:
    """Sort ``args`` into those a probe keeps, drops, and those that selected tests."""
    base = cwd or Path.cwd()
    kept: list[str] = []
    dropped: list[str] = []
    selection: list[str] = []
    items = list(args)
    index = 0
    while index < len(items):
        arg = items[index]
        name = arg.split("=", 1)[0]
        takes_value = "=" not in arg and index + 1 < len(items)
        for table, target in ((STOPPING_OPTIONS, dropped), (SELECTING_OPTIONS, selection)):
            if name in table:
                target.append(arg)
                if table[name] and takes_value:
                    target.append(items[index + 1])
                    index += 1
                break
        else:
            if not arg.startswith("-"):
                selection.append(arg)
            else:
                kept.append(arg)
                if takes_value and _takes_value(arg, items[index + 1], base):
                    kept.append(items[index + 1])
                    index += 1
        index += 1
    return ProbeArgs(kept, dropped, selection)


def _takes_value(option: str, following: str, base: Path) -> bool:
    if following.startswith("-"):
        return False
    if option in VALUE_OPTIONS:
        return True
    if option.startswith("--"):
        # An option this table does not know: a following path or node id is a selection.
        return not ("::" in following or (base / following).exists())
    return False


def xdist_off(args: Sequence[str] = ()) -> list[str]:
    """The arguments that run one process whatever `addopts` says (``-n auto`` included).

    ``-n 0`` rather than ``-p no:xdist``: xdist stays loaded, so `-n` in addopts parses and
    its `xdist_group` marker stays registered under ``--strict-markers``.
    """
    return [] if _blocks(args, "xdist") else commands.one_process()


def randomly_args(seed: int | None, args: Sequence[str] = ()) -> list[str]:
    """pytest-randomly off, or (``seed``) its seeding of that run without its reordering."""
    if seed is None or importlib.util.find_spec("pytest_randomly") is None:
        return ["-p", "no:randomly"]
    if _blocks(args, "randomly"):
        return []
    return ["-p", "randomly", f"--randomly-seed={seed}", "--randomly-dont-reorganize"]


def _blocks(args: Sequence[str], plugin: str) -> bool:
    pairs = zip(args, [*args[1:], ""][: len(args)], strict=True)
    return any(a == f"-pno:{plugin}" or (a == "-p" and b == f"no:{plugin}") for a, b in pairs)


def fixed_order_args(seed: int | None, options: Sequence[str]) -> list[str]:
    """The arguments every probe and printed command shares: one process, the given order.

    The cache plugin is off so that concurrent probes neither race on `.pytest_cache` nor
    leave the suite's "last failed" state pointing at the probes' results.
    """
    return [
        *randomly_args(seed, options),
        *xdist_off(options),
        "-p",
        "no:cacheprovider",
        *options,
    ]


def fixed_order_command(
    tests: Sequence[str], options: Sequence[str] = (), seed: int | None = None
) -> list[str]:
    """The command a person runs: ``tests`` in exactly this order, in one process."""
    return commands.pytest_command([*fixed_order_args(seed, options), *tests])


def probe_args(
    tests: Sequence[str], options: Sequence[str], order_file: Path, report: Path, seed: int | None
) -> list[str]:
    """pytest arguments of a probe: the order file, the timing report, the test files."""
    files = ordering.unique(nodeid.split("::", 1)[0] for nodeid in tests)
    return [
        *fixed_order_args(seed, options),
        # One token each: pytest takes a separate token that names an existing file for a
        # path argument when it picks the rootdir, which would change every node id.
        f"--testfleet-order-file={order_file}",
        f"--testfleet-report={report}",
        *files,
    ]


class SubprocessProbes:
    """Runs each probe as a new pytest process (the plain way; see ``warm`` for the fast one)."""

    def __init__(
        self,
        victim: str,
        options: Sequence[str],
        scratch: Path,
        *,
        seed: int | None = None,
        timeout: float | None = None,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.victim = victim
        self.options = list(options)
        self.scratch = scratch
        self.seed = seed
        self.timeout = timeout
        self.cwd = cwd
        #: The environment of the pytest process; None: this process's.
        self.env = env
        self._count = 0
        self._lock = threading.Lock()

    def _paths(self) -> tuple[Path, Path]:
        with self._lock:
            self._count += 1
            number = self._count
        return self.scratch / f"probe-{number}.txt", self.scratch / f"probe-{number}.json"

    def prepare(self, tests: Sequence[str]) -> tuple[list[str], Path, Path]:
        order, report = self._paths()
        ordering.write_order_file(order, tests)
        return probe_args(tests, self.options, order, report, self.seed), order, report

    def __call__(self, tests: tuple[str, ...]) -> str:
        """The victim's outcome after ``tests`` (the victim is their last node id)."""
        base = self.cwd or Path.cwd()
        # pytest stops at a file that does not exist before any order file is read.
        gone = [t for t in tests if not (base / t.split("::", 1)[0]).exists()]
        if gone:
            raise NotCollected(gone)
        args, order, report = self.prepare(tests)
        command = commands.pytest_command(args)
        try:
            done = subprocess.run(
                command,
                cwd=self.cwd,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return "timeout"
        return self.outcome(tests, done.returncode, done.stdout + done.stderr, order, report)

    def outcome(
        self, tests: Sequence[str], status: int, output: str, order: Path, report: Path
    ) -> str:
        """Read what a probe that ended with ``status`` says about the victim."""
        missing = ordering.read_missing(order)
        if missing is not None:
            raise NotCollected(missing)
        shown = shlex.join(fixed_order_command(tests, self.options, self.seed))
        if not report.is_file():
            raise ProbeError(
                f"pytest exited {status} without running the tests (collection or usage "
                f"error, or the testfleet plugin is disabled): {shown}\n{_tail(output)}"
            )
        data = json.loads(report.read_text(encoding="utf-8"))
        ran = [str(t["nodeid"]) for t in sorted(data["tests"], key=lambda t: float(t["start"]))]
        if ran != list(tests):
            raise ProbeError(
                f"pytest ran {len(ran)} tests instead of the {len(tests)} given, or not in the "
                f"given order: a plugin reorders or deselects them. Command: {shown}"
            )
        return next(str(t["outcome"]) for t in data["tests"] if t["nodeid"] == self.victim)


class WarmProbes(SubprocessProbes):
    """Runs each probe as a fork of a process that imported the suite once (see `warm`)."""

    def __init__(
        self,
        victim: str,
        options: Sequence[str],
        scratch: Path,
        order: Sequence[str],
        *,
        seed: int | None = None,
        timeout: float | None = None,
        cwd: Path | None = None,
    ) -> None:
        super().__init__(victim, options, scratch, seed=seed, timeout=timeout, cwd=cwd)
        base = cwd or Path.cwd()
        files = ordering.unique(nodeid.split("::", 1)[0] for nodeid in order)
        present = [f for f in files if (base / f).exists()]
        self.server = warm.Server([*fixed_order_args(seed, self.options), *present], cwd)
        #: CPU seconds and wall seconds of each probe, to choose how many run at once.
        self.costs: list[tuple[float, float]] = []

    def __call__(self, tests: tuple[str, ...]) -> str:
        base = self.cwd or Path.cwd()
        gone = [t for t in tests if not (base / t.split("::", 1)[0]).exists()]
        if gone:
            raise NotCollected(gone)
        args, order, report = self.prepare(tests)
        log = order.with_suffix(".log")
        started = time.perf_counter()
        status, cpu = self.server.run(args, log, self.timeout)
        self.costs.append((cpu, time.perf_counter() - started))
        if status is None:
            return "timeout"
        output = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        return self.outcome(tests, status, output, order, report)

    def close(self) -> None:
        self.server.close()

    def jobs_for_cost(self, current: int) -> int:
        return jobs_for_cost(self.costs, current)


def jobs_for_cost(costs: Sequence[tuple[float, float]], current: int) -> int:
    """How many probes to run at once, from (CPU seconds, wall seconds) of those so far.

    A probe that mostly waits (sleeps, I/O, a server) leaves its CPU to others, so more
    run at once; one that computes gains nothing beyond one per free CPU. The CPUs the
    other processes of the machine keep busy are not free, and on a machine that is
    already busy a probe's waiting is waiting for a CPU: no more than one per free CPU.
    """
    if not costs:
        return current
    free, saturated = cpu_room()
    cpu = sum(c for c, _ in costs)
    wall = sum(w for _, w in costs) or 1.0
    share = 1.0 if saturated else max(cpu / wall, 0.1)
    return max(1, min(MAX_JOBS, int(free / share)))


def cpu_room() -> tuple[float, bool]:
    """(CPUs left free by the rest of the machine, at least 1; whether it is saturated)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    total = float(cpus or 1)
    try:
        load = os.getloadavg()[0]
    except OSError:
        return total, False
    return max(1.0, total - max(0.0, load - 1.0)), load >= total


def free_cpus() -> float:
    """CPUs this process may use, less the load the rest of the machine puts on them."""
    return cpu_room()[0]


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
