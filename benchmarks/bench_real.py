"""`testfleet run` against plain pytest-xdist on a real checkout, in interleaved rounds.

    python benchmarks/bench_real.py PATH [--python PY] [--workers N] [--rounds R] -- PYTEST_ARGS

PATH is a checkout already on this machine (nothing is downloaded); its tests run with
the Python of its own environment (``--python``), which must have pytest-xdist and
testfleet installed. Each round runs, in an order that rotates from round to round:

- ``load``: plain ``pytest -n N --dist load`` (testfleet's plugin switched off);
- ``worksteal``: the same with ``--dist worksteal``;
- ``warm``: ``testfleet run --workers N`` with the history of the earlier runs (a
  pytest cache, report and baseline kept across rounds; one untimed run first);
- ``cold``: ``testfleet run --workers N`` with no history at all (a fresh cache directory,
  no previous report, a fresh run history; the checkout must have no
  ``reports/test-timing-baseline.json``, which ``testfleet run`` would read).

Printed: per mode the median (minimum) wall seconds and the median CPU seconds of all
the processes of a run (the children's rusage), the speedup of ``warm`` over the best
plain mode, the verdicts against the targets (x1.15 warm, cold no more than 3 % slower),
and from the warm runs' own timing reports: the tests' span against the lower bound
max(sum / workers, longest), xdist's controller CPU per test, and the seconds after the
last test. On a shared machine only ratios measured within one run mean anything.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchenv import clean_env

MODES = ("load", "worksteal", "warm", "cold")
#: `warm` with the --patch-env variables: a prototype measured beside the rest.
PATCHED = "patched"
PLAIN_MODES = ("load", "worksteal")
#: The issue's target: `testfleet run` (warm) this much faster than the best plain mode,
WARM_TARGET = 1.15
#: ... and with no history no slower than it, within noise.
COLD_LIMIT = 0.97
#: Tests span within this factor of the lower bound max(sum / workers, longest).
SPAN_TARGET = 1.10
RUN_TIMEOUT = 3600.0


class BenchmarkError(Exception):
    """A run could not be measured; the message says why."""


@dataclass
class Run:
    mode: str
    wall: float
    cpu: float
    exit_status: int
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class Setup:
    path: Path
    python: Path
    workers: int
    pytest_args: list[str]
    work: Path
    allowed_exits: frozenset[int]
    env: dict[str, str]
    extra_env: dict[str, str] = field(default_factory=dict)
    patch_env: dict[str, str] = field(default_factory=dict)


def history_dir(setup: Setup, mode: str, round_no: int) -> Path:
    """Where a testfleet run keeps its report, cache and history."""
    return setup.work / (f"cold-{round_no}" if mode == "cold" else mode)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench_real.py",
        description="Time plain pytest-xdist against testfleet run on a real checkout.",
    )
    parser.add_argument("path", type=Path, help="the checkout to run (its root directory)")
    parser.add_argument(
        "--python",
        type=Path,
        default=Path(sys.executable),
        help="the Python of the suite's environment (default: this one)",
    )
    parser.add_argument("--workers", type=int, default=2, help="xdist workers (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3)")
    parser.add_argument(
        "--mode",
        action="append",
        choices=MODES,
        help="run only these modes (repeatable; default all four)",
    )
    parser.add_argument(
        "--allow-failures",
        action="store_true",
        help="accept exit status 1 (tests failed) as a measurable run",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for every run (repeatable), e.g. PYTHONPATH of a patch",
    )
    parser.add_argument(
        "--patch-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="adds a mode 'patched': testfleet run with its own history, as warm, and these "
        "variables (e.g. PYTHONPATH and PYTEST_PLUGINS of a prototype); repeatable",
    )
    parser.add_argument("--json", type=Path, help="also write every run's figures as JSON")
    # Everything after the first `--` goes to pytest untouched.
    argv = list(argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:cut])
    args.pytest_args = argv[cut + 1 :]
    if args.workers < 1 or args.rounds < 1:
        parser.error("--workers and --rounds must be at least 1")
    for item in [*args.env, *args.patch_env]:
        if "=" not in item:
            parser.error(f"--env/--patch-env {item!r}: write NAME=VALUE")
    return args


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def command(setup: Setup, mode: str, round_no: int) -> list[str]:
    """The command line of one run of `mode`."""
    python, workers = str(setup.python), str(setup.workers)
    if mode in PLAIN_MODES:
        return [
            python,
            "-m",
            "pytest",
            "-n",
            workers,
            "--dist",
            mode,
            "-p",
            "no:testfleet",
            *setup.pytest_args,
        ]
    place = history_dir(setup, mode, round_no)
    place.mkdir(parents=True, exist_ok=True)
    return [
        python,
        "-m",
        "testfleet",
        "run",
        "--workers",
        workers,
        "--report",
        str(place / "timing.json"),
        "--history-path",
        str(place / "history.sqlite"),
        "--",
        f"-o=cache_dir={place / 'cache'}",
        *setup.pytest_args,
    ]


def run_once(setup: Setup, mode: str, round_no: int) -> Run:
    argv = command(setup, mode, round_no)
    before = children_cpu()
    started = time.perf_counter()
    # A session of its own: a timeout or Ctrl-C ends the xdist workers too, not only pytest.
    with subprocess.Popen(
        argv,
        cwd=setup.path,
        env={
            **setup.env,
            **setup.extra_env,
            **(setup.patch_env if mode == PATCHED else {}),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            output, _ = process.communicate(timeout=RUN_TIMEOUT)
        except BaseException as error:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            if isinstance(error, subprocess.TimeoutExpired):
                raise BenchmarkError(f"{mode}: no end after {RUN_TIMEOUT:.0f} s: {argv}") from error
            raise
    returncode = process.returncode
    wall = time.perf_counter() - started
    cpu = children_cpu() - before
    if returncode not in setup.allowed_exits:
        tail = "\n".join(output.splitlines()[-15:])
        raise BenchmarkError(
            f"{mode}: exit status {returncode} (allowed: {sorted(setup.allowed_exits)};"
            f" --allow-failures accepts 1)\n$ {' '.join(argv)}\n{tail}"
        )
    run = Run(mode, wall, cpu, returncode)
    last = output.strip().splitlines()[-1:] or [""]
    run.facts["closing"] = last[0].strip("= ")
    if mode not in PLAIN_MODES:
        place = history_dir(setup, mode, round_no)
        run.facts.update(report_facts(place / "timing.json", setup.workers))
    if mode == "cold":
        shutil.rmtree(setup.work / f"cold-{round_no}", ignore_errors=True)
    return run


def report_facts(path: Path, workers: int) -> dict[str, Any]:
    """Span, lower bound and xdist's costs from a testfleet timing report."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BenchmarkError(f"{path}: no readable timing report ({error})") from error
    tests = data.get("tests", [])
    run = data.get("run", {})
    phases = run.get("phases") or [run]
    first = phases[0]
    facts: dict[str, Any] = {
        "tests": len(tests),
        "controller_cpu_per_test": first.get("controller_cpu_per_test"),
        "after_tests_seconds": first.get("after_tests_seconds"),
        "collection_seconds": first.get("collection_seconds"),
    }
    durations = [float(t["duration"]) for t in tests if t.get("worker") != "main"]
    starts = [float(t["start"]) for t in tests if t.get("start")]
    stops = [float(t["stop"]) for t in tests if t.get("stop")]
    if durations and starts and stops:
        bound = max(sum(durations) / workers, max(durations))
        span = max(stops) - min(starts)
        facts.update(span=span, lower_bound=bound, span_ratio=span / bound if bound else None)
    return facts


def order_of(round_no: int, modes: Sequence[str]) -> list[str]:
    shift = round_no % len(modes)
    return [*modes[shift:], *modes[:shift]]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(runs: Sequence[Run], modes: Sequence[str]) -> tuple[list[str], int]:
    """The printed lines and whether a target was missed (1) or not (0)."""
    by_mode = {m: [r for r in runs if r.mode == m] for m in modes}
    lines = [f"{'mode':<10} {'median s':>9} {'min s':>8} {'CPU s':>8}  closing line (last run)"]
    for mode in modes:
        got = by_mode[mode]
        walls = [r.wall for r in got]
        cpus = [r.cpu for r in got]
        closing = got[-1].facts.get("closing", "") if got else ""
        lines.append(
            f"{mode:<10} {median(walls):>9.2f} {min(walls):>8.2f} {median(cpus):>8.2f}  {closing}"
        )
    missed = 0
    plain = [m for m in PLAIN_MODES if by_mode.get(m)]
    if plain:
        best = min(plain, key=lambda m: median([r.wall for r in by_mode[m]]))
        best_wall = median([r.wall for r in by_mode[best]])
        targets = (("warm", WARM_TARGET), ("cold", COLD_LIMIT), (PATCHED, WARM_TARGET))
        for mode, target in targets:
            if not by_mode.get(mode):
                continue
            ratio = best_wall / median([r.wall for r in by_mode[mode]])
            ok = ratio >= target
            missed |= not ok
            lines.append(
                f"{mode}: x{ratio:.2f} against {best} (target x{target:.2f}): "
                f"{'met' if ok else 'NOT met'}"
            )
    for mode in ("warm", "cold", PATCHED):
        facts = [r.facts for r in by_mode.get(mode, []) if r.facts.get("span_ratio")]
        if not facts:
            continue

        def med(key: str, facts: list[dict[str, Any]] = facts) -> float:
            return median([float(f[key]) for f in facts if f.get(key) is not None])

        lines.append(
            f"{mode} report: {facts[-1]['tests']} tests, span {med('span'):.2f} s against "
            f"lower bound {med('lower_bound'):.2f} s (x{med('span_ratio'):.2f}, target "
            f"x{SPAN_TARGET:.2f}); controller CPU {1000 * med('controller_cpu_per_test'):.3f} "
            f"ms/test; {med('after_tests_seconds'):.2f} s after the last test; collection "
            f"{med('collection_seconds'):.2f} s"
        )
    return lines, missed


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    path: Path = args.path.resolve()
    if not path.is_dir():
        print(f"bench_real.py: {args.path}: no such directory (give a checkout)", file=sys.stderr)
        return 2
    python: Path = args.python
    if not (python.is_file() and os.access(python, os.X_OK)):
        print(f"bench_real.py: --python {python}: not an executable file", file=sys.stderr)
        return 2
    if (path / "reports" / "test-timing-baseline.json").exists():
        print(
            f"bench_real.py: {path}/reports/test-timing-baseline.json exists: cold runs would "
            "read it; move it away first",
            file=sys.stderr,
        )
        return 2
    modes = tuple(args.mode or MODES) + ((PATCHED,) if args.patch_env else ())
    extra = dict(item.split("=", 1) for item in args.env)
    patch = dict(item.split("=", 1) for item in args.patch_env)
    with tempfile.TemporaryDirectory(prefix="bench-real-") as tmp:
        setup = Setup(
            path=path,
            python=python,
            workers=args.workers,
            pytest_args=list(args.pytest_args),
            work=Path(tmp),
            allowed_exits=frozenset({0, 1} if args.allow_failures else {0}),
            env=clean_env(),
            extra_env=extra,
            patch_env=patch,
        )
        runs: list[Run] = []
        try:
            for mode in ("warm", PATCHED):
                if mode in modes:
                    print(f"warm-up: {mode}, untimed (the history its runs use)", flush=True)
                    run_once(setup, mode, 0)
            for round_no in range(1, args.rounds + 1):
                for mode in order_of(round_no, modes):
                    run = run_once(setup, mode, round_no)
                    runs.append(run)
                    print(
                        f"round {round_no} {mode:<10} {run.wall:7.2f} s  CPU {run.cpu:7.2f} s",
                        flush=True,
                    )
        except BenchmarkError as error:
            print(f"bench_real.py: {error}", file=sys.stderr)
            return 1
    lines, missed = summarize(runs, modes)
    print("\n".join(lines))
    if args.json is not None:
        document = {
            "path": str(path),
            "pytest_args": setup.pytest_args,
            "workers": setup.workers,
            "runs": [vars(r) for r in runs],
            "summary": lines,
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
