"""Run pytest as the nox sessions do: parallel, then `serial` tests alone; or once per seed."""

from __future__ import annotations

import importlib.util
import os
import random
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testfleet import report as reports
from testfleet import workers as workers_mod
from testfleet.timing import append_text_atomic, write_json_atomic, write_text_atomic

SEEDS_ENV = "TESTFLEET_SEEDS"
DEFAULT_SEEDS = 3
#: Where `testfleet randomized` writes the diagnoses of its failing seeds.
ORDER_REPORT = Path("reports/order-dependence.json")
#: pytest exit statuses that make a later phase pointless: interrupted, internal or usage error.
FATAL_EXITS = (2, 3, 4)

Echo = Callable[[str], None]


def pytest_command(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "pytest", *args]


@dataclass(frozen=True)
class Phase:
    name: str
    args: list[str]
    report: Path


def plan_phases(
    workers: workers_mod.Workers, dist: str, pytest_args: Sequence[str], report: Path, scratch: Path
) -> list[Phase]:
    """The pytest runs that make one run on ``workers`` workers, `serial` tests last and alone."""
    if workers == 1:
        # The rollback: no xdist at all, every test in one process in collection order.
        only = scratch / "serial.json"
        return [
            Phase("serial", ["-p", "no:xdist", "--testfleet-report", str(only), *pytest_args], only)
        ]
    parallel = scratch / "parallel.json"
    serial = scratch / "serial.json"
    return [
        Phase(
            f"parallel ({workers} workers)",
            [
                "-n",
                str(workers),
                "--dist",
                dist,
                "--testfleet-serial=defer",
                "--testfleet-report",
                str(parallel),
                *pytest_args,
            ],
            parallel,
        ),
        Phase(
            "serial-marked tests, one process",
            [
                "-p",
                "no:xdist",
                "--testfleet-serial=only",
                "--testfleet-report",
                str(serial),
                *pytest_args,
            ],
            serial,
        ),
    ]


def run_phases(
    workers: workers_mod.Workers,
    pytest_args: Sequence[str],
    report: Path,
    dist: str = "loadgroup",
    echo: Echo = print,
) -> int:
    """Run the phases, merge their timing reports into ``report`` and return the exit status."""
    report.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".testfleet-phases-", dir=report.parent) as tmp:
        phases = plan_phases(workers, dist, pytest_args, report, Path(tmp))
        statuses: list[int] = []
        for number, phase in enumerate(phases, 1):
            command = pytest_command(phase.args)
            echo(f"testfleet: phase {number}/{len(phases)}, {phase.name}: {shlex.join(command)}")
            status = subprocess.call(command)
            statuses.append(status)
            if status in FATAL_EXITS:
                echo(
                    f"testfleet: phase {number} ended with exit status {status}; "
                    "later phases skipped"
                )
                return status
        # Every phase wrote to the scratch directory: a phase that wrote nothing cannot
        # pass off the report of an earlier run as this one's.
        missing = [phase.name for phase in phases if not phase.report.exists()]
        if missing:
            echo(
                f"testfleet: no timing report from {', '.join(missing)} (was the testfleet "
                f"plugin disabled, or only collecting?); {report} is left as it was"
            )
            return reports.combine_exit_statuses(statuses) or 1
        loaded = [reports.load(phase.report) for phase in phases]
        final = loaded[0] if len(loaded) == 1 else reports.merge(loaded, [p.name for p in phases])
        write_json_atomic(report, final)
    echo(f"testfleet: timing report of {final['summary']['tests']} tests written to {report}")
    echo(closing_line(final["summary"]["outcomes"]))
    return reports.combine_exit_statuses(statuses)


def closing_line(outcomes: dict[str, int]) -> str:
    """The closing line: xfail results count as skipped, errors as failed."""

    passed = outcomes.get("passed", 0)
    failed = outcomes.get("failed", 0) + outcomes.get("error", 0)
    skipped = outcomes.get("skipped", 0) + outcomes.get("xfailed", 0) + outcomes.get("xpassed", 0)
    return f"testfleet: {passed} passed, {failed} failed, {skipped} skipped"


def seeds_to_run(
    count: int | None, explicit: Sequence[int], environ: dict[str, str] | None = None
) -> list[int]:
    """The explicit seeds, else ``count`` (or ``TESTFLEET_SEEDS``, or 3) fresh random ones."""
    if explicit:
        return list(explicit)
    if count is None:
        env = os.environ if environ is None else environ
        text = env.get(SEEDS_ENV, "").strip()
        try:
            count = int(text) if text else DEFAULT_SEEDS
        except ValueError:
            raise ValueError(
                f"{SEEDS_ENV}={text!r} is not a whole number of seeds, such as 3"
            ) from None
    if count < 1:
        raise ValueError(f"the number of seeds must be at least 1, not {count}")
    rng = random.SystemRandom()
    return [rng.randrange(1, 2**31) for _ in range(count)]


def seed_args(seed: int, report: Path, pytest_args: Sequence[str]) -> list[str]:
    """pytest arguments of one randomized run: one process, pytest-randomly with ``seed``."""
    return [
        "-p",
        "no:xdist",
        "-p",
        "randomly",
        f"--randomly-seed={seed}",
        "--testfleet-report",
        str(report),
        *pytest_args,
    ]


def run_randomized(
    seeds: Sequence[int],
    pytest_args: Sequence[str],
    report_dir: Path,
    echo: Echo = print,
    *,
    bisect: bool = True,
    order_report: Path = ORDER_REPORT,
    summary: Path | None = None,
    jobs: int | None = None,
    max_tests: int | None = None,
    max_victims: int | None = None,
) -> int:
    """Run the suite once per seed in random order; 1 when any seed failed.

    With ``bisect``, the tests that failed are then diagnosed (`testfleet bisect`) and the
    results written to ``order_report``, its markdown beside it and, with ``summary``,
    appended to that file.
    """
    if importlib.util.find_spec("pytest_randomly") is None:
        print(
            "testfleet: error: pytest-randomly is not installed: pip install pytest-randomly",
            file=sys.stderr,
        )
        return 2
    report_dir.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    for index, seed in enumerate(seeds, 1):
        report = report_dir / f"seed-{seed}.json"
        command = pytest_command(seed_args(seed, report, pytest_args))
        repro = shlex.join(command)
        echo(f"testfleet: seed {index}/{len(seeds)}: {seed}; reproduce with: {repro}")
        status = subprocess.call(command)
        results.append(
            {"seed": seed, "exit_status": status, "command": command, "report": str(report)}
        )
        if status in (2, 3, 4):
            echo(f"testfleet: seed {seed} ended with exit status {status}; later seeds skipped")
            break
    fatal = [int(r["exit_status"]) for r in results if r["exit_status"] in FATAL_EXITS]
    failed = [r for r in results if r["exit_status"] == 1]
    write_json_atomic(report_dir / "seeds.json", {"seeds": results})
    echo(
        "testfleet: seeds run: "
        + ", ".join(f"{r['seed']} (exit {r['exit_status']})" for r in results)
    )
    for result in failed:
        echo(
            f"testfleet: seed {result['seed']} FAILED; "
            f"reproduce with: {shlex.join(result['command'])}"
        )
    if fatal:
        # Not a test result: an interrupted run, or pytest refused its arguments.
        return fatal[0]
    if bisect:
        diagnose_seeds(
            results,
            pytest_args,
            order_report,
            summary,
            echo,
            jobs=jobs,
            max_tests=max_tests,
            max_victims=max_victims,
        )
    if failed:
        return 1
    if all(r["exit_status"] == 5 for r in results):
        return 5
    return 0


def diagnose_seeds(
    results: Sequence[dict[str, Any]],
    pytest_args: Sequence[str],
    order_report: Path,
    summary: Path | None,
    echo: Echo,
    *,
    jobs: int | None = None,
    max_tests: int | None = None,
    max_victims: int | None = None,
) -> None:
    """Bisect the failed tests of the failing seeds; write the ``testfleet.order/1`` report."""
    # Imported here: runs without failures, and `testfleet run`, never need it.
    from testfleet.diagnose import bisect

    limit = bisect.DEFAULT_MAX_VICTIMS if max_victims is None else max_victims
    diagnoses: list[bisect.Diagnosis] = []
    not_diagnosed: list[str] = []
    seen: set[str] = set()
    seeds: list[dict[str, Any]] = []
    for result in results:
        entry = {k: result[k] for k in ("seed", "exit_status", "report")}
        entry["failed"] = []
        seeds.append(entry)
        if result["exit_status"] != 1:
            # 0 and 5 have nothing to diagnose; 2, 3 and 4 wrote no report to read.
            continue
        try:
            data = reports.load(Path(result["report"]))
        except reports.ReportError as exc:
            echo(f"testfleet: seed {result['seed']}: cannot diagnose: {exc}")
            continue
        order = bisect.order_from_report(data)
        entry["failed"] = bisect.failed_in_report(data)
        # A test that failed under several seeds is diagnosed once, in the first order.
        for victim in [v for v in entry["failed"] if v not in seen]:
            seen.add(victim)
            if len(diagnoses) >= limit:
                not_diagnosed.append(victim)
                continue
            echo(f"testfleet: seed {result['seed']}: diagnosing {victim}")
            diagnosis = bisect.diagnose(
                order,
                victim,
                pytest_args,
                jobs=jobs or bisect.default_jobs(),
                max_tests=max_tests or bisect.DEFAULT_MAX_TESTS,
                echo=echo,
            )
            diagnosis.seed = result["seed"]
            diagnosis.report = result["report"]
            echo(diagnosis.render().rstrip("\n"))
            diagnoses.append(diagnosis)
    if not_diagnosed:
        echo(
            f"testfleet: {len(not_diagnosed)} more failing tests not diagnosed (at most "
            f"{limit}): {', '.join(not_diagnosed)}"
        )
    data = bisect.document(diagnoses, seeds=seeds, not_diagnosed=not_diagnosed)
    markdown = bisect.render_markdown(data)
    write_json_atomic(order_report, data)
    write_text_atomic(order_report.with_suffix(".md"), markdown)
    if summary is not None:
        append_text_atomic(summary, markdown)
    echo(
        f"testfleet: order dependence: {len(diagnoses)} tests diagnosed; {order_report}"
        + (f", section appended to {summary}" if summary is not None else "")
    )
