"""One self-contained HTML page for a run: timeline, slowest tests, files, baseline, trends.

The page fetches nothing: styles, the SVG and a few lines of script are inline, and its
Content-Security-Policy forbids every network request, so it opens the same from a CI
artifact as from disk. html_svg.py says why the drawing is plain SVG.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from testfleet.core import paths
from testfleet.history import analysis as history_analysis
from testfleet.history import settings as history_settings
from testfleet.history.store import HistoryError, open_history, reading
from testfleet.reporting import svg as html_svg
from testfleet.timing.records import OUTCOMES

ORDER_REPORT = paths.ORDER_DEPENDENCE
CLASSIFICATION_REPORT = paths.CLASSIFICATION
SHOWN = 25

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2329;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#57606a}.cards{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.card{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;min-width:110px}
.card b{display:block;font-size:18px}
table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 10px 3px 0;text-align:left;
vertical-align:top}th{border-bottom:1px solid #d0d7de}td.num{text-align:right;
font-variant-numeric:tabular-nums}code{font-size:12.5px}
.hbar{height:10px;background:#4c8bf5;border-radius:2px}
.scroll{overflow-x:auto}#hover{min-height:1.5em;font-family:monospace;color:#24292f}
svg text{font:11px system-ui,sans-serif;fill:#57606a}.lane-label{text-anchor:end}
.tick{text-anchor:middle}.grid{stroke:#eaeef2}.lane-bg{fill:#f6f8fa}
.lane:nth-child(even) .lane-bg{fill:#eef1f4}.phase{stroke:#8250df;stroke-dasharray:4 3}
.bar:hover,.col:hover{stroke:#000;stroke-width:1}
.startup{fill:#d0d7de}.collecting{fill:#afb8c1}
.o-passed{fill:#2da44e}.o-failed{fill:#cf222e}.o-error{fill:#82071e}.o-skipped{fill:#8c959f}
.o-xfailed{fill:#bf8700}.o-xpassed{fill:#8250df}.legend span{display:inline-block;
margin-right:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
.i-passed{background:#2da44e}.i-failed{background:#cf222e}.i-error{background:#82071e}
.i-skipped{background:#8c959f}.i-startup{background:#d0d7de}
.i-xfailed{background:#bf8700}.i-xpassed{background:#8250df}
.col.ok{fill:#4c8bf5}.col.bad{fill:#cf222e}.warn{color:#cf222e;font-weight:600}
"""

# Shows the hovered bar's title under the timeline (the native tooltip comes late).
SCRIPT = """
document.addEventListener("mouseover", function (event) {
  var target = event.target;
  if (!target.closest) { return; }
  var shape = target.closest(".bar, .col, .startup, .collecting");
  var title = shape && shape.querySelector("title");
  if (title) { document.getElementById("hover").textContent = title.textContent; }
});
"""

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{cell}</td>' if index in numeric else f"<td>{cell}</td>"
            for index, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _code(text: str) -> str:
    return f"<code>{escape(text)}</code>"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}s"


def _cards(analysis: Mapping[str, Any]) -> str:
    run = analysis["run"]
    outcomes = analysis["outcomes"]
    base = analysis.get("baseline")
    cards = [
        ("tests", str(analysis["tests"])),
        ("passed", str(outcomes.get("passed", 0))),
        ("failed", str(outcomes.get("failed", 0) + outcomes.get("error", 0))),
        ("wall time", _s(run["wall_seconds"])),
        ("workers", str(run["workers"])),
        ("concurrency", f"x{analysis['concurrency']}"),
    ]
    if base is not None:
        cards.append(("speedup vs baseline", f"x{base['speedup']}"))
    return (
        '<div class="cards">'
        + "".join(f'<div class="card">{escape(k)}<b>{escape(v)}</b></div>' for k, v in cards)
        + "</div>"
    )


def _legend() -> str:
    spans = "".join(f'<span><i class="i-{o}"></i>{o}</span>' for o in OUTCOMES)
    spans += '<span><i class="i-startup"></i>worker start-up, collection</span>'
    return f'<p class="legend">{spans}</p>'


def _slowest(analysis: Mapping[str, Any]) -> str:
    rows = [
        [f"{t['duration']:.3f}", escape(t["outcome"]), escape(t["worker"]), _code(t["nodeid"])]
        for t in analysis["slowest"]
    ]
    return _table(["seconds", "outcome", "worker", "test"], rows, {0})


def _files(analysis: Mapping[str, Any]) -> str:
    files = analysis["files"][:SHOWN]
    top = max((f["seconds"] for f in files), default=0) or 1
    rows = [
        [
            f"{f['seconds']:.3f}",
            str(f["tests"]),
            f'<div class="hbar" style="width:{200 * f["seconds"] / top:.0f}px"></div>',
            _code(f["name"]),
        ]
        for f in files
    ]
    more = len(analysis["files"]) - len(files)
    tail = f"<p class='meta'>and {more} more files</p>" if more > 0 else ""
    return _table(["seconds", "tests", "", "file"], rows, {0, 1}) + tail


def _baseline(base: Mapping[str, Any] | None, run: Mapping[str, Any]) -> str:
    if base is None:
        return "<p class='meta'>No baseline given (<code>--baseline FILE</code>).</p>"
    out = [
        f"<p>Speedup of the whole run: <b>x{base['speedup']}</b> ({_s(base['wall_seconds'])} "
        f"{escape(str(base['mode']))} on {base['workers']} worker(s) → "
        f"{_s(run['wall_seconds'])} {escape(str(run['mode']))}).</p>",
        f"<p>{len(base['slower'])} slower, {len(base['changed'])} changed outcome, "
        f"{len(base['added'])} added, {len(base['removed'])} removed.</p>",
    ]
    if base["slower"]:
        rows = [
            [f"{s['baseline']:.3f}", f"{s['current']:.3f}", f"x{s['ratio']}", _code(s["nodeid"])]
            for s in base["slower"][:SHOWN]
        ]
        out.append(_table(["baseline", "now", "ratio", "test"], rows, {0, 1, 2}))
    if base["changed"]:
        rows = [
            [escape(c["baseline"]), escape(c["current"]), _code(c["nodeid"])]
            for c in base["changed"][:SHOWN]
        ]
        out.append(_table(["baseline", "now", "test"], rows, set()))
    return "\n".join(out)


def _trends(history: Mapping[str, Any] | None) -> str:
    if history is None:
        return (
            "<p class='meta'>No run history (<code>reports/history.sqlite</code>): "
            "<code>testfleet run</code> records one.</p>"
        )
    if "unreadable" in history:
        return f"<p class='warn'>No trends: {escape(str(history['unreadable']))}</p>"
    runs = history["runs"]
    walls = [
        (f"{r['run_id']} ({r['mode']}/{r['workers']})", float(r["wall_seconds"]),
         "bad" if r["failed"] else "ok")
        for r in runs
    ]  # fmt: skip
    out = [
        f"<p>The newest {len(runs)} of {history['recorded_runs']} recorded runs, oldest "
        "first; red: the run had failures.</p>",
        "<h3>Wall time per run</h3>",
        html_svg.bar_chart(walls, "s", "wall time per run"),
    ]
    flaky = history["flaky"][:SHOWN]
    if flaky:
        rows = [
            [f"{f['flake_rate']:g}%", f"{f['flaky_runs']}/{f['runs']}",
             "new" if f["new"] else "", _code(f["nodeid"])]
            for f in flaky
        ]  # fmt: skip
        out += ["<h3>Flaky tests</h3>", _table(["rate", "runs", "", "test"], rows, {0, 1})]
    slower = history["slower"][:SHOWN]
    if slower:
        rows = [[f"{s['earlier']:.3f}", f"{s['recent']:.3f}", _code(s["nodeid"])] for s in slower]
        out += [
            "<h3>Slower in the recent runs</h3>",
            _table(["before", "now", "test"], rows, {0, 1}),
        ]
    return "\n".join(out)


def _classification(data: Mapping[str, Any] | None, run_id: str | None) -> str:
    if data is None:
        return ""
    if data.get("run_id") not in (None, run_id):
        return (
            f"<h2>Classification</h2><p class='meta'>{escape(str(CLASSIFICATION_REPORT))} is "
            f"from run {escape(str(data.get('run_id')))}, not this one: not shown.</p>"
        )
    rows = [
        [escape(str(r.get("class"))), escape(str(r.get("worker"))), _code(str(r.get("nodeid"))),
         _code(str(r.get("reproduce") or ""))]
        for r in data.get("results", [])
    ]  # fmt: skip
    warn = (
        f"<p class='warn'>Flaky tests above the threshold ({data.get('flaky_percent')}% > "
        f"{data.get('threshold_percent')}%).</p>"
        if data.get("over_threshold")
        else ""
    )
    return (
        "<h2>Classification of the failed tests</h2>"
        + warn
        + (
            _table(["class", "worker", "test", "reproduce"], rows, set())
            if rows
            else "<p>None.</p>"
        )
    )


def _order(data: Mapping[str, Any] | None) -> str:
    if data is None:
        return ""
    rows = [
        [escape(str(r.get("verdict"))), _code(str(r.get("victim"))),
         "<br>".join(_code(str(t)) for t in r.get("tests", [])) or "-",
         _code(str(r.get("command") or ""))]
        for r in data.get("results", [])
    ]  # fmt: skip
    body = _table(["verdict", "test", "cause", "reproduce"], rows, set()) if rows else (
        "<p>No failing test to diagnose.</p>"
    )  # fmt: skip
    return "<h2>Order dependence (testfleet randomized)</h2>" + body


def page(
    analysis: Mapping[str, Any],
    report: Mapping[str, Any],
    *,
    history: Mapping[str, Any] | None = None,
    classification: Mapping[str, Any] | None = None,
    order: Mapping[str, Any] | None = None,
    title: str = "testfleet run report",
) -> str:
    """The whole page; ``analysis`` is :func:`testfleet.reporting.analysis.analyze`'s result."""
    run = analysis["run"]
    meta = (
        f"run {escape(str(run['id']))} · {escape(str(run['mode']))} on {run['workers']} "
        f"worker(s), dist {escape(str(run['dist']))} · commit "
        f"{escape(str(run.get('git_commit') or '-'))}"
    )
    sections = [
        f"<h1>{escape(title)}</h1><p class='meta'>{meta}</p>",
        _cards(analysis),
        f"<h2>Worker timeline</h2><p class='meta'>One lane per worker, one bar per test "
        f"from its start to its stop; the serial phase after the parallel one. "
        f"Hover a bar for the test.</p>{_legend()}",
        f'<div class="scroll">{html_svg.timeline(report)}</div><p id="hover"></p>',
        f"<h2>Slowest {len(analysis['slowest'])} tests</h2>{_slowest(analysis)}",
        f"<h2>Time per file</h2>{_files(analysis)}",
        f"<h2>Against the baseline</h2>{_baseline(analysis.get('baseline'), run)}",
        f'<h2>Trends</h2><div class="scroll">{_trends(history)}</div>',
        _classification(classification, run.get("id")),
        _order(order),
    ]
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        + "\n".join(s for s in sections if s)
        + f"<script>{SCRIPT}</script></body></html>\n"
    )


def read_optional(path: Path) -> dict[str, Any] | None:
    """A diagnosis JSON beside the run, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def history_for(root: Path) -> dict[str, Any] | None:
    """The history analysis for the trends; None without a history, why when unreadable."""
    try:
        path = history_settings.history_path(None, root)
        if not path.is_file():
            return None
        with open_history(path, create=False) as conn, reading(path):
            return history_analysis.analyze(conn)
    except (HistoryError, ValueError) as exc:
        # The page is still worth having without its trends; it says why they are missing.
        return {"unreadable": str(exc)}


def render_run(analysis: Mapping[str, Any], report: Mapping[str, Any], root: Path) -> str:
    """The page of a run with whatever lies beside it: history, classification, order."""
    return page(
        analysis,
        report,
        history=history_for(root),
        classification=read_optional(root / CLASSIFICATION_REPORT),
        order=read_optional(root / ORDER_REPORT),
    )
