"""Order dependence: the earlier tests that make a test fail, or that it needs to pass.

Every probe is one pytest process that runs some candidate tests and then the test
under diagnosis (the victim), in that order, with random ordering and xdist off.
Several probes run at once, one per job, so a round can split the candidates in
``jobs + 1`` parts instead of two: about log(N) / log(jobs + 1) rounds in all.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_NAME = "testfleet.order"
SCHEMA_VERSION = 1
SCHEMA = f"{SCHEMA_NAME}/{SCHEMA_VERSION}"

#: Arguments of every probe and of every printed command: the given order, one process.
#: The cache plugin is off so that concurrent probes neither race on `.pytest_cache`
#: nor leave the suite's "last failed" state pointing at the probes' results.
FIXED_ORDER = ("-p", "no:randomly", "-p", "no:xdist", "-p", "no:cacheprovider")
#: Outcomes of the victim that count as failing; a probe that timed out counts too.
FAILING = frozenset({"failed", "error", "timeout"})

POLLUTED = "polluted-by"
DEPENDS = "depends-on"
FAILS_ALONE = "fails-alone"
NOT_REPRODUCED = "not-reproduced"
AMBIGUOUS = "ambiguous"
FLAKY = "flaky"
MISSING = "missing"
ERROR = "error"
#: Every verdict, in the order reports list them.
VERDICTS = (POLLUTED, DEPENDS, FAILS_ALONE, AMBIGUOUS, FLAKY, NOT_REPRODUCED, MISSING, ERROR)
#: Verdicts that say something is wrong with the suite (exit status 1 of `testfleet bisect`).
FINDINGS = frozenset({POLLUTED, DEPENDS, FAILS_ALONE, AMBIGUOUS, FLAKY})

DEFAULT_MAX_TESTS = 4
DEFAULT_MAX_VICTIMS = 5
DEFAULT_MAX_RUNS = 300
#: Above this many characters of node ids, a probe reads them from a file (`pytest @file`),
#: well below the kernel's limit on one command line.
ARGS_FILE_ABOVE = 100_000

# Options that would stop a probe before the victim runs, or that need the cache plugin
# the probes switch off; each maps to whether it takes a separate value.
_DROPPED_OPTIONS = {
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

Echo = Callable[[str], None]


class ProbeError(Exception):
    """A probe could not run the victim; the message says why and how it was run."""


class _NotFound(Exception):
    """pytest refused node ids that it did not collect: the suite changed since the order."""


def default_jobs() -> int:
    """Probes at once: one per CPU, at most 4 (a 5-way split already saves most rounds)."""
    return max(1, min(4, os.cpu_count() or 1))


def exit_status(results: Iterable[Diagnosis]) -> int:
    """2 when a test could not be diagnosed, else 1 on any finding, else 0."""
    verdicts = {result.verdict for result in results}
    if verdicts & {MISSING, ERROR}:
        return 2
    return 1 if verdicts & FINDINGS else 0


def fixed_order_command(tests: Sequence[str], pytest_args: Sequence[str] = ()) -> list[str]:
    """The command that runs ``tests`` in exactly this order, in one process."""
    return [sys.executable, "-m", "pytest", *FIXED_ORDER, *pytest_args, *tests]


def split_pytest_args(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """The user's pytest arguments a probe keeps, and those it drops (see ``_DROPPED_OPTIONS``)."""
    kept: list[str] = []
    dropped: list[str] = []
    items = iter(args)
    for arg in items:
        name = arg.split("=", 1)[0]
        if name in _DROPPED_OPTIONS:
            dropped.append(arg)
            if _DROPPED_OPTIONS[name] and "=" not in arg:
                dropped.append(next(items, ""))
        else:
            kept.append(arg)
    return kept, [arg for arg in dropped if arg]


def order_from_report(data: Mapping[str, Any]) -> list[str]:
    """The node ids of a timing report in the order they started (each once)."""
    tests = sorted(data["tests"], key=lambda t: (float(t["start"]), str(t["nodeid"])))
    return _unique(str(test["nodeid"]) for test in tests)


def failed_in_report(data: Mapping[str, Any]) -> list[str]:
    """The tests that failed or errored in a timing report, in the order they ran."""
    failed = {str(t["nodeid"]) for t in data["tests"] if t["outcome"] in ("failed", "error")}
    return [nodeid for nodeid in order_from_report(data) if nodeid in failed]


def read_order_file(path: Path) -> list[str]:
    """Node ids, one per line; blank lines and lines starting with # are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file (expected one node id per line)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot be read ({exc})") from None
    lines = (line.strip() for line in text.splitlines())
    return _unique(line for line in lines if line and not line.startswith("#"))


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _unique_runs(runs: Iterable[tuple[str, ...]]) -> list[tuple[str, ...]]:
    return list(dict.fromkeys(runs))


@dataclass
class Diagnosis:
    """What was found about one test, and the commands that show it."""

    victim: str
    verdict: str
    message: str
    #: The polluters (``polluted-by``) or the tests it needs (``depends-on``), in run order.
    tests: list[str] = field(default_factory=list)
    #: Fails: the victim with just ``tests`` (after them, or before them for ``depends-on``).
    command: list[str] | None = None
    #: Passes: the same without the cause (``polluted-by``) or with it first (``depends-on``).
    control: list[str] | None = None
    verified: bool = False
    #: Removing any one of ``tests`` made the failure go away (only checked for 2 or more).
    minimal: bool | None = None
    tried: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Node ids of the order that pytest no longer collects.
    missing: list[str] = field(default_factory=list)
    dropped_args: list[str] = field(default_factory=list)
    candidates: int = 0
    rounds: int = 0
    runs: int = 0
    seconds: float = 0.0
    seed: int | None = None
    report: str | None = None

    @property
    def found(self) -> bool:
        return self.verdict in (POLLUTED, DEPENDS)

    def to_json(self) -> dict[str, Any]:
        return {
            "victim": self.victim,
            "verdict": self.verdict,
            "tests": self.tests,
            "command": shlex.join(self.command) if self.command else None,
            "argv": self.command,
            "control": shlex.join(self.control) if self.control else None,
            "control_argv": self.control,
            "verified": self.verified,
            "minimal": self.minimal,
            "message": self.message,
            "tried": self.tried,
            "notes": self.notes,
            "missing": self.missing,
            "dropped_args": self.dropped_args,
            "candidates": self.candidates,
            "rounds": self.rounds,
            "runs": self.runs,
            "seconds": round(self.seconds, 3),
            "seed": self.seed,
            "report": self.report,
        }

    def render(self) -> str:
        """A few lines for the terminal: the verdict and the command that shows it."""
        lines = [f"testfleet bisect: {self.verdict}: {self.message}"]
        if self.command is not None:
            lines.append(f"  reproduce with: {shlex.join(self.command)}")
        if self.control is not None:
            lines.append(f"  passes with:    {shlex.join(self.control)}")
        lines += [f"  note: {note}" for note in self.notes]
        lines.append(
            f"  ({self.candidates} candidates, {self.rounds} rounds, {self.runs} pytest runs, "
            f"{self.seconds:.1f}s)"
        )
        return "\n".join(lines) + "\n"


def document(results: Sequence[Diagnosis], **extra: Any) -> dict[str, Any]:
    """The ``testfleet.order/1`` JSON document of some diagnoses."""
    counts = dict.fromkeys(VERDICTS, 0)
    for result in results:
        counts[result.verdict] += 1
    return {
        "schema": SCHEMA,
        **extra,
        "results": [result.to_json() for result in results],
        "summary": {"diagnosed": len(results), "verdicts": counts},
    }


def render_markdown(data: Mapping[str, Any]) -> str:
    """The "Order dependence" section of a summary, from a ``testfleet.order/1`` document."""
    out = ["## Order dependence", ""]
    seeds = data.get("seeds")
    if seeds is not None:
        failed = [s for s in seeds if s["exit_status"] not in (0, 5)]
        listed = ", ".join(f"{s['seed']} (exit {s['exit_status']})" for s in seeds)
        out.append(f"Seeds run: {listed}; {len(failed)} failed.")
        out.append("")
    results = data["results"]
    if not results:
        out.append("No failing test to diagnose.")
        return "\n".join(out) + "\n"
    out += ["| test | verdict | cause | seed |", "|---|---|---|---|"]
    for result in results:
        cause = "<br>".join(f"`{_md(t)}`" for t in result["tests"]) or "-"
        seed = result["seed"] if result["seed"] is not None else "-"
        out.append(f"| `{_md(result['victim'])}` | {result['verdict']} | {cause} | {seed} |")
    for result in results:
        out += ["", f"**`{_md(result['victim'])}`**: {result['message']}"]
        if result["command"]:
            out += ["", "```sh", result["command"], "```"]
        out += [f"- {note}" for note in result["notes"]]
    skipped = data.get("not_diagnosed") or []
    if skipped:
        out += ["", f"Not diagnosed (limit reached): {len(skipped)} failing tests."]
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")


def _split(items: Sequence[str], parts: int) -> list[list[str]]:
    """``items`` in ``parts`` consecutive chunks whose sizes differ by one at most."""
    size, extra = divmod(len(items), parts)
    chunks: list[list[str]] = []
    start = 0
    for index in range(parts):
        stop = start + size + (1 if index < extra else 0)
        chunks.append(list(items[start:stop]))
        start = stop
    return [chunk for chunk in chunks if chunk]


def _count(number: int) -> str:
    return f"{number} test" if number == 1 else f"{number} tests"


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class _Prober:
    """Runs the victim after sets of tests, several pytest processes at a time."""

    def __init__(
        self,
        victim: str,
        pytest_args: Sequence[str],
        scratch: Path,
        jobs: int,
        timeout: float | None,
        max_runs: int,
        cwd: Path | None,
    ) -> None:
        self.victim = victim
        self.pytest_args = list(pytest_args)
        self.scratch = scratch
        self.jobs = jobs
        self.timeout = timeout
        self.max_runs = max_runs
        self.cwd = cwd
        self.rounds = 0
        self.runs = 0
        #: Outcomes of the runs made so far, so that no search runs the same tests twice.
        self.known: dict[tuple[str, ...], str] = {}
        self._files = 0
        self._lock = threading.Lock()

    def pending(self, runs: Iterable[Sequence[str]]) -> list[tuple[str, ...]]:
        """The runs among ``runs`` whose outcome is not known yet, each once."""
        return _unique_runs(tuple(run) for run in runs if tuple(run) not in self.known)

    def outcomes(self, runs: Sequence[Sequence[str]], fresh: bool = False) -> list[str]:
        """The victim's outcome in each run (node ids in order): one round, ``jobs`` at a time.

        Known outcomes are reused unless ``fresh``: the last check reruns its commands.
        """
        todo = _unique_runs(tuple(run) for run in runs) if fresh else self.pending(runs)
        if todo:
            if self.runs + len(todo) > self.max_runs:
                raise ProbeError(
                    f"gave up after {self.runs} pytest runs (the limit is {self.max_runs})"
                )
            self.rounds += 1
            self.runs += len(todo)
            with concurrent.futures.ThreadPoolExecutor(max_workers=self.jobs) as pool:
                self.known.update(zip(todo, pool.map(self._probe, todo), strict=True))
        return [self.known[tuple(run)] for run in runs]

    def _next_path(self, suffix: str) -> Path:
        with self._lock:
            self._files += 1
            return self.scratch / f"probe-{self._files}{suffix}"

    def _probe(self, ids: Sequence[str]) -> str:
        report = self._next_path(".json")
        selection = list(ids)
        if sum(len(i) + 1 for i in ids) > ARGS_FILE_ABOVE:
            # pytest reads arguments from a file named after @ (pytest 8.2 and later).
            args_file = self._next_path(".args")
            args_file.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
            selection = [f"@{args_file}"]
        command = fixed_order_command(
            selection, [*self.pytest_args, "--testfleet-report", str(report)]
        )
        try:
            result = subprocess.run(
                command,
                cwd=self.cwd,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return "timeout"
        output = result.stdout + result.stderr
        if result.returncode == 4 and "not found" in output:
            raise _NotFound(_tail(output))
        shown = shlex.join(fixed_order_command(ids, self.pytest_args))
        if not report.is_file():
            raise ProbeError(
                f"pytest exited {result.returncode} without running the tests (collection or "
                f"usage error, or the testfleet plugin is disabled): {shown}\n{_tail(output)}"
            )
        data = json.loads(report.read_text(encoding="utf-8"))
        ran = order_from_report(data)
        if ran != list(ids):
            raise ProbeError(
                f"pytest ran {len(ran)} tests instead of the {len(ids)} given, or not in the "
                "given order: the pytest arguments select tests of their own (a path, -k, -m) or "
                f"a plugin reorders them; pass options only. Command: {shown}"
            )
        return next(str(t["outcome"]) for t in data["tests"] if t["nodeid"] == self.victim)

    def uncollected(self, ids: Sequence[str]) -> list[str]:
        """The node ids among ``ids`` that pytest does not collect now."""
        files = _unique(i.split("::", 1)[0] for i in ids)
        base = self.cwd or Path.cwd()
        present = [f for f in files if (base / f).exists()]
        collected: set[str] = set()
        if present:
            # --verbosity after the user's arguments: one node id per line, whatever they asked.
            command = fixed_order_command(
                present,
                [
                    *self.pytest_args,
                    "--collect-only",
                    "--continue-on-collection-errors",
                    "--verbosity=-1",
                ],
            )
            result = subprocess.run(
                command, cwd=self.cwd, capture_output=True, text=True, check=False
            )
            collected = {line.strip() for line in result.stdout.splitlines()}
        return [i for i in ids if i not in collected]


class _Search:
    """Finds a smallest set of candidates after which the victim fails (or passes)."""

    def __init__(
        self,
        prober: _Prober,
        order: Sequence[str],
        want_failure: bool,
        max_tests: int,
        echo: Echo,
    ) -> None:
        self.prober = prober
        self.position = {nodeid: index for index, nodeid in enumerate(order)}
        self.want_failure = want_failure
        self.max_tests = max_tests
        self.echo = echo
        self.notes: list[str] = []

    def hits(self, sets: Sequence[Sequence[str]], left: int) -> list[bool]:
        """Whether the victim fails (or passes, when looking for what it needs) after each set."""
        victim = self.prober.victim
        runs = [[*self._ordered(s), victim] for s in sets]
        todo = self.prober.pending(runs)
        if todo:
            sizes = sorted({len(run) for run in todo})
            self.echo(
                f"testfleet bisect: round {self.prober.rounds + 1}: {left} candidates left; "
                f"{len(todo)} pytest run{'s' if len(todo) > 1 else ''} of "
                f"{'/'.join(map(str, sizes))} tests"
            )
        outcomes = self.prober.outcomes(runs)
        return [(outcome in FAILING) == self.want_failure for outcome in outcomes]

    def known_hit(self, tests: Sequence[str]) -> bool | None:
        """Whether the victim hits after ``tests``, if a run already told; else None."""
        outcome = self.prober.known.get((*self._ordered(tests), self.prober.victim))
        return None if outcome is None else (outcome in FAILING) == self.want_failure

    def minimize(self, candidates: Sequence[str]) -> list[str] | None:
        """A smallest set found (in run order), or None past ``max_tests`` tests."""
        fixed: list[str] = []
        pool = list(candidates)
        while True:
            # Invariant: the victim hits after ``fixed`` + ``pool``, and not after ``fixed`` alone.
            found, fixed_suffices, confirmed = self._single(pool, fixed)
            if fixed_suffices:
                return self._ordered(fixed)
            if found is not None:
                return self._ordered([*fixed, found])
            if len(fixed) + 1 >= self.max_tests:
                return None
            needed, pool = self._last_needed(confirmed, fixed)
            fixed = [*fixed, needed]
            if not pool:
                return self._ordered(fixed)

    def _ordered(self, tests: Iterable[str]) -> list[str]:
        return sorted(tests, key=self.position.__getitem__)

    def _single(self, pool: list[str], fixed: list[str]) -> tuple[str | None, bool, list[str]]:
        """One test of ``pool`` that hits with ``fixed``, by splitting in ``jobs + 1`` parts.

        Returns (that test or None, whether ``fixed`` hits by itself, the smallest part
        known to hit with ``fixed``). A round probes ``jobs`` of the parts at once; when
        none of them hits, the remaining part is assumed to, and is confirmed by a later
        round: this saves a round each time the guess is right, which is always the
        case with one polluter.
        """
        jobs = self.prober.jobs
        current, confirmed = pool, pool
        is_confirmed = True
        check_fixed = bool(fixed)
        while True:
            if len(current) == 1 and is_confirmed:
                return current[0], False, confirmed
            if len(current) <= jobs + 1:
                parts = [[nodeid] for nodeid in current]
                probed = parts
            else:
                parts = _split(current, jobs + 1)
                probed = parts[:jobs]
            sets = [[*fixed, *part] for part in probed]
            if check_fixed:
                sets.insert(0, list(fixed))
            results = self.hits(sets, len(current))
            if check_fixed:
                if results.pop(0):
                    return None, True, confirmed
                check_fixed = False
            hit = [part for part, result in zip(probed, results, strict=True) if result]
            if len(hit) > 1:
                self.notes.append(
                    f"{len(hit)} separate groups of candidates each did it on their own: "
                    "there is more than one cause; this is the first"
                )
            if hit:
                current, confirmed, is_confirmed = hit[0], hit[0], True
            elif len(probed) < len(parts) and self.known_hit([*fixed, *parts[-1]]) is not False:
                current, is_confirmed = parts[-1], False
            else:
                return None, False, confirmed

    def _last_needed(self, tests: list[str], fixed: list[str]) -> tuple[str, list[str]]:
        """The last test of ``tests`` without which, with ``fixed``, there is no hit.

        Searches the shortest prefix of ``tests`` that hits with ``fixed``: its last
        test is needed, and what comes before it holds the rest of the cause.
        """
        jobs = self.prober.jobs
        low, high = 0, len(tests)
        while high - low > 1:
            # Prefixes already run cost nothing: cut finer until every job has a new one.
            for cuts in range(jobs, max(jobs, high - low - 1) + 1):
                points = sorted(
                    {low + (high - low) * step // (cuts + 1) for step in range(1, cuts + 1)}
                    - {low, high}
                )
                new = self.prober.pending(
                    [*self._ordered([*fixed, *tests[:point]]), self.prober.victim]
                    for point in points
                )
                if len(new) >= jobs:
                    break
            results = self.hits([[*fixed, *tests[:point]] for point in points], high - low)
            for point, result in zip(points, results, strict=True):
                if result:
                    high = point
                    break
                low = point
        return tests[high - 1], tests[: high - 1]


def diagnose(
    order: Sequence[str],
    victim: str,
    pytest_args: Sequence[str] = (),
    *,
    jobs: int = 2,
    max_tests: int = DEFAULT_MAX_TESTS,
    max_runs: int = DEFAULT_MAX_RUNS,
    timeout: float | None = None,
    cwd: Path | None = None,
    echo: Echo = print,
) -> Diagnosis:
    """Find why ``victim`` fails in ``order`` (node ids in the order they ran)."""
    order = _unique(order)
    if victim not in order:
        raise ValueError(
            f"{victim} is not among the {len(order)} tests of the order given: "
            "give a node id exactly as the report or the order file spells it"
        )
    if jobs < 1:
        raise ValueError(f"jobs must be 1 or more, not {jobs}")
    kept, dropped = split_pytest_args(pytest_args)
    started = time.perf_counter()
    missing: list[str] = []
    with tempfile.TemporaryDirectory(prefix="testfleet-bisect-") as scratch:
        prober = _Prober(victim, kept, Path(scratch), jobs, timeout, max_runs, cwd)
        while True:
            try:
                result = _diagnose(prober, order, victim, kept, max_tests, echo)
                break
            except _NotFound as exc:
                gone = prober.uncollected(order)
                if not gone:
                    result = Diagnosis(victim, ERROR, f"pytest did not find a test: {exc}")
                    break
                missing += gone
                echo(
                    f"testfleet bisect: {len(gone)} tests of the order are not collected any "
                    f"more (the suite changed): {', '.join(gone[:3])}"
                    + (", ..." if len(gone) > 3 else "")
                )
                if victim in gone:
                    result = Diagnosis(
                        victim,
                        MISSING,
                        f"{victim} is not collected any more: the suite changed since that "
                        "order was recorded (or the node ids are relative to another "
                        "directory than this one); run it again and diagnose the new failure",
                    )
                    break
                order = [nodeid for nodeid in order if nodeid not in gone]
            except ProbeError as exc:
                result = Diagnosis(victim, ERROR, str(exc))
                break
    result.missing = missing
    result.dropped_args = dropped
    result.rounds = prober.rounds
    result.runs = prober.runs
    result.seconds = time.perf_counter() - started
    if missing and result.verdict != MISSING:
        result.notes.append(
            f"{len(missing)} tests of the order are not collected any more and were left out"
        )
    if dropped:
        result.notes.append(f"left out of every run: {shlex.join(dropped)}")
    return result


def _diagnose(
    prober: _Prober,
    order: list[str],
    victim: str,
    pytest_args: list[str],
    max_tests: int,
    echo: Echo,
) -> Diagnosis:
    index = order.index(victim)
    before, after = order[:index], order[index + 1 :]
    echo(
        f"testfleet bisect: {victim}: {_count(len(before))} ran before it; round 1: "
        "it alone, and after the first parts of them"
    )
    # Round 1 runs the victim alone and, on the other jobs, the first parts of the tests
    # before it: the parts the bisection probes first whichever way the victim turns out
    # to go alone, so a failure that reproduces costs no round of its own.
    jobs = prober.jobs
    parts = _split(before, jobs + 1) if len(before) > jobs + 1 else [before]
    first = prober.outcomes([[victim], *([*part, victim] for part in parts[:jobs] if part)])
    alone = first[0]
    want_failure = alone not in FAILING
    tried = [f"alone: {alone}"]
    if any((outcome in FAILING) == want_failure for outcome in first[1:]):
        return _search(
            prober, order, victim, before, want_failure, pytest_args, max_tests, tried, echo
        )
    # The last part runs beside the whole: when neither hits alone, the cause needs tests
    # of several parts, and the bisection knows it without a round of its own.
    in_order = prober.outcomes(
        [[*before, victim], *([[*parts[-1], victim]] if parts[jobs:] else [])]
    )[0]
    if before:
        tried.append(f"after the {_count(len(before))} that ran before it: {in_order}")
    if alone not in FAILING:
        if in_order not in FAILING:
            return Diagnosis(
                victim,
                NOT_REPRODUCED,
                f"{victim} passed alone"
                + (f" and after the {_count(len(before))} that ran before it" if before else "")
                + ", in the same order: no polluter found. The failure may come from "
                "pytest-randomly's random seeding, timing, or state outside the process "
                "(files, databases)",
                tried=tried,
                candidates=len(before),
            )
        return _search(prober, order, victim, before, True, pytest_args, max_tests, tried, echo)
    if before and in_order not in FAILING:
        return _search(prober, order, victim, before, False, pytest_args, max_tests, tried, echo)
    others = [*before, *after]
    if after:
        echo(f"testfleet bisect: {victim} fails alone; running it after all {len(others)} others")
        (everything,) = prober.outcomes([[*others, victim]])
        tried.append(f"after all {len(others)} other tests: {everything}")
        if everything not in FAILING:
            return _search(
                prober, order, victim, others, False, pytest_args, max_tests, tried, echo
            )
    return Diagnosis(
        victim,
        FAILS_ALONE,
        f"{victim} fails alone"
        + (f" and after all {len(others)} other tests" if others else "")
        + ": it does not depend on the order; an ordinary failure",
        command=fixed_order_command([victim], pytest_args),
        verified=True,
        tried=tried,
        candidates=len(others),
    )


def _search(
    prober: _Prober,
    order: list[str],
    victim: str,
    candidates: list[str],
    want_failure: bool,
    pytest_args: list[str],
    max_tests: int,
    tried: list[str],
    echo: Echo,
) -> Diagnosis:
    """Bisect ``candidates`` for the cause, then check the result and its commands."""
    rounds = math.ceil(math.log(max(len(candidates), 2)) / math.log(prober.jobs + 1))
    echo(
        f"testfleet bisect: {victim}: {'fails' if want_failure else 'passes'} after the "
        f"{len(candidates)} candidates; bisecting them ({prober.jobs} at a time, about "
        f"{rounds} rounds for one cause)"
    )
    search = _Search(prober, order, want_failure, max_tests, echo)
    found = search.minimize(candidates)
    verdict = POLLUTED if want_failure else DEPENDS
    if found is None:
        return Diagnosis(
            victim,
            AMBIGUOUS,
            f"{victim} {'fails' if want_failure else 'passes'} after the {len(candidates)} "
            f"candidates, but no set of at most {max_tests} of them does it: the cause is "
            "spread over more tests, or the test is flaky",
            tried=tried,
            notes=search.notes,
            candidates=len(candidates),
        )
    minimal: bool | None = None
    while True:
        # One last round runs the commands that will be printed, and checks that every
        # test of the cause is needed: without any one of them, the victim must not hit.
        failing = [*found, victim] if want_failure else [victim, *found]
        passing = [victim] if want_failure else [*found, victim]
        without = [[t for t in found if t != left_out] for left_out in found]
        extra = [[*rest, victim] for rest in without] if len(found) > 1 else []
        echo(f"testfleet bisect: checking {' and '.join(found)}")
        outcomes = prober.outcomes([failing, passing, *extra], fresh=True)
        fails, passes = outcomes[0] in FAILING, outcomes[1] not in FAILING
        still = [
            rest
            for rest, outcome in zip(without, outcomes[2:], strict=False)
            if (outcome in FAILING) == want_failure
        ]
        if len(found) > 1:
            minimal = not still
        if still and fails and passes:
            found = still[0]
            continue
        break
    command = fixed_order_command(failing, pytest_args)
    control = fixed_order_command(passing, pytest_args)
    cause = " and ".join(found)
    runs = "runs" if len(found) == 1 else "run"
    if want_failure:
        message = f"{victim} passes alone but fails when {cause} {runs} before it"
    else:
        leaves = "that test leaves" if len(found) == 1 else "those tests leave"
        message = (
            f"{victim} fails alone but passes when {cause} {runs} before it: "
            f"it depends on state {leaves} behind"
        )
    tried.append(f"bisected {len(candidates)} candidates in {prober.rounds} rounds")
    if not (fails and passes):
        return Diagnosis(
            victim,
            FLAKY,
            f"the bisection pointed at {cause}, but running the commands again gave other "
            f"results (with it: {outcomes[0]}, without: {outcomes[1]}): {victim} is flaky, "
            "or depends on more than the order",
            tests=found,
            command=command,
            control=control,
            tried=tried,
            notes=search.notes,
            candidates=len(candidates),
        )
    return Diagnosis(
        victim,
        verdict,
        message,
        tests=found,
        command=command,
        control=control,
        verified=True,
        minimal=minimal,
        tried=tried,
        notes=search.notes,
        candidates=len(candidates),
    )
