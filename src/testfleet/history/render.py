"""The history analysis as text, markdown or JSON."""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from typing import Any

from testfleet.history import quarantine

FORMATS = ("text", "markdown", "json")
#: Rows of each list in text and markdown; JSON has them all.
SHOWN = 20


def render(analysis: Mapping[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(analysis, indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        return _markdown(analysis)
    if fmt == "text":
        return _text(analysis)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _when(started: float) -> str:
    if not started:
        return "-"
    moment = datetime.datetime.fromtimestamp(started, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M")


def _x(value: float | None) -> str:
    return "-" if value is None else f"x{value:g}"


def headline(analysis: Mapping[str, Any]) -> list[str]:
    window = analysis["window"]
    runs = analysis["runs"]
    branch = f" on branch {window['branch']}" if window["branch"] else ""
    lines = [
        f"{len(runs)} of {analysis['recorded_runs']} recorded runs{branch} "
        f"(newest {window['recent']} are recent)",
        f"flaky tests: {len(analysis['flaky'])}, newly flaky: {len(analysis['newly_flaky'])}, "
        f"above {window['threshold_percent']:g}%: {len(analysis['over_threshold'])}; "
        f"slower tests: {len(analysis['slower'])}",
    ]
    serial = analysis.get("serial_reference")
    if serial:
        lines.append(
            f"speedup is against serial run {serial['run_id']} ({serial['wall_seconds']:.1f}s)"
        )
    return lines


def _run_cells(run: Mapping[str, Any]) -> list[str]:
    return [
        _when(run["started"]),
        str(run["run_id"]),
        (run["git_commit"] or "-")[:10],
        str(run["branch"] or "-"),
        f"{run['mode'] or '-'}/{run['workers']}",
        f"{run['wall_seconds']:.1f}s",
        _x(run["speedup"]),
        _x(run["concurrency"]),
        f"{run['tests']}",
        f"{run['failed']}",
    ]


RUN_HEADER = [
    "when (UTC)",
    "run",
    "commit",
    "branch",
    "mode/workers",
    "wall",
    "speedup",
    "concurrency",
    "tests",
    "failed",
]


def _flaky_cells(row: Mapping[str, Any]) -> list[str]:
    new = "new" if row["new"] else ""
    return [f"{row['flake_rate']:g}%", f"{row['flaky_runs']}/{row['runs']}", new, row["nodeid"]]


def _slower_cells(row: Mapping[str, Any]) -> list[str]:
    return [f"{row['earlier']:.3f}s", f"{row['recent']:.3f}s", _x(row["ratio"]), row["nodeid"]]


def _text(analysis: Mapping[str, Any]) -> str:
    out = headline(analysis)
    shown = analysis["runs"][-SHOWN:]
    out += ["", f"runs (the newest {len(shown)}, oldest first):"]
    out += _columns([RUN_HEADER] + [_run_cells(r) for r in shown])
    out += ["", f"flaky tests ({len(analysis['flaky'])}):"]
    out += _columns(
        [["rate", "runs", "", "test"]] + [_flaky_cells(r) for r in analysis["flaky"][:SHOWN]]
    )
    out += ["", f"slower in the recent runs ({len(analysis['slower'])}):"]
    out += _columns(
        [["earlier", "recent", "ratio", "test"]]
        + [_slower_cells(r) for r in analysis["slower"][:SHOWN]]
    )
    out += _quarantine_text(analysis.get("quarantine", []))
    return "\n".join(out) + "\n"


def _quarantine_text(rows: Sequence[Mapping[str, str]]) -> list[str]:
    """The tests to run apart, why, and the two commands; nothing when there are none."""
    if not rows:
        return []
    deselect, apart = quarantine.commands(rows)
    out = ["", f"to quarantine ({len(rows)}): run them apart until they are fixed"]
    out += [f"  {row['nodeid']}: {row['reason']}" for row in rows[:SHOWN]]
    return [*out, f"  leave them out of the run: {deselect}", f"  run them apart: {apart}"]


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    if len(rows) == 1:
        return ["  (none)"]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1]
        for row in rows
    ]


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines


def _markdown(analysis: Mapping[str, Any]) -> str:
    out = ["## Test history", ""]
    out += [f"- {line}" for line in headline(analysis)]
    over = analysis["over_threshold"]
    if over:
        out += [
            "",
            f"**{len(over)} newly flaky test(s) above "
            f"{analysis['window']['threshold_percent']:g}%.**",
        ]
    out += ["", "### Runs", ""]
    out += _md_table(RUN_HEADER, [_run_cells(r) for r in analysis["runs"][-SHOWN:]])
    if analysis["flaky"]:
        out += ["", "### Flaky tests", ""]
        out += _md_table(
            ["rate", "flaky runs", "", "test"],
            [[*c[:3], f"`{c[3]}`"] for c in map(_flaky_cells, analysis["flaky"][:SHOWN])],
        )
    held = analysis.get("quarantine", [])
    if held:
        deselect, apart = quarantine.commands(held)
        out += ["", "### To quarantine", ""]
        out += _md_table(["test", "why"], [[f"`{r['nodeid']}`", r["reason"]] for r in held])
        out += ["", f"Leave them out of the run: `{deselect}`; run them apart: `{apart}`"]
    if analysis["slower"]:
        out += ["", "### Slower in the recent runs", ""]
        out += _md_table(
            ["earlier", "recent", "ratio", "test"],
            [[*c[:3], f"`{c[3]}`"] for c in map(_slower_cells, analysis["slower"][:SHOWN])],
        )
    return "\n".join(out) + "\n"
