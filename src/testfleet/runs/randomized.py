"""`testfleet randomized`: the suite in reversed order, then once per random seed; diagnoses.

The reversed run comes first because it finds, in one run, what seeds find by luck: a
test broken by any single later test, or needing any single earlier test, fails when
the order is turned around. The seeds then mix the order in ways the reversal cannot
(a polluter and its victim that are both early, or both late).

The pytest arguments after `--` choose the suite for every run here, paths and `-k`
included; the bisection probes of a failing run give their own node ids, so they leave
the selecting arguments out and list them.
"""

from __future__ import annotations

import importlib.util
import random
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testfleet.core import paths
from testfleet.core.atomic import write_json_atomic
from testfleet.diagnose.probes import xdist_off
from testfleet.runs import commands
from testfleet.settings import config

SEEDS_ENV = "TESTFLEET_SEEDS"
DEFAULT_SEEDS = 3
#: Where `testfleet randomized` writes the diagnoses of its failing runs.
ORDER_REPORT = paths.ORDER_DEPENDENCE
REVERSED = "reversed"
#: pytest exit statuses that make a later run pointless: interrupted, internal or usage error.
FATAL_EXITS = (
    commands.ExitCode.INTERRUPTED,
    commands.ExitCode.INTERNAL_ERROR,
    commands.ExitCode.USAGE_ERROR,
)

Echo = Callable[[str], None]


def seeds_to_run(
    count: int | None, explicit: Sequence[int], environ: dict[str, str] | None = None
) -> list[int]:
    """The explicit seeds, else ``count`` (or ``TESTFLEET_SEEDS``, or 3) fresh random ones."""
    if explicit:
        return list(explicit)
    if count is None:
        # The `seeds` setting: TESTFLEET_SEEDS, else [tool.testfleet], else 3.
        count = int(config.load(environ=environ).get("seeds"))
    if count < 1:
        raise ValueError(f"the number of seeds must be at least 1, not {count}")
    rng = random.SystemRandom()
    return [rng.randrange(1, 2**31) for _ in range(count)]


@dataclass(frozen=True)
class Order:
    """One run of the suite: the collection order reversed, or pytest-randomly's ``seed``."""

    seed: int | None

    @property
    def label(self) -> str:
        return REVERSED if self.seed is None else f"seed {self.seed}"

    @property
    def key(self) -> str:
        return REVERSED if self.seed is None else f"seed-{self.seed}"

    def args(self, report: Path, pytest_args: Sequence[str]) -> list[str]:
        """pytest arguments of this run: one process whatever addopts say, this order."""
        if self.seed is None:
            order = ["-p", "no:randomly", "--testfleet-reverse"]
        else:
            order = ["-p", "randomly", f"--randomly-seed={self.seed}"]
        return [*order, *xdist_off(pytest_args), f"--testfleet-report={report}", *pytest_args]


def plan(seeds: Sequence[int], reverse: bool = True) -> list[Order]:
    """The runs, in the order they happen: reversed first, then each seed."""
    return [*([Order(None)] if reverse else []), *(Order(seed) for seed in seeds)]


def pytest_command(args: Sequence[str]) -> list[str]:
    return commands.pytest_command(args)


def run_randomized(
    seeds: Sequence[int],
    pytest_args: Sequence[str],
    report_dir: Path,
    echo: Echo = print,
    *,
    reverse: bool = True,
    bisect: bool = True,
    order_report: Path = ORDER_REPORT,
    summary: Path | None = None,
    step_summary: Path | None = None,
    jobs: int | None = None,
    max_tests: int | None = None,
    max_victims: int | None = None,
) -> int:
    """Run the suite reversed, then once per seed; 1 when any run had failing tests.

    With ``bisect``, the tests that failed are then diagnosed (`testfleet bisect`) and the
    results written to ``order_report``, its markdown beside it and, with ``summary``,
    appended to that file.
    """
    if importlib.util.find_spec("pytest_randomly") is None:
        print(
            "testfleet: error: pytest-randomly is not installed: pip install pytest-randomly",
            file=sys.stderr,
        )
        return int(commands.ExitCode.USAGE_ERROR)
    report_dir.mkdir(parents=True, exist_ok=True)
    runs = plan(seeds, reverse)
    results = _run_all(runs, pytest_args, report_dir, echo)
    fatal = [int(r["exit_status"]) for r in results if r["exit_status"] in FATAL_EXITS]
    failed = [r for r in results if r["exit_status"] == commands.ExitCode.TESTS_FAILED]
    write_json_atomic(report_dir / "seeds.json", {"seeds": results})
    echo(
        "testfleet: runs: " + ", ".join(f"{r['order']} (exit {r['exit_status']})" for r in results)
    )
    for result in failed:
        echo(
            f"testfleet: {result['order']} FAILED; reproduce with: {shlex.join(result['command'])}"
        )
    if fatal:
        # Not a test result: an interrupted run, or pytest refused its arguments.
        return fatal[0]
    if bisect:
        # Imported here: `testfleet run` imports this module, and must not pay for the
        # bisection's imports before its pytest starts (a test checks it).
        from testfleet.diagnose.failing_runs import diagnose_runs

        summaries = [path for path in (summary, step_summary) if path is not None]
        diagnose_runs(
            results, pytest_args, order_report, summaries, echo,
            jobs=jobs, max_tests=max_tests, max_victims=max_victims,
        )  # fmt: skip
    if failed:
        return int(commands.ExitCode.TESTS_FAILED)
    if all(r["exit_status"] == commands.ExitCode.NO_TESTS_COLLECTED for r in results):
        return int(commands.ExitCode.NO_TESTS_COLLECTED)
    return int(commands.ExitCode.OK)


def _run_all(
    runs: Sequence[Order], pytest_args: Sequence[str], report_dir: Path, echo: Echo
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for index, order in enumerate(runs, 1):
        report = report_dir / f"{order.key}.json"
        command = pytest_command(order.args(report, pytest_args))
        echo(
            f"testfleet: run {index}/{len(runs)}, {order.label}; "
            f"reproduce with: {shlex.join(command)}"
        )
        status = subprocess.call(command)
        results.append(
            {
                "order": order.label,
                "seed": order.seed,
                "exit_status": status,
                "command": command,
                "report": str(report),
            }
        )
        if status in FATAL_EXITS:
            echo(f"testfleet: {order.label} ended with exit status {status}; later runs skipped")
            break
    return results
