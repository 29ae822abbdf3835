"""The bisection itself: a pure function of an oracle that runs tests in a given order.

The oracle answers one question: the outcome of the victim (the last node id) when the
tests run in exactly the order given. Everything else here is bookkeeping: which sets to
ask about, ``jobs`` at a time, so that a round can split the candidates in ``jobs + 1``
parts instead of two (about log(N) / log(jobs + 1) rounds), and the last check of the
commands that will be printed. The tests of this module give it a function as oracle
and run in milliseconds; `probes` gives it pytest processes.
"""

from __future__ import annotations

import concurrent.futures
import math
from collections.abc import Callable, Iterable, Sequence

from testfleet.diagnose.diagnosis import (
    AMBIGUOUS,
    DEPENDS,
    ERROR,
    FAILS_ALONE,
    FLAKY,
    MISSING,
    NOT_REPRODUCED,
    POLLUTED,
    Diagnosis,
)
from testfleet.diagnose.probes import FAILING, NotCollected, ProbeError
from testfleet.scheduling.ordering import unique

#: The victim's outcome after the given node ids (the victim is the last of them):
#: "passed", "failed", "error", "skipped" or "timeout".
Outcome = str
Oracle = Callable[[tuple[str, ...]], Outcome]
#: The command that a person runs to see the given node ids run in that order.
Show = Callable[[Sequence[str]], list[str]]
Echo = Callable[[str], None]

DEFAULT_MAX_TESTS = 4
DEFAULT_MAX_RUNS = 300


def _quiet(_: str) -> None:
    pass


def search(
    order: Sequence[str],
    victim: str,
    oracle: Oracle,
    *,
    show: Show,
    jobs: int = 2,
    max_tests: int = DEFAULT_MAX_TESTS,
    max_runs: int = DEFAULT_MAX_RUNS,
    adapt: Callable[[int], int] | None = None,
    echo: Echo = _quiet,
) -> tuple[Diagnosis, Probes]:
    """Why ``victim`` fails in ``order``: the diagnosis and the probes it took.

    Node ids the oracle says are not collected any more are left out and searched again
    without them (listed in ``Diagnosis.missing``).
    """
    order = unique(order)
    if victim not in order:
        raise ValueError(
            f"{victim} is not among the {len(order)} tests of the order given: "
            "give a node id exactly as the report or the order file spells it"
        )
    if jobs < 1:
        raise ValueError(f"jobs must be 1 or more, not {jobs}")
    probes = Probes(victim, oracle, jobs, max_runs, adapt)
    missing: list[str] = []
    while True:
        try:
            result = _diagnose(probes, order, victim, show, max_tests, echo)
            break
        except NotCollected as exc:
            gone = [nodeid for nodeid in exc.missing if nodeid in order]
            if not gone:
                result = Diagnosis(victim, ERROR, f"pytest did not find a test: {exc.missing}")
                break
            missing += gone
            echo(
                f"testfleet bisect: {_count(len(gone))} of the order are not collected any "
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
    result.rounds = probes.rounds
    result.runs = probes.runs
    if missing and result.verdict != MISSING:
        result.notes.append(
            f"{len(missing)} tests of the order are not collected any more and were left out"
        )
    return result, probes


def _unique_runs(runs: Iterable[tuple[str, ...]]) -> list[tuple[str, ...]]:
    return list(dict.fromkeys(runs))


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


class Probes:
    """Asks the oracle about sets of tests, ``jobs`` at a time, and remembers every answer."""

    def __init__(
        self,
        victim: str,
        oracle: Oracle,
        jobs: int,
        max_runs: int,
        adapt: Callable[[int], int] | None = None,
    ) -> None:
        self.victim = victim
        self.oracle = oracle
        self.jobs = jobs
        #: Given the jobs of the round just run, the jobs of the next one (measured cost).
        self.adapt = adapt
        self.max_runs = max_runs
        self.rounds = 0
        self.runs = 0
        #: Outcomes of the runs made so far, so that no search runs the same tests twice.
        self.known: dict[tuple[str, ...], str] = {}

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
            if self.jobs == 1 or len(todo) == 1:
                got = [self.oracle(run) for run in todo]
            else:
                with concurrent.futures.ThreadPoolExecutor(max_workers=self.jobs) as pool:
                    got = list(pool.map(self.oracle, todo))
            self.known.update(zip(todo, got, strict=True))
            if self.adapt is not None:
                self.jobs = self.adapt(self.jobs)
        return [self.known[tuple(run)] for run in runs]


class _Search:
    """Finds a smallest set of candidates after which the victim fails (or passes)."""

    def __init__(
        self,
        prober: Probes,
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


def _diagnose(
    prober: Probes,
    order: list[str],
    victim: str,
    show: Show,
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
        return _search(prober, order, victim, before, want_failure, show, max_tests, tried, echo)
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
        return _search(prober, order, victim, before, True, show, max_tests, tried, echo)
    if before and in_order not in FAILING:
        return _search(prober, order, victim, before, False, show, max_tests, tried, echo)
    others = [*before, *after]
    if after:
        echo(f"testfleet bisect: {victim} fails alone; running it after all {len(others)} others")
        (everything,) = prober.outcomes([[*others, victim]])
        tried.append(f"after all {len(others)} other tests: {everything}")
        if everything not in FAILING:
            return _search(prober, order, victim, others, False, show, max_tests, tried, echo)
    return Diagnosis(
        victim,
        FAILS_ALONE,
        f"{victim} fails alone"
        + (f" and after all {len(others)} other tests" if others else "")
        + ": it does not depend on the order; an ordinary failure",
        command=show([victim]),
        verified=True,
        tried=tried,
        candidates=len(others),
    )


def _search(
    prober: Probes,
    order: list[str],
    victim: str,
    candidates: list[str],
    want_failure: bool,
    show: Show,
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
    command = show(failing)
    control = show(passing)
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
