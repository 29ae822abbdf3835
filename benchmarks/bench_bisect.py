"""Time `testfleet bisect` against detect-test-pollution on the same polluted suites."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shlex
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

DEFAULT_ROUNDS = 3
DEFAULT_SIZES = (100, 300, 1000)
#: The heavy-import case: suites whose every test file imports a module that takes this
#: long to import (a large framework, say), which a new process per probe pays each time.
DEFAULT_HEAVY_SIZES = (300,)
HEAVY_IMPORT_SECONDS = 2.0
MIN_SIZE = 5
TESTS_PER_FILE = 100
#: A bisection of a thousand trivial tests takes seconds; this only stops a hung run.
RUN_TIMEOUT = 600.0
JSON_SCHEMA = "testfleet.bench-bisect/1"
VICTIM = "test_zz_victim.py::test_state_is_clean"
#: What the `detect-test-pollution` script runs.
DTP_MAIN = "from detect_test_pollution import main; raise SystemExit(main())"


class BenchmarkError(Exception):
    """A tool failed or named the wrong polluter: its time would not measure a working search."""


@dataclass(frozen=True)
class Suite:
    """A generated suite: its directory, the order its tests ran in, and the answer."""

    size: int
    root: Path
    order_file: Path
    polluter: str
    import_seconds: float = 0.0

    @property
    def label(self) -> str:
        heavy = f", {self.import_seconds:g}s import" if self.import_seconds else ""
        return f"{self.size} tests{heavy}"


@dataclass(frozen=True)
class Tool:
    """One measured tool: how to run it on a suite and how to check its answer."""

    name: str

    def command(self, suite: Suite) -> list[str]:
        if self.name == "testfleet":
            return [
                *(sys.executable, "-m", "testfleet", "bisect"),
                *("--order-file", str(suite.order_file), "--test", VICTIM),
                *("--json", str(suite.root / "bisect.json")),
            ]
        # Not `-m detect_test_pollution`: the tool loads itself into pytest with
        # `-p __name__`, which must be its module name, not __main__.
        return [
            *(sys.executable, "-c", DTP_MAIN),
            *("--failing-test", VICTIM, "--testids-file", str(suite.order_file)),
        ]

    def check(self, suite: Suite, result: subprocess.CompletedProcess[str]) -> None:
        """Fail unless the tool exited as documented and named exactly the polluter."""
        if self.name == "testfleet":
            data = json.loads((suite.root / "bisect.json").read_text(encoding="utf-8"))
            (found,) = data["results"]
            named = found["tests"]
            right = result.returncode == 1 and named == [suite.polluter]
        else:
            named = [
                line.split("the polluting test is:", 1)[1].strip()
                for line in result.stdout.splitlines()
                if "the polluting test is:" in line
            ]
            right = result.returncode == 0 and named == [suite.polluter]
        if not right:
            raise BenchmarkError(
                f"{self.name} on {suite.size} tests exited {result.returncode} naming {named}, "
                f"expected {suite.polluter}: {shlex.join(self.command(suite))}\n"
                + tail(result.stdout + result.stderr)
            )


TOOLS = (Tool("testfleet"), Tool("detect-test-pollution"))


def positive_int(text: str) -> int:
    """Parse a whole number of at least 1 for ``--rounds``."""
    return _at_least(text, 1, "3")


def suite_size(text: str) -> int:
    """Parse a suite size for ``--sizes``: a polluter, a victim and a few tests around them."""
    return _at_least(text, MIN_SIZE, "300")


def _at_least(text: str, least: int, example: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number; use e.g. {example}"
        ) from None
    if value < least:
        raise argparse.ArgumentTypeError(
            f"{text!r} is below {least}; use a whole number such as {example}"
        )
    return value


def write_suite(root: Path, size: int, import_seconds: float = 0.0) -> Suite:
    """Write ``size`` trivial tests, one of which pollutes the victim that runs last.

    The polluter sits at a third of the order, in the middle of a file, so that neither
    tool finds it by luck on its first split.
    """
    root.mkdir(parents=True)
    # An ini file makes the suite its own rootdir: no outer configuration is picked up.
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    # The heavy import: a sleep stands for the seconds a large framework takes to import.
    heavy = f"import time\n\ntime.sleep({import_seconds})\n" if import_seconds else ""
    (root / "support_state.py").write_text(heavy + "STATE: dict[str, int] = {}\n", encoding="utf-8")
    fillers = size - 2
    files = -(-fillers // TESTS_PER_FILE)
    polluter_at = fillers // 3
    order: list[str] = []
    polluter = ""
    for index in range(files):
        name = f"test_filler_{index:03d}.py"
        lines = ["import support_state", ""]
        for number in range(index * TESTS_PER_FILE, min(fillers, (index + 1) * TESTS_PER_FILE)):
            lines += ["", f"def test_{number:05d}():", "    assert True", ""]
            order.append(f"{name}::test_{number:05d}")
            if number == polluter_at:
                lines += ["", "def test_leaves_state():", "    support_state.STATE['x'] = 1", ""]
                polluter = f"{name}::test_leaves_state"
                order.append(polluter)
        (root / name).write_text("\n".join(lines), encoding="utf-8")
    (root / "test_zz_victim.py").write_text(
        "import support_state\n\n\n"
        "def test_state_is_clean():\n"
        "    assert support_state.STATE == {}\n",
        encoding="utf-8",
    )
    order.append(VICTIM)
    order_file = root / "order.txt"
    order_file.write_text("\n".join(order) + "\n", encoding="utf-8")
    return Suite(size, root, order_file, polluter, import_seconds)


def tail(text: str, lines: int = 30) -> str:
    """The last ``lines`` lines of a run's output, for an error message."""
    return "\n".join(text.splitlines()[-lines:])


def run_once(tool: Tool, suite: Suite, env: dict[str, str]) -> float:
    """Run ``tool`` on ``suite``, check its answer, and return its wall time in seconds."""
    command = tool.command(suite)
    start = time.perf_counter()
    try:
        result = subprocess.run(
            command,
            cwd=suite.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchmarkError(
            f"{tool.name} ran longer than {RUN_TIMEOUT:.0f}s: {shlex.join(command)}"
        ) from None
    elapsed = time.perf_counter() - start
    tool.check(suite, result)
    return elapsed


def measure(
    sizes: Sequence[int],
    rounds: int,
    log: TextIO = sys.stderr,
    heavy_sizes: Sequence[int] = (),
    import_seconds: float = HEAVY_IMPORT_SECONDS,
) -> dict[str, dict[str, list[float]]]:
    """Time both tools on each suite ``rounds`` times, interleaved, after one warm-up."""
    env = clean_env()
    with tempfile.TemporaryDirectory(prefix="testfleet-bench-bisect-") as tmp:
        suites = [write_suite(Path(tmp) / f"suite-{size}", size) for size in sizes] + [
            write_suite(Path(tmp) / f"heavy-{size}", size, import_seconds) for size in heavy_sizes
        ]
        times = {suite.label: {tool.name: [] for tool in TOOLS} for suite in suites}
        for suite in suites:
            # The warm-up fills the OS file cache and the bytecode caches of the suite,
            # which would otherwise make whichever tool runs first look slow.
            for tool in TOOLS:
                print(f"warm-up: {tool.name} on {suite.label}", file=log, flush=True)
                run_once(tool, suite, env)
        for number in range(rounds):
            # Alternate which tool goes first, so slow drifts of the machine touch both.
            order = TOOLS if number % 2 == 0 else TOOLS[::-1]
            for suite in suites:
                for tool in order:
                    elapsed = run_once(tool, suite, env)
                    times[suite.label][tool.name].append(elapsed)
                    print(
                        f"round {number + 1}/{rounds}: {suite.label:>22} "
                        f"{tool.name:<22} {elapsed:7.3f}s",
                        file=log,
                        flush=True,
                    )
    return times


def summarize(times: dict[str, dict[str, list[float]]]) -> list[dict[str, Any]]:
    """Per suite: median and minimum of each tool, and how many times faster testfleet is."""
    rows = []
    for label, by_tool in times.items():
        ours, theirs = by_tool["testfleet"], by_tool["detect-test-pollution"]
        paired = [t / o for o, t in zip(ours, theirs, strict=True)]
        rows.append(
            {
                "suite": label,
                "testfleet": _stats(ours),
                "detect-test-pollution": _stats(theirs),
                # detect-test-pollution's time over testfleet's: above 1, testfleet is faster.
                "ratio_medians": round(statistics.median(theirs) / statistics.median(ours), 3),
                "ratio_mins": round(min(theirs) / min(ours), 3),
                "ratio_paired": round(statistics.median(paired), 3),
            }
        )
    return rows


def _stats(values: Sequence[float]) -> dict[str, Any]:
    return {
        "times": [round(v, 4) for v in values],
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
    }


def render(rows: Sequence[dict[str, Any]], rounds: int) -> str:
    """The results as a plain-text table for the terminal."""
    out = [
        f"testfleet bisect vs detect-test-pollution: one polluter at a third of the order, "
        f"victim last; {rounds} timed round(s) after 1 warm-up, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPU(s)",
        "",
        f"{'suite':>22}  {'testfleet median':>16}  {'dtp median':>10}  "
        f"{'ratio (medians)':>15}  {'mins':>6}  {'paired':>6}",
    ]
    for row in rows:
        out.append(
            f"{row['suite']:>22}  {row['testfleet']['median']:>15.3f}s  "
            f"{row['detect-test-pollution']['median']:>9.3f}s  "
            f"{row['ratio_medians']:>14.2f}x  {row['ratio_mins']:>5.2f}x  "
            f"{row['ratio_paired']:>5.2f}x"
        )
    out += [
        "",
        "ratio: detect-test-pollution's wall time / testfleet's; above 1, testfleet is faster.",
        "commands, run in each generated suite's directory:",
        f"  {shlex.join(['testfleet', 'bisect', '--order-file', 'order.txt', '--test', VICTIM])}",
        "  "
        + shlex.join(
            [
                "detect-test-pollution",
                "--failing-test",
                VICTIM,
                "--testids-file",
                "order.txt",
            ]
        ),
    ]
    return "\n".join(out) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line of the benchmark."""
    parser = argparse.ArgumentParser(
        prog="bench_bisect.py",
        description="Time `testfleet bisect` and detect-test-pollution finding the same "
        "polluter in generated suites of several sizes, given the same order of test ids.",
    )
    parser.add_argument(
        "--rounds",
        type=positive_int,
        default=DEFAULT_ROUNDS,
        help=f"timed runs of each tool on each suite, interleaved (default {DEFAULT_ROUNDS})",
    )
    parser.add_argument(
        "--sizes",
        type=suite_size,
        nargs="+",
        default=list(DEFAULT_SIZES),
        help="tests in each generated suite (default: " + " ".join(map(str, DEFAULT_SIZES)) + ")",
    )
    parser.add_argument(
        "--heavy-sizes",
        type=suite_size,
        nargs="*",
        default=list(DEFAULT_HEAVY_SIZES),
        help="tests in each generated suite whose test files import a slow module (default: "
        + " ".join(map(str, DEFAULT_HEAVY_SIZES))
        + "; none with an empty list)",
    )
    parser.add_argument(
        "--import-seconds",
        type=float,
        default=HEAVY_IMPORT_SECONDS,
        help=f"how long that module takes to import (default {HEAVY_IMPORT_SECONDS:g})",
    )
    parser.add_argument(
        "--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    args = parse_args(argv)
    if importlib.util.find_spec("detect_test_pollution") is None:
        print(
            "bench_bisect.py: error: detect-test-pollution is not installed: "
            "pip install detect-test-pollution",
            file=sys.stderr,
        )
        return 1
    try:
        times = measure(
            args.sizes,
            args.rounds,
            heavy_sizes=args.heavy_sizes,
            import_seconds=args.import_seconds,
        )
    except BenchmarkError as exc:
        print(f"bench_bisect.py: error: {exc}", file=sys.stderr)
        return 1
    rows = summarize(times)
    print(render(rows, args.rounds), end="")
    if args.json is not None:
        write_json_atomic(
            args.json,
            {
                "schema": JSON_SCHEMA,
                "rounds": args.rounds,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "suites": rows,
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
