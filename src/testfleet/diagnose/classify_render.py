"""What `testfleet classify` prints and appends to a summary, and the rollback switch it names."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from testfleet.core.atomic import append_text_atomic
from testfleet.core.workers import WORKERS_ENV
from testfleet.diagnose.reruns import failed
from testfleet.diagnose.verdicts import CLASSES, THRESHOLD_ENV, Classification, Verdict


def rollback_command(project: Path) -> str:
    """The switch back to serial runs that exists in ``project`` (docs/rollback.md)."""
    if (project / "tasks.py").is_file():
        return f"{WORKERS_ENV}=1 invoke ci"
    if (project / "noxfile.py").is_file():
        return f"{WORKERS_ENV}=1 nox -s tests_parallel"
    return "testfleet run --workers 1"


def _reruns(verdict: Verdict) -> str:
    parts = [f"in order context {_tally(verdict.in_context)}", f"alone {_tally(verdict.alone)}"]
    if verdict.in_suite:
        parts.append(f"in suite order {_tally(verdict.in_suite)}")
    if verdict.beside:
        parts.append(f"under xdist beside its neighbours {_tally(verdict.beside)}")
    found = verdict.collision
    if found.replays:
        parts.append(
            f"{found.replays} replays beside the {len(found.overlapping)} tests that overlapped "
            "it" + (f": collides with {', '.join(found.names)}" if found.found else "")
        )
    return ", ".join(parts)


def _tally(outcomes: Sequence[str]) -> str:
    passed = sum(not failed(o) for o in outcomes)
    return f"{passed}/{len(outcomes)} passed"


def _collisions(result: Classification) -> list[tuple[str, str | None]]:
    """Each parallel-only test whose replays named the test it collides with."""
    return [
        (
            f"parallel-only: {verdict.nodeid} collides with "
            f"{', '.join(verdict.collision.names)} when they run at the same time on two "
            "workers; replay the collision with",
            shlex.join(result.reproduce(verdict)),
        )
        for verdict in result.of("parallel-only")
        if verdict.collision.found
    ]


def _undecided(result: Classification) -> list[tuple[str, str | None]]:
    undecided = result.of("undecided")
    if not undecided:
        return []
    text = (
        f"undecided: {len(undecided)} tests failed under xdist and passed every "
        f"rerun, {result.runs} serial and {result.runs} under xdist beside the tests "
        f"that ran with them, and {sum(v.collision.replays for v in undecided)} "
        "replays beside the tests that overlapped them: flaky or parallel-only, the "
        "reruns cannot tell. More "
        "reruns (--runs) may show a failure again; its history tells whether it also "
        "fails in serial runs"
    )
    return [(text, None)]


def _advice(result: Classification) -> list[tuple[str, str | None]]:
    """What to do next: (text, command to run or None)."""
    advice: list[tuple[str, str | None]] = []
    if result.of("parallel-only"):
        advice.append(
            (
                "parallel-only tests pass serially: an isolation bug, they share something "
                "(a file, rows, a variable, a service) with a test on another worker. Fix it "
                "with the helpers of docs/isolation.md, or mark the test `serial`; "
                "docs/rollback.md tells how to find the cause",
                None,
            )
        )
    advice += _collisions(result)
    for verdict in result.of("order-dependent"):
        if verdict.needs_other_worker:
            text = (
                f"order-dependent: {verdict.nodeid} fails after the {len(verdict.context)} "
                f"tests before it on {verdict.worker} and alone, but passes in the suite's "
                "serial order: it needs a test that ran on another worker; find which with"
            )
        else:
            text = (
                f"order-dependent: {verdict.nodeid} passes alone but fails after the "
                f"{len(verdict.context)} tests before it on {verdict.worker}; find the test "
                "that breaks it with"
            )
        advice.append((text, shlex.join(result.bisect(verdict))))
    advice += _undecided(result)
    flaky = len(result.of("flaky"))
    if flaky:
        share = (
            f"{flaky} flaky of {result.tests} tests ({result.flaky_percent:g}%), threshold "
            f"{result.threshold:g}% (--threshold, ${THRESHOLD_ENV})"
        )
        if result.over_threshold:
            advice.append((f"{share}: above it, the run fails: the run cannot be trusted", None))
        else:
            advice.append((f"{share}: reported, they do not fail the run", None))
    if result.suggest_rollback:
        advice.append(
            (
                "to go back to serial runs until this is fixed (docs/rollback.md), "
                "use the rollback switch",
                result.rollback_command,
            )
        )
    return advice


def render_text(result: Classification) -> list[str]:
    """The lines `testfleet classify` prints after the reruns."""
    counts = result.counts()
    lines = ["testfleet: " + ", ".join(f"{counts[c]} {c}" for c in CLASSES)]
    for verdict in sorted(result.verdicts, key=lambda v: (CLASSES.index(v.cls), v.nodeid)):
        lines.append(
            f"testfleet: {verdict.cls:<15} {verdict.nodeid} ({verdict.outcome} on "
            f"{verdict.worker}; {_reruns(verdict)})"
        )
    lines += [
        f"testfleet: {text}: {command}" if command else f"testfleet: {text}"
        for text, command in _advice(result)
    ]
    return lines


def render_markdown(result: Classification) -> str:
    """The section `testfleet classify --summary` appends to the CI summary."""
    out = ["## Parallel-only and flaky failures", ""]
    if not result.verdicts:
        return "\n".join([*out, "No test failed: nothing to classify.", ""])
    counts = result.counts()
    out += [
        f"{len(result.verdicts)} of {result.tests} tests failed in run `{result.run_id}`; "
        f"each ran again {result.runs} times serially in its order context (the tests before "
        "it on its worker) and alone.",
        "",
        "| " + " | ".join(CLASSES) + " |",
        "|" + "---|" * len(CLASSES),
        "| " + " | ".join(str(counts[c]) for c in CLASSES) + " |",
        "",
        "| class | test | worker | in order context | alone | in suite order | beside neighbours |",
        "|---|---|---|---|---|---|---|",
    ]
    out += [
        f"| {v.cls} | `{v.nodeid}` | {v.worker} | {_tally(v.in_context)} | {_tally(v.alone)} | "
        f"{_tally(v.in_suite) if v.in_suite else '-'} | {_tally(v.beside) if v.beside else '-'} |"
        for v in sorted(result.verdicts, key=lambda v: (CLASSES.index(v.cls), v.nodeid))
    ]
    out.append("")
    out += [
        f"- {text}: `{command}`" if command else f"- {text}." for text, command in _advice(result)
    ]
    return "\n".join(out) + "\n"


def append_summary(result: Classification, path: Path) -> None:
    """Append the markdown section to ``path`` in one rename."""
    append_text_atomic(path, "\n" + render_markdown(result))
