"""Time `testfleet history` on a year of CI: 10,000 runs of a 1,000-test suite.

Three history files answer the same command, in interleaved rounds:

- ``small``: 50 runs, the window `testfleet history` looks at by default;
- ``year-pruned``: 10,000 runs, the newest 1,000 with their per-test results and the
  older ones folded into per-test totals, as `testfleet run` keeps it (pruning as it goes);
- ``year-unpruned``: 10,000 runs, all 10,000,000 per-test results kept.

The ratio of each to ``small`` says whether the answer depends on how much history
there is; the seconds say whether it stays "in seconds". The benchmark also times one
run's append to the pruned year (what each `testfleet run` pays) and the one-off prune
of the unpruned year. Every answer is checked: the newest runs listed, the planted flaky
tests found; a wrong answer stops the benchmark with exit status 1.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from benchenv import clean_env

from testfleet.core.atomic import write_json_atomic
from testfleet.history import schema
from testfleet.history.store import open_history
from testfleet.timing.records import OUTCOMES, TimingRecord, build_report

JSON_SCHEMA = "testfleet.bench-history/1"
PASSED, FAILED = OUTCOMES.index("passed"), OUTCOMES.index("failed")
#: Tests planted as flaky in the newest runs: fail, then pass on a rerun, every 5th run.
FLAKY = 3


class BenchmarkError(Exception):
    """A wrong answer: its time would not measure a working command."""


def _results(runs: int, tests: int, first: int, seed: int) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(seed)
    base = [0.005 + rng.random() * 0.2 for _ in range(tests)]
    for run in range(first, runs + 1):
        flaky_run = run > runs - 40 and run % 5 == 0
        for test in range(1, tests + 1):
            duration = base[test - 1] * (0.8 + 0.4 * rng.random())
            worker = f"gw{test % 4}"
            if flaky_run and test <= FLAKY:
                yield (run, test, 1, FAILED, duration, worker)
                yield (run, test, 2, PASSED, duration, "main")
            else:
                yield (run, test, 1, PASSED, duration, worker)


def build(path: Path, runs: int, tests: int, keep: int | None, seed: int = 1) -> float:
    """A history of ``runs`` runs; only the newest ``keep`` keep their results."""
    started = time.perf_counter()
    with open_history(path) as conn:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO tests (id, nodeid) VALUES (?, ?)",
            ((t, f"tests/test_mod{t % 50}.py::test_case_{t}") for t in range(1, tests + 1)),
        )
        first_detailed = 1 if keep is None else max(runs - keep + 1, 1)
        conn.executemany(
            "INSERT INTO runs (id, run_id, started, wall_seconds, workers, mode, git_commit, "
            "branch, exit_status, tests, failed, outcomes, duration_sum, detail) "
            "VALUES (?, ?, ?, ?, 4, 'parallel', ?, 'main', 0, ?, 0, '{}', ?, ?)",
            (
                (r, f"run{r:05d}", 1.7e9 + r * 3600, 30.0 + r % 7, f"c{r // 3}", tests,
                 tests * 0.1, int(r >= first_detailed))
                for r in range(1, runs + 1)
            ),
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO results (run, test, attempt, outcome, duration, worker) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            _results(runs, tests, first_detailed, seed),
        )
        if first_detailed > 1:
            folded = first_detailed - 1
            conn.executemany(
                "INSERT INTO test_totals VALUES (?, ?, 0, 0, ?, ?)",
                ((t, folded, folded * 0.1, 1.7e9 + folded * 3600) for t in range(1, tests + 1)),
            )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return time.perf_counter() - started


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def command(history: Path, *args: str) -> tuple[float, float, str]:
    """Wall and CPU seconds of one `testfleet history` process, and its output.

    CPU seconds are reported beside wall seconds: on a shared machine the wall time
    of a short command is mostly waiting for a core.
    """
    argv = [sys.executable, "-m", "testfleet", "history", *args, "--history-path", str(history)]
    cpu, started = _children_cpu(), time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=clean_env(), check=False)
    seconds, cpu = time.perf_counter() - started, _children_cpu() - cpu
    if done.returncode != 0:
        raise BenchmarkError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr}")
    return seconds, cpu, done.stdout


def check_answer(name: str, out: str, runs: int) -> None:
    data = json.loads(out)
    newest = data["runs"][-1]["run_id"]
    flaky = sorted(row["nodeid"] for row in data["flaky"])
    expected = sorted(f"tests/test_mod{t % 50}.py::test_case_{t}" for t in range(1, FLAKY + 1))
    if newest != f"run{runs:05d}" or flaky != expected or data["recorded_runs"] != runs:
        raise BenchmarkError(
            f"{name}: wrong answer: newest {newest}, flaky {flaky}, {data['recorded_runs']} runs"
        )


def one_run_report(path: Path, tests: int) -> None:
    records = [
        TimingRecord(f"tests/test_mod{t % 50}.py::test_case_{t}", f"gw{t % 4}", call=0.05,
                     start=2e9 + t * 0.01, stop=2e9 + t * 0.01 + 0.05)
        for t in range(1, tests + 1)
    ]  # fmt: skip
    run = {"id": "appended", "mode": "parallel", "workers": 4, "start": 2e9, "wall_seconds": 20}
    write_json_atomic(path, build_report(records, run))


def measure(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    files = {
        "small": (scratch / "small.sqlite", 50, None),
        "year-pruned": (scratch / "pruned.sqlite", args.runs, args.keep),
        "year-unpruned": (scratch / "unpruned.sqlite", args.runs, None),
    }
    built: dict[str, Any] = {}
    for name, (path, runs, keep) in files.items():
        seconds = build(path, runs, args.tests, keep)
        built[name] = {"runs": runs, "build_seconds": round(seconds, 1),
                       "megabytes": round(path.stat().st_size / 1e6, 1)}  # fmt: skip
        print(f"built {name}: {built[name]}", flush=True)
    names = [*files, "append-to-pruned"]
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    report = scratch / "one-run.json"
    one_run_report(report, args.tests)
    for round_number in range(1, args.rounds + 1):
        for name, (path, runs, _) in files.items():
            seconds, used, out = command(path, "--format", "json")
            check_answer(name, out, runs)
            times[name].append(seconds)
            cpu[name].append(used)
        target = scratch / "append.sqlite"
        shutil.copyfile(files["year-pruned"][0], target)
        seconds, used, _ = command(target, "import", str(report))
        times["append-to-pruned"].append(seconds)
        cpu["append-to-pruned"].append(used)
        print(
            f"round {round_number}: "
            + ", ".join(f"{k} {v[-1]:.2f}s (cpu {cpu[k][-1]:.2f}s)" for k, v in times.items()),
            flush=True,
        )
    unpruned = files["year-unpruned"][0]
    started = time.perf_counter()
    command(unpruned, "prune", "--keep-runs", str(args.keep))
    prune_seconds = time.perf_counter() - started
    with sqlite3.connect(unpruned) as conn:
        left = conn.execute("SELECT count(DISTINCT run) FROM results").fetchone()[0]
    conn.close()
    if left != args.keep:
        raise BenchmarkError(f"prune kept the results of {left} runs, not {args.keep}")
    medians = {name: round(statistics.median(values), 3) for name, values in times.items()}
    cpu_medians = {name: round(statistics.median(values), 3) for name, values in cpu.items()}
    small = cpu_medians["small"]
    return {
        "schema": JSON_SCHEMA,
        "history_schema": schema.SCHEMA_VERSION,
        "runs": args.runs,
        "tests": args.tests,
        "keep_runs": args.keep,
        "rounds": args.rounds,
        "files": built,
        "seconds": {name: [round(v, 3) for v in values] for name, values in times.items()},
        "median_seconds": medians,
        "cpu_seconds": {name: [round(v, 3) for v in values] for name, values in cpu.items()},
        "median_cpu_seconds": cpu_medians,
        "cpu_ratio_to_small": {n: round(m / small, 2) for n, m in cpu_medians.items() if small},
        "prune_unpruned_seconds": round(prune_seconds, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000, help="runs in a year (10000)")
    parser.add_argument("--tests", type=int, default=1_000, help="tests per run (1000)")
    parser.add_argument("--keep", type=int, default=1_000, help="runs with results (1000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument(
        "--max-seconds", type=float, default=5.0, help="--check limit per answer (5)"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 above --max-seconds")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        try:
            result = measure(args, Path(tmp))
        except BenchmarkError as exc:
            print(f"bench_history: {exc}", file=sys.stderr)
            return 1
    shown = ("files", "median_seconds", "median_cpu_seconds", "cpu_ratio_to_small")
    print(json.dumps({k: result[k] for k in (*shown, "prune_unpruned_seconds")}, indent=2))
    if args.json is not None:
        write_json_atomic(args.json, result)
    slow = {n: s for n, s in result["median_seconds"].items() if s > args.max_seconds}
    if args.check and slow:
        print(f"bench_history: slower than {args.max_seconds}s: {slow}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
