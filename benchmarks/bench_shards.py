"""Shards on a generated suite: predicted against measured shard times, and what sharding costs.

The suite's tests sleep for seeded, long-tailed durations (with an `xdist_group` and
`serial` tests). One serial run records the baseline the split is chosen from. Then,
round after round, the configurations run in turn (the first one rotates):

- ``full``: the whole suite in one pytest run;
- ``N shards``: shard 1/N, 2/N, ... N/N, one after another, on this one machine.

For each shard count it reports each shard's predicted seconds (from the baseline)
against its measured test time, the imbalance (longest shard over the mean), and the
overhead of sharding: the wall time of the N runs one after another over the full
run's (N collections and start-ups instead of one). On real CI the shards run at
once, so the wall time there is the longest shard plus one start-up.
"""

from __future__ import annotations

import argparse
import json
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

JSON_SCHEMA = "testfleet.bench-shards/1"
COMMON_ARGS = ("-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:xdist")
RUN_TIMEOUT = 600.0


class BenchmarkError(Exception):
    """A run failed or its report is wrong: the figures would not measure a working feature."""


def write_suite(root: Path, tests: int, seconds: float, seed: int) -> dict[str, float]:
    """A suite of ``tests`` sleeping tests, ``seconds`` in all; the sleeps per node id."""
    rng = random.Random(seed)
    weights = [rng.lognormvariate(0.0, 1.0) for _ in range(tests)]
    scale = seconds / sum(weights)
    sleeps: dict[str, float] = {}
    files: dict[int, list[str]] = {}
    for number, weight in enumerate(weights):
        sleep = round(weight * scale, 4)
        module = number % 8
        marks = ""
        if number % 13 == 0:
            marks = '@pytest.mark.xdist_group("db")\n'
        elif number % 29 == 5:
            marks = "@pytest.mark.serial\n"
        files.setdefault(module, []).append(
            f"{marks}def test_{number}():\n    time.sleep({sleep})\n"
        )
        sleeps[f"tests/test_m{module}.py::test_{number}"] = sleep
    (root / "tests").mkdir()
    for module, bodies in files.items():
        text = "import time\n\nimport pytest\n\n\n" + "\n\n".join(bodies)
        (root / "tests" / f"test_m{module}.py").write_text(text)
    (root / "pytest.ini").write_text(
        "[pytest]\naddopts = --strict-markers\nmarkers =\n    serial: alone\n"
        "    xdist_group: group\n"
    )
    return sleeps


def run_pytest(root: Path, *args: str) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *COMMON_ARGS, *args],
        cwd=root,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise BenchmarkError(f"pytest {' '.join(args)} failed:\n{result.stdout[-2000:]}")
    return wall


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def run_shards(root: Path, total: int, expected: set[str]) -> dict[str, Any]:
    """Shard 1/N .. N/N one after another; every test must run exactly once."""
    walls, measured, predicted, ran = [], [], [], []
    for index in range(1, total + 1):
        report = root / f"shard-{index}-of-{total}.json"
        walls.append(
            run_pytest(
                root, "--testfleet-shard", f"{index}/{total}", "--testfleet-report", str(report)
            )
        )
        data = load(report)
        measured.append(sum(float(t["duration"]) for t in data["tests"]))
        predicted.append(float(data["run"]["shard"]["predicted_seconds"]))
        ran += [t["nodeid"] for t in data["tests"]]
    if sorted(ran) != sorted(expected):
        raise BenchmarkError(f"{total} shards did not run every test exactly once")
    return {"walls": walls, "measured": measured, "predicted": predicted}


def measure(root: Path, counts: Sequence[int], rounds: int, expected: set[str]) -> dict[str, Any]:
    names = ["full", *(f"{n} shards" for n in counts)]
    results: dict[str, list[Any]] = {name: [] for name in names}
    for round_number in range(rounds):
        order = names[round_number % len(names) :] + names[: round_number % len(names)]
        for name in order:
            print(f"round {round_number + 1}/{rounds}: {name}", file=sys.stderr)
            if name == "full":
                results[name].append(run_pytest(root))
            else:
                results[name].append(run_shards(root, int(name.split()[0]), expected))
    return results


def summarize(results: dict[str, list[Any]], counts: Sequence[int]) -> dict[str, Any]:
    full = statistics.median(results["full"])
    rows = []
    for total in counts:
        runs = results[f"{total} shards"]
        predicted = runs[0]["predicted"]
        measured = [statistics.median(r["measured"][i] for r in runs) for i in range(total)]
        sequential = statistics.median(sum(r["walls"]) for r in runs)
        mean = sum(measured) / total
        rows.append(
            {
                "shards": total,
                "predicted_seconds": predicted,
                "measured_seconds": [round(m, 3) for m in measured],
                "worst_prediction_error_percent": round(
                    max(abs(m / p - 1) for m, p in zip(measured, predicted, strict=True) if p)
                    * 100,
                    1,
                ),
                "measured_imbalance_percent": round((max(measured) / mean - 1) * 100, 1),
                "sequential_wall_seconds": round(sequential, 3),
                "overhead_percent": round((sequential / full - 1) * 100, 1),
                "longest_shard_wall_seconds": round(
                    statistics.median(max(r["walls"]) for r in runs), 3
                ),
            }
        )
    return {"full_wall_seconds": round(full, 3), "shards": rows}


def render(summary: dict[str, Any]) -> str:
    lines = [f"full run: {summary['full_wall_seconds']:.2f} s (median)", ""]
    for row in summary["shards"]:
        lines.append(f"{row['shards']} shards:")
        lines.append("  shard  predicted s  measured s")
        for index, (p, m) in enumerate(
            zip(row["predicted_seconds"], row["measured_seconds"], strict=True), 1
        ):
            lines.append(f"  {index:5}  {p:11.2f}  {m:10.2f}")
        lines.append(
            f"  worst prediction error {row['worst_prediction_error_percent']:.1f} %, "
            f"longest shard {row['measured_imbalance_percent']:.1f} % over the mean"
        )
        lines.append(
            f"  {row['shards']} shards one after another: {row['sequential_wall_seconds']:.2f} s, "
            f"{row['overhead_percent']:+.1f} % against the full run; longest shard "
            f"{row['longest_shard_wall_seconds']:.2f} s"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3)")
    parser.add_argument("--tests", type=int, default=80, help="generated tests (default 80)")
    parser.add_argument(
        "--seconds", type=float, default=4.0, help="their total sleep (default 4.0)"
    )
    parser.add_argument(
        "--shards", type=int, nargs="+", default=[2, 4], help="shard counts (default 2 4)"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the durations")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.tests < 1 or args.seconds <= 0 or min(args.shards) < 1:
        parser.error("--rounds, --tests, --seconds and --shards must be positive")
    with tempfile.TemporaryDirectory(prefix="bench-shards-") as tmp:
        root = Path(tmp)
        sleeps = write_suite(root, args.tests, args.seconds, args.seed)
        baseline = root / "reports" / "test-timing-baseline.json"
        try:
            run_pytest(root, "--testfleet-report", str(baseline))
            results = measure(root, args.shards, args.rounds, set(sleeps))
        except (BenchmarkError, subprocess.TimeoutExpired) as exc:
            print(f"bench_shards: error: {exc}", file=sys.stderr)
            return 1
    summary = summarize(results, args.shards)
    sys.stdout.write(render(summary))
    if args.json is not None:
        write_json_atomic(
            args.json,
            {
                "schema": JSON_SCHEMA,
                "args": vars(args) | {"json": str(args.json)},
                "raw": results,
                **summary,
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
