"""Read, merge, compare and render timing reports."""

from __future__ import annotations

import contextlib
import gc
import heapq
import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

from testfleet.timing.records import (
    OUTCOMES,
    PHASES,
    SCHEMA,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    summarize,
)

FORMATS = ("text", "markdown", "json")


class ReportError(Exception):
    """A report that cannot be used; the message says which file and why."""


#: The fields of each test that ``testfleet report`` reads in the report it shows ...
SHOWN_FIELDS = ("nodeid", "outcome", "duration", "markers", "worker", "start", "stop", "cpu")
#: ... and in the baseline it compares with.
COMPARED_FIELDS = ("nodeid", "outcome", "duration", "attempt")


def load(
    path: Path, run_id: str | None = None, *, fields: Sequence[str] | None = None
) -> dict[str, Any]:
    """Read and check a timing report, or raise :class:`ReportError` saying what is wrong.

    With ``run_id``, a report written by another run (a stale one) is refused too. With
    ``fields``, each test keeps only those keys (and ``attempt``): a reader that needs a
    few fields of a 100,000-test report holds a fraction of it in memory.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except OSError as exc:
        raise ReportError(f"{path}: cannot be read ({exc})") from None
    try:
        data, checked = _parse(raw, fields)
    except UnicodeDecodeError as exc:
        raise ReportError(f"{path}: cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    del raw
    report = validate(data, str(path), tests_checked=checked)
    if run_id is not None and report["run"].get("id") != run_id:
        raise ReportError(
            f"{path} is from run {report['run'].get('id')!r}, not from run {run_id!r}: "
            "that run did not write its report; read its output above"
        )
    return report


class _UnsoundTest(Exception):
    """A test entry that fails the quick check; the full check says why."""


#: From this size on, a report is parsed with msgspec (:mod:`testfleet.timing.fastload`).
BIG_REPORT_BYTES = 1_000_000


def _parse(raw: bytes, fields: Sequence[str] | None) -> tuple[Any, bool]:
    """The report's JSON, and whether its tests were checked while it was parsed.

    With ``fields``, each test is checked and cut down as it is parsed. A test that
    fails the quick check has the whole report parsed again in full, for
    :func:`validate` to say what is wrong.
    """
    # Parsing makes a few objects per test and none of them is cyclic: the cyclic garbage
    # collector would only walk them again and again as they pile up.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        # What each test keeps: the fields asked for, and its attempt.
        keep = None if fields is None else tuple(dict.fromkeys([*fields, "attempt"]))
        if len(raw) >= BIG_REPORT_BYTES:
            from testfleet.timing import fastload as bigreport

            parsed = bigreport.parse(raw, keep)
            if parsed is not None:
                return parsed
        text = raw.decode("utf-8")
        if keep is None:
            return json.loads(text), False
        try:
            data = json.loads(text, object_hook=_slimmer(keep))
        except _UnsoundTest:
            return json.loads(text), False
        # The hook checked the objects with a node id: not an entry that is no object,
        # or that has none. Parsed again in full, such a report gets its message.
        tests = data.get("tests") if isinstance(data, dict) else None
        if isinstance(tests, list) and not all(
            type(test) is dict and "nodeid" in test for test in tests
        ):
            return json.loads(text), False
        return data, True
    finally:
        if was_enabled:
            gc.enable()


#: The numbers of a test that msgspec reads as floats (whole numbers too).
_FLOAT_FIELDS = ("duration", "start", "stop", "cpu")


def _slimmer(keep: tuple[str, ...]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The ``object_hook`` that checks each test and keeps only the keys in ``keep``."""
    strings: dict[str, str] = {}
    marker_lists: dict[tuple[str, ...], list[str]] = {}

    def slim(obj: dict[str, Any]) -> dict[str, Any]:
        if "nodeid" not in obj:
            return obj
        if not _sound(obj):
            raise _UnsoundTest
        test = {key: obj[key] for key in keep if key in obj}
        # Whole numbers as floats, as msgspec reads them from a large report: a reader
        # sees one type whichever parser read the file.
        for key in _FLOAT_FIELDS:
            if type(test.get(key)) is int:
                test[key] = float(test[key])
        phases = test.get("durations")
        if phases is not None:
            test["durations"] = {phase: float(phases[phase]) for phase in PHASES}
        # Outcomes, workers and markers repeat: one string (and list) each.
        for key in ("outcome", "worker"):
            if key in test:
                test[key] = strings.setdefault(test[key], test[key])
        markers = test.get("markers")
        if type(markers) is list:
            # Names that are lists or objects cannot be a key: kept as they are, not shared.
            with contextlib.suppress(TypeError):
                test["markers"] = marker_lists.setdefault(tuple(markers), markers)
        return test

    return slim


_NUMBER_TYPES = (int, float)
_OUTCOME_SET = frozenset(OUTCOMES)


def _sound(test: Mapping[str, Any]) -> bool:
    """The checks of :func:`_check_test`, at a fraction of their cost, without the message."""
    numbers = _NUMBER_TYPES
    try:
        durations = test["durations"]
        return (
            type(test["nodeid"]) is str
            and test["outcome"] in _OUTCOME_SET
            and type(test["worker"]) is str
            and type(test["duration"]) in numbers
            and type(test["start"]) in numbers
            and type(test["stop"]) in numbers
            and type(durations["setup"]) in numbers
            and type(durations["call"]) in numbers
            and type(durations["teardown"]) in numbers
        )
    except (KeyError, TypeError):
        return False


def validate(data: Any, source: str, *, tests_checked: bool = False) -> dict[str, Any]:
    """Check the shape of a report that was parsed from ``source``."""
    if not isinstance(data, dict):
        raise ReportError(f"{source}: not a testfleet timing report (top level is not an object)")
    schema = data.get("schema")
    if not isinstance(schema, str) or not schema.startswith(SCHEMA_NAME + "/"):
        raise ReportError(
            f"{source}: not a testfleet timing report (schema is {schema!r}, expected {SCHEMA!r})"
        )
    try:
        version = int(schema.split("/", 1)[1])
    except ValueError:
        raise ReportError(f"{source}: unknown schema {schema!r}") from None
    if version > SCHEMA_VERSION:
        raise ReportError(
            f"{source}: written by a newer testfleet (schema {schema}); this testfleet reads "
            f"up to {SCHEMA}: upgrade testfleet, or record a new report with this one"
        )
    if version < 1:
        raise ReportError(f"{source}: unknown schema {schema!r}")
    run = data.get("run")
    tests = data.get("tests")
    if not isinstance(run, dict):
        raise ReportError(f"{source}: 'run' is missing or not an object")
    if not isinstance(tests, list):
        raise ReportError(f"{source}: 'tests' is missing or not a list")
    for key in ("wall_seconds", "workers"):
        if not isinstance(run.get(key), int | float) or isinstance(run.get(key), bool):
            raise ReportError(f"{source}: run.{key} is missing or not a number")
    if not tests_checked:
        for index, test in enumerate(tests):
            if not (type(test) is dict and _sound(test)):
                _check_test(test, f"{source}: tests[{index}]")
    return data


def _check_test(test: Any, where: str) -> None:
    if not isinstance(test, dict):
        raise ReportError(f"{where} is not an object")
    if not isinstance(test.get("nodeid"), str):
        raise ReportError(f"{where}: 'nodeid' is missing or not a string")
    if test.get("outcome") not in OUTCOMES:
        raise ReportError(
            f"{where} ({test['nodeid']}): outcome {test.get('outcome')!r} is not one of "
            f"{', '.join(OUTCOMES)}"
        )
    numbers: list[Any] = [test.get("duration"), test.get("start"), test.get("stop")]
    durations = test.get("durations")
    if not isinstance(durations, dict):
        raise ReportError(f"{where} ({test['nodeid']}): 'durations' is missing or not an object")
    numbers += [durations.get(phase) for phase in PHASES]
    if not all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers):
        raise ReportError(f"{where} ({test['nodeid']}): a duration or time is not a number")
    if not isinstance(test.get("worker"), str):
        raise ReportError(f"{where} ({test['nodeid']}): 'worker' is missing or not a string")


def merge(reports: Sequence[Mapping[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """Join the reports of consecutive phases of one run (parallel, then serial) into one.

    The phases must hold different tests; the merged run's wall time is the sum of theirs.
    """
    if not reports:
        raise ReportError("nothing to merge: give at least one report")
    seen: dict[str, str] = {}
    tests: list[dict[str, Any]] = []
    for report, name in zip(reports, names, strict=True):
        for test in report["tests"]:
            key = f"{test['nodeid']}#{test.get('attempt', 1)}"
            if key in seen:
                raise ReportError(
                    f"{test['nodeid']} is in both {seen[key]} and {name}: merge joins phases "
                    "that ran different tests"
                )
            seen[key] = name
            tests.append(dict(test))
    tests.sort(key=lambda t: (t["nodeid"], t.get("attempt", 1)))
    runs = [dict(report["run"]) for report in reports]
    first = runs[0]
    busiest = max(runs, key=lambda r: r["workers"])
    run = dict(first)
    run.update(
        mode=busiest.get("mode", first.get("mode")),
        workers=busiest["workers"],
        dist=busiest.get("dist", "no"),
        start=min(r.get("start", 0.0) for r in runs),
        end=max(r.get("end", 0.0) for r in runs),
        wall_seconds=round(sum(float(r["wall_seconds"]) for r in runs), 6),
        exit_status=combine_exit_statuses([int(r.get("exit_status", 0)) for r in runs]),
        phases=runs,
    )
    return {"schema": SCHEMA, "run": run, "tests": tests, "summary": summarize(tests)}


def combine_exit_statuses(statuses: Sequence[int]) -> int:
    """One pytest exit status for consecutive phases of a run.

    A phase that collected nothing (5) does not spoil the others; any other non-zero
    status wins, failed tests (1) before the rest.
    """
    significant = [s for s in statuses if s != 5]
    if not significant:
        return 5 if statuses else 0
    if 1 in significant:
        return 1
    return max(significant)


@dataclass(frozen=True)
class Thresholds:
    """When a test counts as slower than in the baseline: both limits must be passed."""

    ratio: float = 1.5
    seconds: float = 0.1


def analyze(
    report: Mapping[str, Any],
    baseline: Mapping[str, Any] | None = None,
    top: int = 10,
    thresholds: Thresholds = Thresholds(),
) -> dict[str, Any]:
    """Everything ``testfleet report`` shows, as plain data."""
    # Imported here, as in the renderers: reading and merging reports (every
    # `testfleet run`) needs none of the schedule's analysis or its predictions.
    from testfleet.reporting import schedule as schedule_report

    run = report["run"]
    tests = report["tests"]
    wall = float(run["wall_seconds"])
    workers = int(run["workers"]) or 1
    # float(): whole numbers are valid durations too, and the output keeps one type.
    durations = list(map(float, map(itemgetter("duration"), tests)))
    total = sum(durations)
    per_marker: dict[str, list[float]] = defaultdict(list)
    per_file: dict[str, list[float]] = defaultdict(list)
    per_worker: dict[str, list[float]] = defaultdict(list)
    unmarked = per_marker["(none)"]
    # Markers lists repeat (load() shares equal ones): each is filtered once.
    visible: dict[int, list[str]] = {}
    for test, duration in zip(tests, durations, strict=True):
        markers = test.get("markers")
        if markers:
            shown = visible.get(id(markers))
            if shown is None:
                shown = visible[id(markers)] = schedule_report.visible_markers(markers)
            for marker in shown:
                per_marker[marker].append(duration)
            if not shown:
                unmarked.append(duration)
        else:
            unmarked.append(duration)
        per_file[test["nodeid"].partition("::")[0]].append(duration)
        per_worker[test["worker"]].append(duration)
    if not unmarked:
        del per_marker["(none)"]
    slowest = heapq.nlargest(max(top, 0), tests, key=itemgetter("duration"))
    result: dict[str, Any] = {
        "run": {
            key: run.get(key)
            for key in ("id", "mode", "workers", "dist", "seed", "git_commit", "wall_seconds")
        },
        "outcomes": summarize(tests)["outcomes"],
        "tests": len(tests),
        "duration_sum": round(total, 6),
        # Sum of test time over wall time: how many tests ran at once, on average.
        "concurrency": round(total / wall, 3) if wall > 0 else None,
        "parallel_efficiency": round(total / (wall * workers), 3) if wall > 0 else None,
        "slowest": [_brief(t) for t in slowest],
        "markers": _totals(per_marker)[: max(top, 0)],
        "files": _totals(per_file)[: max(top, 0)],
        "workers": [
            {
                "worker": name,
                "tests": len(durations),
                "busy_seconds": round(sum(durations), 6),
                "utilisation": round(sum(durations) / wall, 3) if wall > 0 else None,
            }
            for name, durations in sorted(per_worker.items())
        ][: max(top, 0)],
        "schedule": schedule_report.analyze(report, max(top, 0)),
    }
    if baseline is not None:
        result["baseline"] = compare(report, baseline, thresholds)
    return result


def _brief(test: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "nodeid": test["nodeid"],
        # float(): whole numbers are valid durations, and the output keeps one type.
        "duration": float(test["duration"]),
        "outcome": test["outcome"],
        "worker": test["worker"],
    }


def _totals(groups: Mapping[str, list[float]]) -> list[dict[str, Any]]:
    rows = [
        {"name": name, "tests": len(durations), "seconds": round(sum(durations), 6)}
        for name, durations in groups.items()
    ]
    return sorted(rows, key=lambda row: (-row["seconds"], row["name"]))


def compare(
    report: Mapping[str, Any], baseline: Mapping[str, Any], thresholds: Thresholds = Thresholds()
) -> dict[str, Any]:
    """Speedup of the whole run and per-test changes against a baseline report."""
    now, outcomes_now = _tests_by_id(report)
    before, outcomes_before = _tests_by_id(baseline)
    wall_now = float(report["run"]["wall_seconds"])
    wall_before = float(baseline["run"]["wall_seconds"])
    slower: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    ratio, seconds = thresholds.ratio, thresholds.seconds
    # One pass over the tests of both, and only the few that changed sorted: a
    # 100,000-test comparison stays quick.
    for nodeid, test in now.items():
        old_test = before.get(nodeid)
        if old_test is None:
            continue
        outcome = test["outcome"] if outcomes_now is None else outcomes_now[nodeid]
        old_outcome = old_test["outcome"] if outcomes_before is None else outcomes_before[nodeid]
        if outcome != old_outcome:
            changed.append({"nodeid": nodeid, "baseline": old_outcome, "current": outcome})
        # float(): a report written by another tool may hold whole numbers, and the
        # output keeps one type.
        new, old = float(test["duration"]), float(old_test["duration"])
        if new - old >= seconds and new >= old * ratio:
            slower.append(
                {
                    "nodeid": nodeid,
                    "baseline": round(old, 6),
                    "current": round(new, 6),
                    "ratio": round(new / old, 2) if old > 0 else None,
                }
            )
    changed.sort(key=lambda row: row["nodeid"])
    slower.sort(key=lambda row: row["nodeid"])
    slower.sort(key=lambda row: row["current"] - row["baseline"], reverse=True)
    return {
        "wall_seconds": round(wall_before, 6),
        "speedup": round(wall_before / wall_now, 3) if wall_now > 0 else None,
        "mode": baseline["run"].get("mode"),
        "workers": baseline["run"].get("workers"),
        "thresholds": {"ratio": thresholds.ratio, "seconds": thresholds.seconds},
        "slower": slower,
        "changed": changed,
        "added": sorted(now.keys() - before.keys()),
        "removed": sorted(before.keys() - now.keys()),
    }


def _tests_by_id(
    report: Mapping[str, Any],
) -> tuple[dict[str, Mapping[str, Any]], dict[str, str] | None]:
    """Each test by node id, its last attempt; and its first attempt's outcome if reruns differ.

    With several attempts of a test, the last one's duration stands for it, and the first
    attempt's outcome is the run's own result (later ones are reruns). Without reruns
    (the usual case) one dict gives both, and the second is None.
    """
    tests = report["tests"]
    last = {test["nodeid"]: test for test in tests}
    if len(last) == len(tests):
        return last, None
    # Read backwards, the first attempt is the last one written.
    return last, {test["nodeid"]: test["outcome"] for test in reversed(tests)}


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
    from testfleet.reporting import schedule as schedule_report

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


def _md_cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(cell) for cell in row) + " |" for row in rows]
    return lines


def _markdown(analysis: Mapping[str, Any]) -> str:
    from testfleet.reporting import schedule as schedule_report

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
        limits = base["thresholds"]
        out += [
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
    return "\n".join(out) + "\n"
