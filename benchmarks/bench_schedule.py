"""`testfleet run` against plain pytest-xdist on generated suites, in interleaved rounds.

Each suite is written to a temporary directory and run, round after round, as plain
``pytest -n auto`` with ``--dist load``, ``--dist worksteal`` and ``--dist loadgroup``,
and as ``testfleet run`` (its own scheduler and ``--workers auto``). The order of the
modes rotates each round, so that a disturbance of the machine hits all of them alike.
One untimed warm-up run of ``testfleet run`` comes first: the history it schedules
from. Every run must pass every test, or the benchmark stops.

Printed per suite: median and minimum wall time of each mode, and the speedup of
``testfleet run`` over the best plain mode as a ratio of medians and of minimums. For
the sleep-bound suite, also the speedup of its tests over their serial time on the
worker count ``testfleet run`` chose (sum of test durations over the span from the
first test's start to the last one's end, from its timing report).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchenv import clean_env

from testfleet.core.atomic import write_json_atomic

PLAIN_MODES = ("load", "worksteal", "loadgroup")
MODES = (*PLAIN_MODES, "testfleet")
#: Targets of the issue: skewed suite at least this much faster than the best plain mode,
SKEWED_TARGET = 1.15
#: ... no suite more than 3 % slower than it,
SLOWER_LIMIT = 0.97
#: ... and the sleep-bound suite's tests at least 0.9 x W faster than serially on W workers.
SLEEP_EFFICIENCY = 0.9
RUN_TIMEOUT = 900.0
REPORT = "reports/timing.json"
COMMON = ("-p", "no:randomly", "-q")

HEADER = """import time
import pytest


def busy(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
"""


class BenchmarkError(Exception):
    """A run failed: its time would not measure a working run."""


@dataclass
class Suite:
    name: str
    files: dict[str, str]
    expected: int
    times: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)
    efficiency: list[float] = field(default_factory=list)
    chosen_workers: list[int] = field(default_factory=list)


def _tests(lines: Sequence[str]) -> str:
    return HEADER + "\n\n" + "\n\n".join(lines) + "\n"


def uniform() -> Suite:
    body = [f"def test_u{i}():\n    time.sleep(0.01)" for i in range(300)]
    return Suite("uniform", {"test_uniform.py": _tests(body)}, 300)


def skewed() -> Suite:
    rng = random.Random(7)
    body = [
        f"def test_s{i}():\n    time.sleep({min(rng.lognormvariate(math.log(0.02), 0.8), 0.3):.4f})"
        for i in range(150)
    ]
    body.append("def test_zz_long_collected_last():\n    time.sleep(2.5)")
    return Suite("skewed", {"test_skewed.py": _tests(body)}, 151)


def sleep_bound() -> Suite:
    body = [f"def test_w{i}():\n    time.sleep(0.05)" for i in range(80)]
    return Suite("sleep-bound", {"test_waits.py": _tests(body)}, 80)


def cpu_bound() -> Suite:
    body = [f"def test_c{i}():\n    busy(0.03)" for i in range(100)]
    return Suite("cpu-bound", {"test_cpu.py": _tests(body)}, 100)


def grouped() -> Suite:
    body = [
        f'@pytest.mark.xdist_group("g{g}")\ndef test_g{g}_{i}():\n    time.sleep(0.02)'
        for g in range(20)
        for i in range(8)
    ]
    body += [f"def test_free{i}():\n    time.sleep(0.02)" for i in range(40)]
    return Suite("xdist_group", {"test_groups.py": _tests(body)}, 200)


def quick() -> Suite:
    files = {
        f"test_quick_{f}.py": "\n".join(f"def test_q{i}():\n    pass\n" for i in range(100))
        for f in range(50)
    }
    return Suite("5000 quick", files, 5000)


SUITES: dict[str, Callable[[], Suite]] = {
    "skewed": skewed,
    "sleep-bound": sleep_bound,
    "cpu-bound": cpu_bound,
    "xdist_group": grouped,
    "quick": quick,
    "uniform": uniform,
}


def command(mode: str) -> list[str]:
    if mode == "testfleet":
        return [sys.executable, "-m", "testfleet", "run", "--report", REPORT, "--", *COMMON]
    return [sys.executable, "-m", "pytest", "-n", "auto", "--dist", mode, *COMMON]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(directory: Path, mode: str, expected: int) -> tuple[float, float]:
    """Wall seconds and CPU seconds (of every process of the run) of one run."""
    cpu_before = children_cpu()
    started = time.perf_counter()
    done = subprocess.run(
        command(mode),
        cwd=directory,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    seconds = time.perf_counter() - started
    cpu = children_cpu() - cpu_before
    if done.returncode != 0 or f"{expected} passed" not in done.stdout:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise BenchmarkError(f"{mode} in {directory.name}: exit {done.returncode}\n{tail}")
    return seconds, cpu


def tests_speedup(directory: Path) -> tuple[float, int]:
    """Sum of test durations over their span, and the worker count, from the report."""
    data = json.loads((directory / REPORT).read_text(encoding="utf-8"))
    tests = data["tests"]
    span = max(t["stop"] for t in tests) - min(t["start"] for t in tests)
    return sum(t["duration"] for t in tests) / span, int(data["run"]["workers"])


def measure(suite: Suite, root: Path, rounds: int, echo: Callable[[str], None]) -> None:
    directory = root / suite.name.replace(" ", "-")
    directory.mkdir()
    (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    for name, text in suite.files.items():
        (directory / name).write_text(text, encoding="utf-8")
    # The warm-up: testfleet's history, and the files in the page cache for every mode.
    run_once(directory, "testfleet", suite.expected)
    for number in range(rounds):
        order = MODES[number % len(MODES) :] + MODES[: number % len(MODES)]
        for mode in order:
            seconds, cpu = run_once(directory, mode, suite.expected)
            suite.times.setdefault(mode, []).append(seconds)
            suite.cpu.setdefault(mode, []).append(cpu)
            if mode == "testfleet":
                speedup, workers = tests_speedup(directory)
                suite.efficiency.append(speedup / workers)
                suite.chosen_workers.append(workers)
        echo(f"  {suite.name}: round {number + 1}/{rounds} done")


def summary(suite: Suite) -> dict[str, Any]:
    medians = {mode: statistics.median(v) for mode, v in suite.times.items()}
    minimums = {mode: min(v) for mode, v in suite.times.items()}
    best_median = min(PLAIN_MODES, key=lambda m: medians[m])
    best_min = min(PLAIN_MODES, key=lambda m: minimums[m])
    return {
        "suite": suite.name,
        "medians": medians,
        "minimums": minimums,
        "best_plain_by_median": best_median,
        "speedup_medians": medians[best_median] / medians["testfleet"],
        "speedup_minimums": minimums[best_min] / minimums["testfleet"],
        "cpu_medians": {mode: statistics.median(v) for mode, v in suite.cpu.items()},
        "workers_chosen": suite.chosen_workers,
        "tests_speedup_per_worker": (
            statistics.median(suite.efficiency) if suite.efficiency else None
        ),
    }


def verdicts(row: dict[str, Any]) -> list[str]:
    found = []
    if row["speedup_medians"] < SLOWER_LIMIT:
        found.append(f"MORE THAN 3 % SLOWER than {row['best_plain_by_median']}")
    if row["suite"] == "skewed" and row["speedup_medians"] < SKEWED_TARGET:
        found.append(f"below the x{SKEWED_TARGET} target")
    if row["suite"] == "sleep-bound" and (row["tests_speedup_per_worker"] or 0) < SLEEP_EFFICIENCY:
        found.append(f"tests below {SLEEP_EFFICIENCY} x W speedup")
    return found or ["target met"]


def render(rows: Sequence[dict[str, Any]]) -> str:
    out = [
        "suite        | " + " | ".join(f"{m:>16}" for m in MODES) + " | x med | x min | verdict",
        "-" * 130,
    ]
    for row in rows:
        cells = [f"{row['medians'][m]:6.2f} ({row['minimums'][m]:6.2f})" for m in MODES]
        extra = ""
        if row["tests_speedup_per_worker"] is not None and row["suite"] == "sleep-bound":
            extra = (
                f"; workers {row['workers_chosen']}, tests' speedup per worker "
                f"{row['tests_speedup_per_worker']:.2f}"
            )
        out.append(
            f"{row['suite']:<12} | "
            + " | ".join(f"{c:>16}" for c in cells)
            + f" | {row['speedup_medians']:5.2f} | {row['speedup_minimums']:5.2f} | "
            + "; ".join(verdicts(row))
            + extra
        )
    out.append("cells: median (minimum) wall seconds; x: best plain mode / testfleet run")
    out.append("")
    out.append("CPU seconds of all the run's processes, median: " + ", ".join(MODES))
    for row in rows:
        cpu = row["cpu_medians"]
        out.append(f"{row['suite']:<12} | " + " | ".join(f"{cpu[m]:7.2f}" for m in MODES))
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3)")
    parser.add_argument(
        "--suite", action="append", choices=sorted(SUITES), help="only these suites (repeatable)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be 1 or more")

    def echo(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    rows = []
    with tempfile.TemporaryDirectory(prefix="testfleet-bench-schedule-") as tmp:
        for name in args.suite or list(SUITES):
            suite = SUITES[name]()
            echo(f"{suite.name}: {suite.expected} tests")
            try:
                measure(suite, Path(tmp), args.rounds, echo)
            except (BenchmarkError, subprocess.TimeoutExpired) as exc:
                print(f"bench_schedule: {exc}", file=sys.stderr)
                return 1
            rows.append(summary(suite))
            # Each suite's figures as soon as they are known: a long run cut short keeps them.
            echo(render(rows[-1:]))
    sys.stdout.write(render(rows))
    if args.json is not None:
        write_json_atomic(args.json, {"schema": "testfleet.bench-schedule/1", "suites": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
