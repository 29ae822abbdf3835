"""Measure the wall time testfleet adds to a pytest run, serial and on two xdist workers."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from benchenv import clean_env

from testfleet.core.atomic import write_json_atomic

#: The most wall time ``--testfleet-report`` may add, in percent of a run without it.
TARGET_PERCENT = 3.0
DEFAULT_ROUNDS = 7
DEFAULT_TESTS = 2000
TESTS_PER_FILE = 100
REPORT_NAME = "out.json"
#: A run of a few thousand trivial tests takes seconds; this only stops a hung run.
RUN_TIMEOUT = 600.0
JSON_SCHEMA = "testfleet.bench-overhead/1"

# Every run: no cache (it would be written by one run and read by the next) and no
# random order (pytest-randomly would reseed and reorder each run differently).
COMMON_ARGS = ("-q", "-p", "no:cacheprovider", "-p", "no:randomly")


class BenchmarkError(Exception):
    """A run failed or wrote a wrong report: the figures would not measure a working feature."""


@dataclass(frozen=True)
class Setup:
    """One measured configuration: how tests are run and what testfleet is asked to do."""

    name: str
    mode: str
    plugin: str
    args: tuple[str, ...]

    @property
    def writes_report(self) -> bool:
        return self.plugin == "report"


def setups() -> list[Setup]:
    """The six configurations: serial and ``-n 2``, each with testfleet off, idle and reporting."""
    modes = {"serial": ("-p", "no:xdist"), "-n 2": ("-n", "2")}
    plugins = {
        "disabled": ("-p", "no:testfleet"),
        # Installed and loaded through its entry point, but given no testfleet option.
        "installed": (),
        "report": ("--testfleet-report", REPORT_NAME),
    }
    return [
        Setup(f"{mode} {plugin}", mode, plugin, (*COMMON_ARGS, *mode_args, *plugin_args))
        for mode, mode_args in modes.items()
        for plugin, plugin_args in plugins.items()
    ]


def positive_int(text: str) -> int:
    """Parse a whole number of at least 1 for ``--rounds`` and ``--tests``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; use e.g. 7") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is below 1; use a whole number such as 7")
    return value


def file_sizes(tests: int) -> list[int]:
    """How many tests each generated file holds: ``tests`` spread over files of at most 100."""
    files = -(-tests // TESTS_PER_FILE)
    base, extra = divmod(tests, files)
    return [base + (1 if index < extra else 0) for index in range(files)]


def write_suite(root: Path, tests: int) -> set[str]:
    """Write a suite of ``tests`` trivial tests under ``root``; return their node ids."""
    # An ini file in the suite makes it the rootdir, so no outer pytest.ini or
    # pyproject.toml (with its addopts and filterwarnings) is picked up.
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    nodeids: set[str] = set()
    for index, size in enumerate(file_sizes(tests)):
        name = f"test_generated_{index:03d}.py"
        plain = size // 2
        params = size - plain
        lines = ["import pytest", ""]
        for number in range(plain):
            lines += ["", f"def test_plain_{number:03d}():", "    pass", ""]
            nodeids.add(f"{name}::test_plain_{number:03d}")
        lines += [
            "",
            f"@pytest.mark.parametrize('value', range({params}))",
            "def test_param(value):",
            "    assert value >= 0",
        ]
        nodeids.update(f"{name}::test_param[{value}]" for value in range(params))
        (root / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return nodeids


def run_once(setup: Setup, root: Path, nodeids: set[str], env: dict[str, str]) -> float:
    """Run pytest once in ``setup``, check that it worked, and return its wall time in seconds."""
    report = root / REPORT_NAME
    # A report left by an earlier run would pass the check below without this run writing it.
    report.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pytest", *setup.args]
    start = time.perf_counter()
    try:
        result = subprocess.run(
            command,
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchmarkError(
            f"{setup.name}: pytest ran longer than {RUN_TIMEOUT:.0f}s: {shlex.join(command)}"
        ) from None
    elapsed = time.perf_counter() - start
    expected = f"{len(nodeids)} passed"
    if result.returncode != 0 or expected not in result.stdout:
        raise BenchmarkError(
            f"{setup.name}: pytest exited {result.returncode} without {expected!r}: "
            f"{shlex.join(command)}\n{tail(result.stdout + result.stderr)}"
        )
    if setup.writes_report:
        check_report(setup, report, nodeids)
    return elapsed


def check_report(setup: Setup, path: Path, nodeids: set[str]) -> None:
    """Fail unless ``path`` lists every generated test exactly once, all passed."""
    if not path.is_file():
        raise BenchmarkError(f"{setup.name}: no report at {path} after the run")
    data = json.loads(path.read_text(encoding="utf-8"))
    listed = [test["nodeid"] for test in data.get("tests", [])]
    if len(listed) != len(nodeids) or set(listed) != nodeids:
        missing = sorted(nodeids - set(listed))[:5]
        extra = sorted(set(listed) - nodeids)[:5]
        raise BenchmarkError(
            f"{setup.name}: the report lists {len(listed)} tests ({len(set(listed))} distinct), "
            f"expected {len(nodeids)}; missing e.g. {missing}, unexpected e.g. {extra}"
        )
    failed = [test["nodeid"] for test in data["tests"] if test.get("outcome") != "passed"]
    if failed:
        raise BenchmarkError(f"{setup.name}: the report says {failed[:5]} did not pass")


def tail(text: str, lines: int = 30) -> str:
    """The last ``lines`` lines of a run's output, for an error message."""
    return "\n".join(text.splitlines()[-lines:])


def measure(
    all_setups: Sequence[Setup], rounds: int, tests: int, log: TextIO = sys.stderr
) -> dict[str, list[float]]:
    """Time every setup ``rounds`` times, interleaved, after one untimed warm-up round."""
    times: dict[str, list[float]] = {setup.name: [] for setup in all_setups}
    env = clean_env()
    with tempfile.TemporaryDirectory(prefix="testfleet-bench-") as tmp:
        root = Path(tmp)
        nodeids = write_suite(root, tests)
        # The warm-up fills the OS file cache and imports' bytecode caches, which would
        # otherwise make whichever setup runs first look slow.
        for setup in all_setups:
            print(f"warm-up: {setup.name}", file=log, flush=True)
            run_once(setup, root, nodeids, env)
        for number in range(rounds):
            # Round-robin, so slow drifts of the machine touch every setup alike; the
            # start rotates so no setup always runs right after the same neighbour.
            shift = number % len(all_setups)
            order = [*all_setups[shift:], *all_setups[:shift]]
            for setup in order:
                elapsed = run_once(setup, root, nodeids, env)
                times[setup.name].append(elapsed)
                print(
                    f"round {number + 1}/{rounds}: {setup.name:<16} {elapsed:7.3f}s",
                    file=log,
                    flush=True,
                )
    return times


def added_percent(with_times: Sequence[float], without_times: Sequence[float]) -> dict[str, float]:
    """Wall time added by going from ``without_times`` to ``with_times``, in percent, three ways."""
    paired = [w / wo for w, wo in zip(with_times, without_times, strict=True)]
    return {
        "medians": (statistics.median(with_times) / statistics.median(without_times) - 1) * 100,
        "mins": (min(with_times) / min(without_times) - 1) * 100,
        # Both runs of a pair come from the same round, so drift between rounds cancels.
        "paired": (statistics.median(paired) - 1) * 100,
    }


def summarize(all_setups: Sequence[Setup], times: dict[str, list[float]]) -> dict[str, Any]:
    """Medians, minimums and the overhead ratios of the measured times."""
    stats = {
        setup.name: {
            "args": list(setup.args),
            "times": [round(t, 6) for t in times[setup.name]],
            "median": round(statistics.median(times[setup.name]), 6),
            "min": round(min(times[setup.name]), 6),
        }
        for setup in all_setups
    }
    overhead = []
    for mode in ("serial", "-n 2"):
        for label, with_name, without_name in (
            ("--testfleet-report", "report", "installed"),
            ("installed, unused", "installed", "disabled"),
        ):
            with_times = times[f"{mode} {with_name}"]
            without_times = times[f"{mode} {without_name}"]
            row: dict[str, Any] = {
                "mode": mode,
                "what": label,
                "compares": f"{mode} {with_name} / {mode} {without_name}",
                **added_percent(with_times, without_times),
            }
            # The target is about the report option; the idle plugin is shown for context.
            if with_name == "report":
                row["within_target"] = row["medians"] < TARGET_PERCENT
            overhead.append(row)
    return {"setups": stats, "overhead": overhead}


def render(summary: dict[str, Any], rounds: int, tests: int) -> str:
    """The results as a plain-text table for the terminal."""
    out = [
        f"testfleet overhead: {tests} trivial tests, {rounds} timed round(s) after 1 warm-up, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPU(s)",
        "",
        f"{'configuration':<18}{'median':>10}{'min':>10}{'runs':>6}",
    ]
    for name, stat in summary["setups"].items():
        out.append(f"{name:<18}{stat['median']:>9.3f}s{stat['min']:>9.3f}s{len(stat['times']):>6}")
    out += [
        "",
        "added wall time (with / without - 1; medians: ratio of medians, mins: ratio of",
        "minimums, paired: median of the per-round ratios)",
        f"{'':<28}{'medians':>9}{'mins':>9}{'paired':>9}  compares",
    ]
    for row in summary["overhead"]:
        label = f"{row['mode']:<7}{row['what']}"
        out.append(
            f"{label:<28}{row['medians']:>+8.2f}%{row['mins']:>+8.2f}%{row['paired']:>+8.2f}%"
            f"  {row['compares']}"
        )
    verdicts = [
        f"{row['mode']} {row['medians']:+.2f}% {'OK' if row['within_target'] else 'ABOVE TARGET'}"
        for row in summary["overhead"]
        if "within_target" in row
    ]
    out += [
        "",
        f"target: --testfleet-report adds under {TARGET_PERCENT:.0f}% wall time "
        f"(ratio of medians): {'; '.join(verdicts)}",
        "",
        "commands, run in the generated suite's directory:",
    ]
    out += [
        f"  {name:<18}{shlex.join(['python', '-m', 'pytest', *stat['args']])}"
        for name, stat in summary["setups"].items()
    ]
    return "\n".join(out) + "\n"


def count_instructions(
    setup: Setup, root: Path, nodeids: set[str], env: dict[str, str], out_dir: Path
) -> int:
    """Instructions of one run of ``setup`` under valgrind's callgrind, every process summed.

    A count, not a time: the same for the same code whatever else the machine does, so
    that a difference of a few percent shows on a machine whose speed varies by more.
    xdist's controller waits for its workers with timeouts, and which worker runs which
    test varies, so a run on workers varies a little from run to run; a run in one
    process does not.
    """
    report = root / REPORT_NAME
    report.unlink(missing_ok=True)
    prefix = out_dir / setup.name.replace(" ", "_")
    command = [
        "valgrind",
        "--tool=callgrind",
        "--trace-children=yes",
        f"--callgrind-out-file={prefix}.%p",
        sys.executable,
        "-m",
        "pytest",
        *setup.args,
    ]
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0 or f"{len(nodeids)} passed" not in result.stdout:
        raise BenchmarkError(
            f"{setup.name}: pytest under valgrind exited {result.returncode}: "
            f"{shlex.join(command)}\n{tail(result.stdout + result.stderr)}"
        )
    if setup.writes_report:
        check_report(setup, report, nodeids)
    total = 0
    for output in out_dir.glob(f"{prefix.name}.*"):
        for line in output.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("summary:"):
                total += int(line.split()[1])
        output.unlink()
    if not total:
        raise BenchmarkError(f"{setup.name}: callgrind wrote no instruction count")
    return total


def measure_instructions(
    all_setups: Sequence[Setup], tests: int, log: TextIO = sys.stderr
) -> dict[str, int]:
    """Instructions of each setup's run, after one untimed warm-up run of each."""
    counts: dict[str, int] = {}
    # A fixed hash seed: with a random one, sets and dicts of strings lay out differently
    # from run to run, which moves a run's count by about half a percent.
    env = {**clean_env(), "PYTHONHASHSEED": "0"}
    with tempfile.TemporaryDirectory(prefix="testfleet-bench-") as tmp:
        root = Path(tmp) / "suite"
        root.mkdir()
        nodeids = write_suite(root, tests)
        for setup in all_setups:
            # The warm-up writes the bytecode caches, which would count for the first run.
            run_once(setup, root, nodeids, env)
        for setup in all_setups:
            print(f"callgrind: {setup.name} (minutes)", file=log, flush=True)
            counts[setup.name] = count_instructions(setup, root, nodeids, env, Path(tmp))
            print(f"callgrind: {setup.name}: {counts[setup.name]:,}", file=log, flush=True)
    return counts


def instructions_added(counts: dict[str, int]) -> dict[str, float]:
    """Per mode, the instructions --testfleet-report adds, in percent of a run without it."""
    return {
        mode: (counts[f"{mode} report"] / counts[f"{mode} installed"] - 1) * 100
        for mode in ("serial", "-n 2")
    }


def render_instructions(counts: dict[str, int], tests: int) -> str:
    """The instruction counts and what --testfleet-report adds, as a table."""
    out = [
        f"testfleet overhead in instructions (valgrind callgrind): {tests} trivial tests, "
        f"Python {platform.python_version()}",
        "",
    ]
    out += [f"{name:<18}{count:>18,}" for name, count in counts.items()]
    out.append("")
    for mode, added in instructions_added(counts).items():
        verdict = "OK" if added < TARGET_PERCENT else "ABOVE TARGET"
        out.append(f"{mode:<7}--testfleet-report adds {added:+.2f}% instructions: {verdict}")
    return "\n".join(out) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line of the benchmark."""
    parser = argparse.ArgumentParser(
        prog="bench_overhead.py",
        description="Time complete pytest runs of a generated suite with testfleet disabled, "
        "installed but unused, and writing --testfleet-report, serially and with -n 2.",
    )
    parser.add_argument(
        "--rounds",
        type=positive_int,
        default=DEFAULT_ROUNDS,
        help=f"timed runs of each configuration, interleaved (default {DEFAULT_ROUNDS})",
    )
    parser.add_argument(
        "--tests",
        type=positive_int,
        default=DEFAULT_TESTS,
        help=f"number of generated tests (default {DEFAULT_TESTS})",
    )
    parser.add_argument(
        "--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH"
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions under valgrind's callgrind instead of timing: one run of "
        "each configuration with testfleet installed and with --testfleet-report (takes "
        "minutes; needs valgrind)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help=f"exit 1 when --testfleet-report adds {TARGET_PERCENT:.0f}%% or more wall time "
        "(ratio of medians), serially or with -n 2",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the table, and optionally check the target."""
    args = parse_args(argv)
    all_setups = setups()
    if args.instructions:
        return main_instructions(args, [s for s in all_setups if s.plugin != "disabled"])
    try:
        times = measure(all_setups, args.rounds, args.tests)
    except BenchmarkError as exc:
        print(f"bench_overhead.py: error: {exc}", file=sys.stderr)
        return 1
    summary = summarize(all_setups, times)
    print(render(summary, args.rounds, args.tests), end="")
    if args.json is not None:
        write_json_atomic(
            args.json,
            {
                "schema": JSON_SCHEMA,
                "tests": args.tests,
                "rounds": args.rounds,
                "target_percent": TARGET_PERCENT,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                **summary,
            },
        )
    if args.check and not all(row.get("within_target", True) for row in summary["overhead"]):
        return 1
    return 0


def main_instructions(args: argparse.Namespace, chosen: Sequence[Setup]) -> int:
    """``--instructions``: count, print, and check the target on the counts."""
    if shutil.which("valgrind") is None:
        print(
            "bench_overhead.py: error: --instructions needs valgrind "
            "(Debian: apt-get install valgrind)",
            file=sys.stderr,
        )
        return 2
    try:
        counts = measure_instructions(chosen, args.tests)
    except BenchmarkError as exc:
        print(f"bench_overhead.py: error: {exc}", file=sys.stderr)
        return 1
    print(render_instructions(counts, args.tests), end="")
    if args.json is not None:
        write_json_atomic(
            args.json,
            {
                "schema": JSON_SCHEMA,
                "tests": args.tests,
                "measure": "instructions",
                "target_percent": TARGET_PERCENT,
                "python": platform.python_version(),
                "instructions": counts,
            },
        )
    over = [mode for mode, added in instructions_added(counts).items() if added >= TARGET_PERCENT]
    return 1 if args.check and over else 0


if __name__ == "__main__":
    raise SystemExit(main())
