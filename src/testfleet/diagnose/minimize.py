"""Asking the oracle, and narrowing the candidates down to a smallest cause.

:class:`Probes` runs sets of tests through the oracle, ``jobs`` at a time, and remembers
every answer; :class:`Search` splits the candidates in ``jobs + 1`` parts a round until
a smallest set after which the victim fails (or passes) is left.
:mod:`testfleet.diagnose.search` decides what to search for and checks what they find.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterable, Sequence

from testfleet.diagnose.probes import FAILING, ProbeError

#: The victim's outcome after the given node ids (the victim is the last of them):
#: "passed", "failed", "error", "skipped" or "timeout".
Outcome = str
Oracle = Callable[[tuple[str, ...]], Outcome]
Echo = Callable[[str], None]


def _unique_runs(runs: Iterable[tuple[str, ...]]) -> list[tuple[str, ...]]:
    return list(dict.fromkeys(runs))


def split(items: Sequence[str], parts: int) -> list[list[str]]:
    """``items`` in ``parts`` consecutive chunks whose sizes differ by one at most."""
    size, extra = divmod(len(items), parts)
    chunks: list[list[str]] = []
    start = 0
    for index in range(parts):
        stop = start + size + (1 if index < extra else 0)
        chunks.append(list(items[start:stop]))
        start = stop
    return [chunk for chunk in chunks if chunk]


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


class Search:
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
                parts = split(current, jobs + 1)
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
