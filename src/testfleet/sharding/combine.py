"""Combine the timing reports (and coverage data) of a CI matrix's shards into one run.

Each shard's report carries ``run.shard``: its index, the shard count, digests of the
whole collection and of the plan, and the tests the plan gave it. That is enough to
check that the reports belong together and that every collected test ran exactly once,
without any machine having seen the others.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testfleet.core.workers import MAIN_WORKER
from testfleet.timing.records import SCHEMA, summarize
from testfleet.timing.report import ReportError, combine_exit_statuses

FORMATS = ("text", "markdown", "json")
RESULT_SCHEMA = "testfleet.combine/1"


class CombineError(ReportError):
    """Shard reports that do not make one run; the message names the shard."""


@dataclass
class Combined:
    """The combined report and what was found on the way."""

    report: dict[str, Any]
    shards: list[dict[str, Any]]
    #: Tests a shard was given but did not finish (it crashed or was stopped).
    missing: dict[int, list[str]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not any(self.missing.values())

    def to_json(self) -> dict[str, Any]:
        combined = self.report["run"]["combined"]
        return {
            "schema": RESULT_SCHEMA,
            "complete": self.complete,
            "collected": combined["collected"],
            "tests": self.report["summary"]["tests"],
            "outcomes": self.report["summary"]["outcomes"],
            "shards": self.shards,
            "missing": {str(index): ids for index, ids in sorted(self.missing.items())},
        }


def _shard_of(name: str, data: Mapping[str, Any]) -> dict[str, Any]:
    shard = data["run"].get("shard")
    if not isinstance(shard, dict) or not isinstance(shard.get("assigned"), list):
        raise CombineError(
            f"{name} is not the report of a shard (no run.shard): write shard reports with "
            "`testfleet run --shard I/N` or `pytest --testfleet-shard=I/N --testfleet-report=PATH`"
        )
    return shard


def check_shards(reports: Sequence[tuple[str, Mapping[str, Any]]]) -> list[int]:
    """Refuse reports that are not the N shards of one run; return each one's index."""
    if not reports:
        raise CombineError("nothing to combine: give the timing report of every shard")
    shards = [_shard_of(name, data) for name, data in reports]
    first_name, first = reports[0][0], shards[0]
    seen: dict[int, str] = {}
    for (name, data), shard in zip(reports, shards, strict=True):
        label = f"{name} (shard {shard['index']}/{shard['total']})"
        if shard["total"] != first["total"]:
            raise CombineError(
                f"{label} is one of {shard['total']} shards, but {first_name} is one of "
                f"{first['total']}: give the reports of one run's shards"
            )
        if shard["index"] in seen:
            raise CombineError(
                f"shard {shard['index']}/{shard['total']} is given twice: {seen[shard['index']]} "
                f"and {name}; give each shard's report once"
            )
        seen[shard["index"]] = name
        if shard["collection"] != first["collection"]:
            raise CombineError(
                f"{label} is from another collection ({shard['collected']} tests, "
                f"{shard['collection']}) than {first_name} ({first['collected']} tests, "
                f"{first['collection']}): the shards collected different tests; run them "
                "from one commit with the same pytest arguments"
            )
        if shard["plan"] != first["plan"]:
            raise CombineError(
                f"{label} split the collection another way than {first_name} (plan "
                f"{shard['plan']}, not {first['plan']}): the shards read different durations; "
                "commit the durations file so that every machine reads the same"
            )
        commit = data["run"].get("git_commit")
        if commit != reports[0][1]["run"].get("git_commit"):
            raise CombineError(
                f"{label} ran commit {commit}, {first_name} ran "
                f"{reports[0][1]['run'].get('git_commit')}: combine the shards of one commit"
            )
    absent = [i for i in range(1, int(first["total"]) + 1) if i not in seen]
    if absent:
        names = ", ".join(f"{i}/{first['total']}" for i in absent)
        raise CombineError(
            f"shard {names} is missing: no report of it among the {len(reports)} given; "
            "did that job upload its reports? Rerun it, or combine all of them"
        )
    return [int(shard["index"]) for shard in shards]


def _tests_of(
    name: str, data: Mapping[str, Any], index: int, owner: dict[str, int]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The shard's tests, renamed onto its machine's workers, and its unfinished ones."""
    tests: list[dict[str, Any]] = []
    for test in data["tests"]:
        if owner.get(test["nodeid"]) != index:
            where = owner.get(test["nodeid"])
            raise CombineError(
                f"{name} (shard {index}) ran {test['nodeid']}, which the plan gave to "
                + (f"shard {where}" if where else "no shard (it is not in the collection)")
                + ": the report is from another run; combine one run's shard reports"
            )
        renamed = dict(test)
        # Worker names repeat on every machine; a shard prefix keeps each order apart.
        renamed["worker"] = f"shard{index}-{test.get('worker', MAIN_WORKER)}"
        tests.append(renamed)
    finished = {t["nodeid"] for t in tests}
    missing = sorted(t for t, i in owner.items() if i == index and t not in finished)
    return tests, missing


def combine(reports: Sequence[tuple[str, Mapping[str, Any]]]) -> Combined:
    """One report of the run the shards make together; refuse shards that do not fit."""
    indexes = check_shards(reports)
    owner: dict[str, int] = {}
    for (name, data), index in zip(reports, indexes, strict=True):
        for nodeid in data["run"]["shard"]["assigned"]:
            if nodeid in owner:
                raise CombineError(
                    f"{nodeid} is assigned to shard {owner[nodeid]} and to shard {index} "
                    f"({name}): the shard reports are not of one plan"
                )
            owner[nodeid] = index
    first = reports[0][1]["run"]["shard"]
    if len(owner) != first["collected"]:
        raise CombineError(
            f"the shards were given {len(owner)} tests, but the collection had "
            f"{first['collected']}: the shard reports are not of one plan"
        )
    tests: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    missing: dict[int, list[str]] = {}
    for (name, data), index in sorted(zip(reports, indexes, strict=True), key=lambda p: p[1]):
        got, unfinished = _tests_of(name, data, index, owner)
        tests.extend(got)
        missing[index] = unfinished
        rows.append(_row(name, data, index, got, unfinished))
    duplicates = [
        k for k, n in Counter((t["nodeid"], t.get("attempt", 1)) for t in tests).items() if n > 1
    ]
    if duplicates:
        raise CombineError(f"{duplicates[0][0]} is in a shard report twice: the report is damaged")
    tests.sort(key=lambda t: (t["nodeid"], t.get("attempt", 1)))
    run = _combined_run([data["run"] for _, data in reports], rows, first, missing)
    report = {"schema": SCHEMA, "run": run, "tests": tests, "summary": summarize(tests)}
    return Combined(report, rows, {i: ids for i, ids in missing.items() if ids})


def _row(
    name: str,
    data: Mapping[str, Any],
    index: int,
    tests: Sequence[Mapping[str, Any]],
    unfinished: Sequence[str],
) -> dict[str, Any]:
    run, shard = data["run"], data["run"]["shard"]
    return {
        "index": index,
        "report": name,
        "run_id": run.get("id"),
        "tests": len(shard["assigned"]),
        "finished": len({t["nodeid"] for t in tests}),
        "missing": len(unfinished),
        "predicted_seconds": shard.get("predicted_seconds"),
        "measured_seconds": round(sum(float(t["duration"]) for t in tests), 3),
        "wall_seconds": round(float(run["wall_seconds"]), 3),
        "workers": run["workers"],
        "exit_status": int(run.get("exit_status", 0)),
    }


def _combined_run(
    runs: Sequence[Mapping[str, Any]],
    rows: Sequence[Mapping[str, Any]],
    shard: Mapping[str, Any],
    missing: Mapping[int, list[str]],
) -> dict[str, Any]:
    ids = {r.get("id") for r in runs}
    statuses = [int(row["exit_status"]) for row in rows]
    if any(missing.values()):
        statuses.append(1)
    run = {key: value for key, value in runs[0].items() if key not in ("shard", "phases")}
    run.update(
        id=ids.pop() if len(ids) == 1 else "+".join(str(row["run_id"]) for row in rows),
        workers=sum(int(r["workers"]) for r in runs),
        start=min(float(r.get("start", 0.0)) for r in runs),
        end=max(float(r.get("end", 0.0)) for r in runs),
        # The shards run at once, on machines of their own: the run takes the longest one.
        wall_seconds=max(float(r["wall_seconds"]) for r in runs),
        exit_status=combine_exit_statuses(statuses),
        combined={
            "total": shard["total"],
            "collection": shard["collection"],
            "collected": shard["collected"],
            "plan": shard["plan"],
            "durations": shard.get("durations"),
            "missing": sorted(t for ids in missing.values() for t in ids),
        },
        shards=list(rows),
    )
    return run


def combine_coverage(data_files: Sequence[Path], output: Path | None) -> Path:
    """Combine the shards' coverage data files into one, remapped by the ``[paths]`` setting."""
    try:
        import coverage
    except ImportError:
        raise CombineError(
            "combining coverage data needs coverage.py: pip install coverage"
        ) from None
    absent = [str(path) for path in data_files if not path.is_file()]
    if absent:
        raise CombineError(
            f"no coverage data file at {', '.join(absent)}: did the shard upload it?"
        )
    cov = coverage.Coverage(data_file=str(output) if output is not None else None)
    # Start from nothing: the data file of an earlier local run must not join the shards'.
    cov.erase()
    # keep: the shards' files are the inputs of record; strict: refuse an empty input.
    cov.combine([str(path) for path in data_files], strict=True, keep=True)
    cov.save()
    return Path(cov.get_data().data_filename())


def render(combined: Combined, fmt: str) -> str:
    """The combine result: one line per shard, then the tests a crashed shard did not finish."""
    if fmt == "json":
        return json.dumps(combined.to_json(), indent=2) + "\n"
    header = ("shard", "tests", "finished", "predicted s", "measured s", "wall s", "exit")
    rows = [
        (
            str(row["index"]),
            str(row["tests"]),
            str(row["finished"]),
            "-" if row["predicted_seconds"] is None else f"{row['predicted_seconds']:.2f}",
            f"{row['measured_seconds']:.2f}",
            f"{row['wall_seconds']:.2f}",
            str(row["exit_status"]),
        )
        for row in combined.shards
    ]
    summary = combined.report["summary"]
    run = combined.report["run"]
    head = (
        f"{summary['tests']} of {run['combined']['collected']} tests from "
        f"{len(combined.shards)} shards, wall {run['wall_seconds']:.2f} s (the longest shard)"
    )
    missing = [
        f"shard {index} did not finish {len(ids)} test(s): {', '.join(ids[:20])}"
        + (" ..." if len(ids) > 20 else "")
        for index, ids in sorted(combined.missing.items())
    ]
    if fmt == "markdown":
        lines = ["### testfleet: shards combined", "", head, "", "| " + " | ".join(header) + " |"]
        lines.append("|" + "---:|" * len(header))
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines += ["", *(f"- :warning: {line}" for line in missing)] if missing else []
        return "\n".join(lines) + "\n"
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = [f"testfleet: combined {head}"]
    lines.append("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines += [f"testfleet: {line}" for line in missing]
    return "\n".join(lines) + "\n"
