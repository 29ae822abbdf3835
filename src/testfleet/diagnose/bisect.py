"""Order dependence: the earlier tests that make a test fail, or that it needs to pass.

`search` holds the bisection (a pure function of an oracle), `probes` and `warm` the
pytest processes that answer it, `diagnosis` the verdicts and their rendering. This
module joins them for `testfleet bisect` and `testfleet randomized`, and reads the order
a test ran in from a timing report.
"""

from __future__ import annotations

import shlex
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from testfleet.diagnose import probes as probes_mod
from testfleet.diagnose import propose as propose_mod
from testfleet.diagnose import warm as warm_mod
from testfleet.diagnose.diagnosis import (
    AMBIGUOUS,
    DEPENDS,
    ERROR,
    FAILS_ALONE,
    FINDINGS,
    FLAKY,
    MISSING,
    NOT_REPRODUCED,
    POLLUTED,
    SCHEMA,
    VERDICTS,
    Diagnosis,
    document,
    exit_status,
    render_markdown,
)
from testfleet.diagnose.probes import FAILING, ProbeError, fixed_order_command
from testfleet.diagnose.proposal import Proposal
from testfleet.diagnose.search import DEFAULT_MAX_RUNS, DEFAULT_MAX_TESTS, search
from testfleet.scheduling.ordering import read_order_file, unique

__all__ = [
    "AMBIGUOUS",
    "DEFAULT_MAX_RUNS",
    "DEFAULT_MAX_TESTS",
    "DEFAULT_MAX_VICTIMS",
    "DEPENDS",
    "ERROR",
    "FAILING",
    "FAILS_ALONE",
    "FINDINGS",
    "FLAKY",
    "MISSING",
    "NOT_REPRODUCED",
    "POLLUTED",
    "SCHEMA",
    "VERDICTS",
    "Diagnosis",
    "ProbeError",
    "WorkerOrder",
    "default_jobs",
    "diagnose",
    "document",
    "exit_status",
    "failed_in_report",
    "fixed_order_command",
    "order_from_report",
    "read_order_file",
    "render_markdown",
    "split_pytest_args",
    "worker_order",
]

DEFAULT_MAX_VICTIMS = 5

Echo = Callable[[str], None]


def default_jobs() -> int:
    """Probes at once to start with: one per free CPU, at most 4."""
    return max(1, min(probes_mod.MAX_JOBS, int(probes_mod.free_cpus())))


def split_pytest_args(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """The user's pytest arguments a probe keeps, and those it leaves out (and lists)."""
    sorted_args = probes_mod.split_args(args)
    return sorted_args.kept, [*sorted_args.dropped, *sorted_args.selection]


def _started(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    first = [t for t in data["tests"] if t.get("attempt", 1) == 1]
    return sorted(first, key=lambda t: (float(t["start"]), str(t["nodeid"])))


def order_from_report(data: Mapping[str, Any]) -> list[str]:
    """The node ids of a timing report in the order they started (each once)."""
    return unique(str(test["nodeid"]) for test in _started(data))


class WorkerOrder:
    """The order ``victim`` ran in: its worker's tests, when the run had several workers."""

    def __init__(self, data: Mapping[str, Any], victim: str) -> None:
        tests = _started(data)
        workers = {str(t.get("worker", "")) for t in tests}
        mine = [str(t.get("worker", "")) for t in tests if t["nodeid"] == victim]
        self.worker = mine[0] if mine else None
        self.total = len(unique(str(t["nodeid"]) for t in tests))
        if len(workers) > 1 and self.worker is not None:
            own = [t for t in tests if str(t.get("worker", "")) == self.worker]
            self.order = unique(str(t["nodeid"]) for t in own)
        else:
            self.order = unique(str(t["nodeid"]) for t in tests)

    @property
    def note(self) -> str | None:
        """What was bisected, when it is not the whole report: said in every result."""
        if self.worker is None or len(self.order) == self.total:
            return None
        return (
            f"the order of worker {self.worker} ({len(self.order)} of the report's "
            f"{self.total} tests): in a parallel run, only its tests ran in its process"
        )


def worker_order(data: Mapping[str, Any], victim: str) -> WorkerOrder:
    return WorkerOrder(data, victim)


def _oracle(
    victim: str,
    kept: list[str],
    scratch: Path,
    order: Sequence[str],
    seed: int | None,
    timeout: float | None,
    cwd: Path | None,
    warm: bool,
    notes: list[str],
) -> probes_mod.SubprocessProbes:
    """Warm probes (forks of a process that imported the suite) where they work."""
    if warm and warm_mod.available():
        try:
            return probes_mod.WarmProbes(
                victim, kept, scratch, order, seed=seed, timeout=timeout, cwd=cwd
            )
        except warm_mod.WarmError as exc:
            notes.append(
                "each probe ran in a new process: the suite could not be imported once for "
                f"all of them ({str(exc).splitlines()[0] if str(exc) else 'no reason given'})"
            )
    return probes_mod.SubprocessProbes(victim, kept, scratch, seed=seed, timeout=timeout, cwd=cwd)


def _propose(
    result: Diagnosis,
    order: Sequence[str],
    oracle: probes_mod.SubprocessProbes,
    settings: propose_mod.Settings,
    cwd: Path | None,
    echo: Echo,
) -> Proposal:
    """A cleaner and the verified fixes of the polluter found (in the tests still collected)."""
    collected = [t for t in order if t not in result.missing]
    return propose_mod.propose(
        collected, result.tests, result.victim, oracle, settings, root=cwd or Path.cwd(), echo=echo
    )


def failed_in_report(data: Mapping[str, Any]) -> list[str]:
    """The tests that failed or errored in a timing report, in the order they ran."""
    failed = {str(t["nodeid"]) for t in data["tests"] if t["outcome"] in ("failed", "error")}
    return [nodeid for nodeid in order_from_report(data) if nodeid in failed]


def diagnose(
    order: Sequence[str],
    victim: str,
    pytest_args: Sequence[str] = (),
    *,
    jobs: int | None = None,
    max_tests: int = DEFAULT_MAX_TESTS,
    max_runs: int = DEFAULT_MAX_RUNS,
    timeout: float | None = None,
    cwd: Path | None = None,
    seed: int | None = None,
    warm: bool = True,
    propose: bool = False,
    echo: Echo = print,
) -> Diagnosis:
    """Find why ``victim`` fails in ``order`` (node ids in the order they ran).

    With ``seed``, every probe keeps pytest-randomly's seeding of that randomized run
    (but not its order), and the printed commands say so. Without ``jobs``, the number of
    probes at once follows from what the probes cost (warm probes only; else the CPUs).
    With ``propose``, a polluter found gets a cleaner and verified fixes (`propose`).
    """
    sorted_args = probes_mod.split_args(pytest_args, cwd)
    kept = sorted_args.kept
    started = time.perf_counter()

    def show(tests: Sequence[str]) -> list[str]:
        return fixed_order_command(tests, kept, seed)

    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="testfleet-bisect-") as scratch:
        oracle = _oracle(victim, kept, Path(scratch), order, seed, timeout, cwd, warm, notes)
        adapt = None
        if jobs is None and isinstance(oracle, probes_mod.WarmProbes):
            adapt = oracle.jobs_for_cost
        try:
            result, _ = search(
                order, victim, oracle, show=show, jobs=jobs or default_jobs(),
                max_tests=max_tests, max_runs=max_runs, adapt=adapt, echo=echo,
            )  # fmt: skip
            if propose and result.verdict == POLLUTED:
                settings = propose_mod.Settings(
                    kept, seed, timeout, jobs or default_jobs(), max_tests, max_runs
                )
                result.proposal = _propose(result, order, oracle, settings, cwd, echo)
        finally:
            if isinstance(oracle, probes_mod.WarmProbes):
                oracle.close()
    result.notes += notes
    result.dropped_args = [*sorted_args.dropped, *sorted_args.selection]
    result.seconds = time.perf_counter() - started
    result.seed = seed
    if sorted_args.dropped:
        result.notes.append(f"left out of every run: {shlex.join(sorted_args.dropped)}")
    if sorted_args.selection:
        result.notes.append(
            "arguments that select tests, left out of every run (the probes give their own "
            f"node ids): {shlex.join(sorted_args.selection)}"
        )
    return result
