"""The bisection itself: a pure function of an oracle that runs tests in a given order.

The oracle answers one question: the outcome of the victim (the last node id) when the
tests run in exactly the order given. Everything else here is bookkeeping: which sets to
ask about, ``jobs`` at a time, so that a round can split the candidates in ``jobs + 1``
parts instead of two (about log(N) / log(jobs + 1) rounds), and the last check of the
commands that will be printed. The tests of this module give it a function as oracle
and run in milliseconds; `probes` gives it pytest processes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

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
from testfleet.diagnose.minimize import Echo, Oracle, Probes, Search, split
from testfleet.diagnose.probes import FAILING, NotCollected, ProbeError
from testfleet.scheduling.ordering import unique

#: The command that a person runs to see the given node ids run in that order.
Show = Callable[[Sequence[str]], list[str]]

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
    result, missing = _diagnose_collected(probes, order, victim, show, max_tests, echo)
    result.missing = missing
    result.rounds = probes.rounds
    result.runs = probes.runs
    if missing and result.verdict != MISSING:
        result.notes.append(
            f"{len(missing)} tests of the order are not collected any more and were left out"
        )
    return result, probes


def _diagnose_collected(
    probes: Probes, order: list[str], victim: str, show: Show, max_tests: int, echo: Echo
) -> tuple[Diagnosis, list[str]]:
    """The diagnosis, searched again without the tests pytest does not collect any more."""
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
    return result, missing


def _count(number: int) -> str:
    return f"{number} test" if number == 1 else f"{number} tests"


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
    parts = split(before, jobs + 1) if len(before) > jobs + 1 else [before]
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
    return _fails_alone(prober, order, victim, before, after, show, max_tests, tried, echo)


def _fails_alone(
    prober: Probes,
    order: list[str],
    victim: str,
    before: list[str],
    after: list[str],
    show: Show,
    max_tests: int,
    tried: list[str],
    echo: Echo,
) -> Diagnosis:
    """The victim failed alone: unless it passes after every other test, an ordinary failure."""
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
    search = Search(prober, order, want_failure, max_tests, echo)
    found = search.minimize(candidates)
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
    found, minimal, outcomes, failing, passing = _check(prober, found, victim, want_failure, echo)
    command = show(failing)
    control = show(passing)
    tried.append(f"bisected {len(candidates)} candidates in {prober.rounds} rounds")
    return _found(
        victim,
        want_failure,
        found,
        minimal,
        outcomes,
        (command, control),
        tried,
        search.notes,
        len(candidates),
    )


def _check(
    prober: Probes, found: list[str], victim: str, want_failure: bool, echo: Echo
) -> tuple[list[str], bool | None, list[str], list[str], list[str]]:
    """The cause checked: what is left of it, whether it is minimal, the last outcomes and
    the runs with and without it."""
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
        return found, minimal, outcomes, failing, passing


def _found(
    victim: str,
    want_failure: bool,
    found: list[str],
    minimal: bool | None,
    outcomes: Sequence[str],
    commands: tuple[list[str], list[str]],
    tried: list[str],
    notes: list[str],
    candidates: int,
) -> Diagnosis:
    """The diagnosis of a cause the bisection found, flaky when the check did not repeat it."""
    command, control = commands
    fails, passes = outcomes[0] in FAILING, outcomes[1] not in FAILING
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
            notes=notes,
            candidates=candidates,
        )
    return Diagnosis(
        victim,
        POLLUTED if want_failure else DEPENDS,
        message,
        tests=found,
        command=command,
        control=control,
        verified=True,
        minimal=minimal,
        tried=tried,
        notes=notes,
        candidates=candidates,
    )
