"""``testfleet report`` as text, markdown or JSON, from :mod:`testfleet.reporting.analysis`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from testfleet.reporting import schedule as schedule_report
from testfleet.timing.records import OUTCOMES

FORMATS = ("text", "markdown", "json")


def render(analysis: Mapping[str, Any], fmt: str) -> str:
    """The analysis as ``text``, ``markdown`` or ``json``."""
    if fmt == "json":
        return json.dumps(analysis, indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        return _markdown(analysis)
    if fmt == "text":
        return _text(analysis)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}s"


def _outcome_line(analysis: Mapping[str, Any]) -> str:
    counts = analysis["outcomes"]
    parts = [f"{counts[o]} {o}" for o in OUTCOMES if counts.get(o)]
    return ", ".join(parts) or "no tests"


def _headline(analysis: Mapping[str, Any]) -> list[str]:
    run = analysis["run"]
    lines = [
        f"{analysis['tests']} tests: {_outcome_line(analysis)}",
        f"run {run['id']}: {run['mode']}, {run['workers']} worker(s), dist {run['dist']}"
        + (f", seed {run['seed']}" if run.get("seed") is not None else ""),
        f"wall time {_seconds(run['wall_seconds'])}, sum of test time "
        f"{_seconds(analysis['duration_sum'])}, concurrency {analysis['concurrency']}, "
        f"parallel efficiency {_percent(analysis['parallel_efficiency'])}",
    ]
    base = analysis.get("baseline")
    if base is not None:
        lines.append(
            f"baseline: {base['mode']} on {base['workers']} worker(s) in "
            f"{_seconds(base['wall_seconds'])}; speedup x{base['speedup']}; "
            f"{len(base['slower'])} slower, {len(base['changed'])} changed outcome, "
            f"{len(base['added'])} added, {len(base['removed'])} removed"
        )
    return lines


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _text(analysis: Mapping[str, Any]) -> str:
    out = _headline(analysis)
    out.append("")
    out.append(f"slowest {len(analysis['slowest'])}:")
    out += [
        f"  {_seconds(t['duration']):>10}  {t['outcome']:<8} {t['worker']:<6} {t['nodeid']}"
        for t in analysis["slowest"]
    ]
    out.append("workers:")
    out += [
        f"  {w['worker']:<8} {w['tests']:>6} tests  busy {_seconds(w['busy_seconds'])}  "
        f"utilisation {_percent(w['utilisation'])}"
        for w in analysis["workers"]
    ]
    out += schedule_report.text_lines(analysis["schedule"])
    out.append("markers:")
    out += [
        f"  {m['name']:<20} {m['tests']:>6} tests  {_seconds(m['seconds'])}"
        for m in analysis["markers"]
    ]
    out.append("files:")
    out += [
        f"  {_seconds(f['seconds']):>10}  {f['tests']:>6} tests  {f['name']}"
        for f in analysis["files"]
    ]
    base = analysis.get("baseline")
    if base is not None:
        limits = base["thresholds"]
        out.append(
            f"slower than baseline (x{limits['ratio']} and +{limits['seconds']}s): "
            f"{len(base['slower'])}"
        )
        out += [
            f"  {_seconds(s['baseline'])} -> {_seconds(s['current'])}  {s['nodeid']}"
            for s in base["slower"]
        ]
        out.append(f"changed outcome: {len(base['changed'])}")
        out += [f"  {c['baseline']} -> {c['current']}  {c['nodeid']}" for c in base["changed"]]
        out.append(f"added: {len(base['added'])}")
        out += [f"  {nodeid}" for nodeid in base["added"]]
        out.append(f"removed: {len(base['removed'])}")
        out += [f"  {nodeid}" for nodeid in base["removed"]]
    return "\n".join(out) + "\n"


#: The longest cell a Markdown table gets: a parametrized id can print a value of megabytes,
#: and GitHub refuses a job summary over 1 MiB. Longer cells keep their start and end.
MAX_CELL = 300


def _md_cell(text: object) -> str:
    cell = str(text)
    if len(cell) > MAX_CELL:
        cell = f"{cell[: MAX_CELL - 80]} … {cell[-60:]}"
    return cell.replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(cell) for cell in row) + " |" for row in rows]
    return lines


def _markdown(analysis: Mapping[str, Any]) -> str:
    out = ["## Test timing", ""]
    out += [f"- {line}" for line in _headline(analysis)]
    out += ["", f"### Slowest {len(analysis['slowest'])} tests", ""]
    out += _table(
        ["seconds", "outcome", "worker", "test"],
        [
            [f"{t['duration']:.3f}", t["outcome"], t["worker"], f"`{t['nodeid']}`"]
            for t in analysis["slowest"]
        ],
    )
    out += ["", "### Workers", ""]
    out += _table(
        ["worker", "tests", "busy seconds", "utilisation"],
        [
            [w["worker"], w["tests"], f"{w['busy_seconds']:.3f}", _percent(w["utilisation"])]
            for w in analysis["workers"]
        ],
    )
    out += schedule_report.markdown_lines(analysis["schedule"], _table)
    out += ["", "### Per marker", ""]
    out += _table(
        ["marker", "tests", "seconds"],
        [[m["name"], m["tests"], f"{m['seconds']:.3f}"] for m in analysis["markers"]],
    )
    out += ["", "### Per file", ""]
    out += _table(
        ["file", "tests", "seconds"],
        [[f"`{f['name']}`", f["tests"], f"{f['seconds']:.3f}"] for f in analysis["files"]],
    )
    base = analysis.get("baseline")
    if base is not None:
        out += _markdown_baseline(analysis, base)
    return "\n".join(out) + "\n"


def _markdown_baseline(analysis: Mapping[str, Any], base: Mapping[str, Any]) -> list[str]:
    """The markdown section that compares the run with its baseline."""
    limits = base["thresholds"]
    out = [
        "",
        "### Against the baseline",
        "",
        f"Speedup of the whole run: **x{base['speedup']}** "
        f"({_seconds(base['wall_seconds'])} {base['mode']} -> "
        f"{_seconds(analysis['run']['wall_seconds'])} {analysis['run']['mode']}).",
        "",
        f"Slower tests (at least x{limits['ratio']} and +{limits['seconds']}s): "
        f"{len(base['slower'])}",
    ]
    if base["slower"]:
        out.append("")
        out += _table(
            ["baseline", "current", "ratio", "test"],
            [
                [f"{s['baseline']:.3f}", f"{s['current']:.3f}", s["ratio"], f"`{s['nodeid']}`"]
                for s in base["slower"]
            ],
        )
    if base["changed"]:
        out += ["", f"Tests whose outcome changed: {len(base['changed'])}", ""]
        out += _table(
            ["baseline", "current", "test"],
            [[c["baseline"], c["current"], f"`{c['nodeid']}`"] for c in base["changed"]],
        )
    out += ["", f"Added tests: {len(base['added'])}; removed tests: {len(base['removed'])}."]
    for title, ids in (("Added", base["added"]), ("Removed", base["removed"])):
        if ids:
            out += ["", f"<details><summary>{title}</summary>", ""]
            out += [f"- `{nodeid}`" for nodeid in ids]
            out += ["", "</details>"]
    return out
