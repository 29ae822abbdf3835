"""SVG drawn from report data: the worker timeline and small bar charts.

Plain SVG written as text, no charting library: the page must open offline from a CI
artifact, and a 10,000-test timeline is 10,000 ``<rect>`` elements that the browser
lays out once, with the node id and seconds in each bar's ``<title>`` for the hover.
A library would add a few hundred kilobytes of script that runs before anything shows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from testfleet.core.workers import MAIN_WORKER

LABEL = 110
PLOT = 1060
LANE = 22
BAR = 16
AXIS = 26


def _worker_key(name: str) -> tuple[int, int, str]:
    # gw2 before gw10; the serial phase's lane (main) after the workers.
    match = re.fullmatch(r"gw(\d+)", name)
    if match:
        return (0, int(match.group(1)), name)
    return (2 if name == MAIN_WORKER else 1, 0, name)


def lanes(tests: Sequence[Mapping[str, Any]]) -> list[str]:
    """The workers of a report, in lane order."""
    return sorted({str(t["worker"]) for t in tests}, key=_worker_key)


def _step(span: float) -> float:
    """A round tick spacing giving five to ten ticks over ``span`` seconds."""
    if span <= 0:
        return 1.0
    raw = span / 8
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return float(factor * power)
    return float(10 * power)


def _axis(span: float, top: float, height: float) -> list[str]:
    step = _step(span)
    out = []
    tick = 0.0
    while tick <= span + 1e-9:
        x = LABEL + (tick / span if span else 0) * PLOT
        out.append(
            f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + height}"/>'
            f'<text class="tick" x="{x:.1f}" y="{top + height + 14}">{tick:g}s</text>'
        )
        tick += step
    return out


def timeline(report: Mapping[str, Any]) -> str:
    """One lane per worker, one bar per test (every attempt) from its start to its stop."""
    tests = [t for t in report["tests"] if float(t.get("stop", 0)) > 0]
    names = lanes(report["tests"])
    if not tests:
        return '<p class="empty">No test has start and stop times to draw.</p>'
    startup = worker_startup(report["run"])
    t0 = min([float(t["start"]) for t in tests] + [begin for begin, _, _ in startup.values()])
    span = max(float(t["stop"]) for t in tests) - t0 or 1e-6
    row = {name: index for index, name in enumerate(names)}
    height = len(names) * LANE
    parallel = any(name != MAIN_WORKER for name in names)
    out = [
        f'<svg class="timeline" viewBox="0 0 {LABEL + PLOT + 10} {height + AXIS}" '
        f'width="{LABEL + PLOT + 10}" height="{height + AXIS}" role="img" '
        'aria-label="worker timeline">',
        *_axis(span, 0, height),
    ]
    by_worker: dict[str, list[Mapping[str, Any]]] = {name: [] for name in names}
    for test in report["tests"]:
        by_worker[str(test["worker"])].append(test)
    for name in names:
        y = row[name] * LANE
        label = "serial phase" if name == MAIN_WORKER and parallel else name
        out.append(
            f'<g class="lane" data-worker="{escape(name)}">'
            f'<rect class="lane-bg" x="{LABEL}" y="{y}" width="{PLOT}" height="{LANE}"/>'
            f'<text class="lane-label" x="{LABEL - 6}" y="{y + LANE - 7}">{escape(label)}</text>'
        )
        if name in startup:
            out += _startup(name, startup[name], t0, span, y)
        out += [_bar(test, t0, span, y) for test in by_worker[name]]
        out.append("</g>")
    serial = [float(t["start"]) for t in tests if t["worker"] == MAIN_WORKER]
    if parallel and serial:
        x = LABEL + (min(serial) - t0) / span * PLOT
        out.append(f'<line class="phase" x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height}"/>')
    out.append("</svg>")
    return "\n".join(out)


def worker_startup(run: Mapping[str, Any]) -> dict[str, tuple[float, float, float | None]]:
    """worker -> (phase start, ready, collected), absolute times, where the report has them.

    Reports that record it keep, per worker, the seconds from the phase's start until the
    worker was ready and until it had collected the tests.
    """
    found: dict[str, tuple[float, float, float | None]] = {}
    for phase in run.get("phases") or [run]:
        facts = phase.get("worker_startup")
        begin = phase.get("start")
        if not isinstance(facts, dict) or not isinstance(begin, int | float):
            continue
        for worker, times in facts.items():
            ready = times.get("ready") if isinstance(times, dict) else None
            if not isinstance(ready, int | float):
                continue
            collected = times.get("collected")
            done = float(begin) + collected if isinstance(collected, int | float) else None
            found[str(worker)] = (float(begin), float(begin) + ready, done)
    return found


def _startup(
    worker: str, times: tuple[float, float, float | None], t0: float, span: float, y: float
) -> list[str]:
    begin, ready, collected = times
    spans = [("startup", begin, ready, "start-up")]
    if collected is not None and collected > ready:
        spans.append(("collecting", ready, collected, "collection"))
    return [
        f'<rect class="{css}" x="{LABEL + (start - t0) / span * PLOT:.2f}" y="{y + 3}" '
        f'width="{max((stop - start) / span * PLOT, 0.6):.2f}" height="{BAR}">'
        f"<title>{escape(worker)} {what}: {stop - start:.2f}s</title></rect>"
        for css, start, stop, what in spans
    ]


def _bar(test: Mapping[str, Any], t0: float, span: float, y: float) -> str:
    start, stop = float(test.get("start", 0)), float(test.get("stop", 0))
    if stop <= 0:
        start = stop = t0
    x = LABEL + (start - t0) / span * PLOT
    width = max((stop - start) / span * PLOT, 0.6)
    attempt = int(test.get("attempt", 1))
    rerun = f", attempt {attempt}" if attempt > 1 else ""
    cpu = test.get("cpu")
    used = f" (CPU {float(cpu):.3f}s)" if isinstance(cpu, int | float) else ""
    tip = (
        f"{test['nodeid']}\n{float(test['duration']):.3f}s{used} {test['outcome']} on "
        f"{test['worker']}{rerun}"
    )
    return (
        f'<rect class="bar o-{escape(str(test["outcome"]))}" x="{x:.2f}" y="{y + 3}" '
        f'width="{width:.2f}" height="{BAR}"><title>{escape(tip)}</title></rect>'
    )


def bar_chart(
    values: Sequence[tuple[str, float, str]], unit: str, title: str, height: int = 140
) -> str:
    """Vertical bars, one per (label, value, css class), with the label and value on hover."""
    if not values:
        return ""
    top = max(v for _, v, _ in values) or 1.0
    width = PLOT + LABEL
    slot = (width - LABEL) / len(values)
    out = [
        f'<svg class="chart" viewBox="0 0 {width + 10} {height + 20}" width="{width + 10}" '
        f'height="{height + 20}" role="img" aria-label="{escape(title)}">',
        f'<text class="tick" x="{LABEL - 6}" y="12" text-anchor="end">{top:.3g}{unit}</text>',
        f'<line class="grid" x1="{LABEL}" y1="{height}" x2="{width}" y2="{height}"/>',
    ]
    for index, (label, value, css) in enumerate(values):
        h = max(value / top * (height - 10), 1.0)
        x = LABEL + index * slot + slot * 0.15
        out.append(
            f'<rect class="col {css}" x="{x:.1f}" y="{height - h:.1f}" '
            f'width="{max(slot * 0.7, 1):.1f}" height="{h:.1f}">'
            f"<title>{escape(label)}: {value:g}{unit}</title></rect>"
        )
    out.append("</svg>")
    return "\n".join(out)
