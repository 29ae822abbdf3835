"""A cleaner: a test of the suite that, run between a polluter and its victim, makes it pass.

Where the suite has one, it shows what resets the polluter's state (its teardown, or the
test itself), and it is a ready fix: run it after the polluter. The search is the
bisection's own (`minimize.Search`), over the other tests of the order, each run after
the polluters: the oracle puts them first. One run of every candidate at once tells
whether any set of them cleans; then each round splits the candidates in ``jobs + 1``
parts, so one cleaner among N costs about log(N) / log(jobs + 1) rounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from testfleet.diagnose.minimize import Echo, Oracle, Probes, Search
from testfleet.diagnose.probes import FAILING, ProbeError


@dataclass
class Found:
    """The cleaner (None when there is none) and what the search cost."""

    tests: list[str] | None
    runs: int
    rounds: int
    note: str | None = None


def find_cleaner(
    order: Sequence[str],
    polluters: Sequence[str],
    victim: str,
    oracle: Oracle,
    *,
    jobs: int,
    max_tests: int,
    max_runs: int,
    echo: Echo,
) -> Found:
    """The smallest set of other tests of ``order`` after which the polluted victim passes."""
    candidates = [t for t in order if t not in polluters and t != victim]
    if not candidates:
        return Found(None, 0, 0)

    def between(tests: tuple[str, ...]) -> str:
        return oracle((*polluters, *tests))

    probes = Probes(victim, between, jobs, max_runs)
    echo(
        f"testfleet bisect: {victim}: looking for a cleaner among {len(candidates)} tests "
        f"(run after {' and '.join(polluters)})"
    )
    try:
        (outcome,) = probes.outcomes([[*candidates, victim]])
        if outcome in FAILING:
            return Found(None, probes.runs, probes.rounds)
        found = Search(probes, order, False, max_tests, echo).minimize(candidates)
        if found is not None:
            # The check a printed result deserves: the cleaner alone, run again.
            (again,) = probes.outcomes([[*found, victim]], fresh=True)
            if again in FAILING:
                found = None
    except ProbeError as exc:
        return Found(None, probes.runs, probes.rounds, f"no cleaner searched to the end: {exc}")
    return Found(found, probes.runs, probes.rounds)
