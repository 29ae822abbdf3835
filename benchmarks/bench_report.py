"""Time `testfleet report REPORT --baseline BASELINE` on a 100,000-test suite.

Two reports of the same 100,000 tests (lognormal durations, two workers, CPU time,
markers on some) are written in a temporary directory, one as the baseline with a few
planted changes: tests made slower, outcomes changed, tests added and removed. Each
round runs the command as a user would, in its own process, and records the wall time,
the CPU time and the peak memory (max RSS) of that process. The answer is checked
every round (the planted changes found, nothing else); a wrong answer stops the
benchmark with exit status 1.

Targets: at most 2 s of wall time and 200 MB of memory (medians). Peak memory is read
from ``wait4``'s ``ru_maxrss``, in kilobytes on Linux, where the targets apply.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchenv import clean_env

from testfleet.core.atomic import write_json_atomic
from testfleet.timing.records import TimingRecord, build_report

JSON_SCHEMA = "testfleet.bench-report/1"
TARGET_SECONDS = 2.0
TARGET_MB = 200.0
DEFAULT_TESTS = 100_000
DEFAULT_ROUNDS = 5
#: Planted in the baseline: how many tests of each kind of change.
SLOWER, CHANGED, ADDED, REMOVED = 25, 10, 30, 20


class BenchmarkError(Exception):
    """A wrong answer: its time would not measure a working command."""


def _records(tests: int, seed: int, offset: int = 0) -> list[TimingRecord]:
    rng = random.Random(seed)
    records = []
    clock = [1_800_000_000.0, 1_800_000_000.0]
    for index in range(offset, offset + tests):
        call = rng.lognormvariate(-6, 1.2)
        worker = index % 2
        start = clock[worker]
        clock[worker] += call + 0.0002
        records.append(
            TimingRecord(
                nodeid=_nodeid(index),
                worker=f"gw{worker}",
                setup=0.0001,
                call=call,
                teardown=0.0001,
                start=start,
                stop=start + call + 0.0002,
                cpu=call * 0.8,
                markers=["slow"] if index % 97 == 0 else [],
            )
        )
    return records


def _nodeid(index: int) -> str:
    return f"tests/test_mod{index // 200:04d}.py::test_case[{index}]"


def planted(tests: int) -> dict[str, list[str]]:
    """The node ids of the planted changes, by kind, as check() expects them."""
    kinds = {
        "slower": range(SLOWER),
        "changed": range(SLOWER, SLOWER + CHANGED),
        "added": range(tests - ADDED, tests),
        "removed": range(tests, tests + REMOVED),
    }
    return {kind: sorted(_nodeid(index) for index in indices) for kind, indices in kinds.items()}


def write_reports(directory: Path, tests: int) -> tuple[Path, Path]:
    """The current report and the baseline, with the planted changes in the baseline."""
    current = _records(tests, seed=1)
    for record in current[:SLOWER]:
        record.call = 0.5
    run = {"id": "current", "mode": "parallel", "workers": 2, "dist": "load", "wall_seconds": 60.0}
    report = directory / "current.json"
    write_json_atomic(report, build_report(current, run))
    # The baseline: the same tests, the first SLOWER ten times faster, the next with
    # another outcome, the last ADDED not yet there, and REMOVED more that are gone.
    before = _records(tests - ADDED, seed=1)
    for record in before[:SLOWER]:
        record.call = 0.05
    for record in before[SLOWER : SLOWER + CHANGED]:
        record.outcome = "failed"
    before += _records(REMOVED, seed=2, offset=tests)
    baseline = directory / "baseline.json"
    run = {**run, "id": "baseline", "mode": "serial", "workers": 1, "wall_seconds": 120.0}
    write_json_atomic(baseline, build_report(before, run))
    return report, baseline


def run_once(report: Path, baseline: Path, expected: dict[str, list[str]]) -> dict[str, float]:
    """One `testfleet report --format json` in its own process: seconds, CPU, MB."""
    command = [sys.executable, "-m", "testfleet.cli", "report", str(report)]
    command += ["--baseline", str(baseline), "--format", "json"]
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, env=clean_env())
        # wait4: this process's own usage, not the largest child's so far.
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise BenchmarkError(
                f"{' '.join(command)} exited {process.returncode}:\n{err.read().decode()}"
            )
        check(json.loads(out.read()), expected)
    return {"seconds": wall, "cpu": usage.ru_utime + usage.ru_stime, "mb": usage.ru_maxrss / 1024}


def check(analysis: dict[str, Any], expected: dict[str, list[str]]) -> None:
    """The planted changes, each test by its node id, and nothing else."""
    base = analysis["baseline"]
    found = {
        "slower": sorted(row["nodeid"] for row in base["slower"]),
        "changed": sorted(row["nodeid"] for row in base["changed"]),
        "added": sorted(base["added"]),
        "removed": sorted(base["removed"]),
    }
    if found != expected:
        wrong = [kind for kind in found if found[kind] != expected[kind]]
        raise BenchmarkError(f"wrong answer: the {', '.join(wrong)} tests are not the planted ones")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--tests", type=int, default=DEFAULT_TESTS)
    parser.add_argument("--json", type=Path, help="also write the figures here (atomically)")
    parser.add_argument("--check", action="store_true", help="exit 1 above a target")
    parser.add_argument("--write-to", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write_to is not None:
        write_reports(args.write_to, args.tests)
        return 0
    if args.rounds < 1 or args.tests <= SLOWER + CHANGED + ADDED:
        parser.error("--rounds must be at least 1 and --tests above the planted changes")
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        # Written by a process of its own: this one stays small, and the command's
        # memory is its own.
        subprocess.run(
            [sys.executable, __file__, "--write-to", tmp, "--tests", str(args.tests)], check=True
        )
        report, baseline = Path(tmp) / "current.json", Path(tmp) / "baseline.json"
        expected = planted(args.tests)
        sizes = {p.name: round(p.stat().st_size / 2**20, 1) for p in (report, baseline)}
        print(f"reports: {sizes} MB, {args.tests} tests", file=sys.stderr)
        try:
            run_once(report, baseline, expected)  # warm-up: file cache, .pyc files
            rounds = []
            for number in range(1, args.rounds + 1):
                rounds.append(run_once(report, baseline, expected))
                print(f"round {number}/{args.rounds}: {rounds[-1]}", file=sys.stderr)
        except BenchmarkError as exc:
            print(f"bench_report: {exc}", file=sys.stderr)
            return 1
    figures = {
        key: {
            "median": round(statistics.median(r[key] for r in rounds), 3),
            "min": round(min(r[key] for r in rounds), 3),
        }
        for key in ("seconds", "cpu", "mb")
    }
    ok = figures["seconds"]["median"] <= TARGET_SECONDS and figures["mb"]["median"] <= TARGET_MB
    print(f"testfleet report --baseline, {args.tests} tests, {args.rounds} rounds")
    print(f"{'':10}{'median':>10}{'min':>10}")
    for key, unit in (("seconds", "s wall"), ("cpu", "s CPU"), ("mb", "MB max RSS")):
        print(f"{unit:10}{figures[key]['median']:>10.3f}{figures[key]['min']:>10.3f}")
    verdict = "OK" if ok else "ABOVE TARGET"
    print(f"target: <= {TARGET_SECONDS} s and <= {TARGET_MB:.0f} MB (medians): {verdict}")
    if args.json is not None:
        write_json_atomic(
            args.json,
            {"schema": JSON_SCHEMA, "test_count": args.tests, "rounds": rounds, "figures": figures},
        )
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
