"""invoke tasks: the CI pipeline around the nox sessions, and the timing baseline.

`invoke ci` is what CI runs; `PYTEST_WORKERS=1 invoke ci` (or `invoke ci --workers 1`)
is the rollback to a serial run. docs/rollback.md explains both.
"""

from __future__ import annotations

import os
from pathlib import Path

from invoke import Collection, Context, Exit, task

from testfleet import shardtasks
from testfleet.history.settings import enabled as history_enabled
from testfleet.workers import RUN_ID_ENV, WORKERS_ENV, new_run_id

REPORTS = "reports"
REPORT = "reports/test-timing.json"
BASELINE = "reports/test-timing-baseline.json"
SUMMARY = "reports/ci-summary.md"
CLASSIFICATION = "reports/classification.json"
PAGE = "reports/report.html"


@task(
    help={
        "workers": "worker count or 'auto' (default: $PYTEST_WORKERS, else auto); "
        "1 is the serial rollback",
        "shard": "run only shard I/N of the suite ('auto': the CI's variables); "
        "`invoke combine` then makes one run of the shards (docs/sharding.md)",
    }
)
def ci(c: Context, workers: str = "", shard: str = "") -> None:
    """Run the CI pipeline: parallel tests with coverage, timing against the baseline."""
    run_id = new_run_id()
    env = {RUN_ID_ENV: run_id, "TESTFLEET_REPORT": REPORT}
    if workers:
        env[WORKERS_ENV] = workers
    chosen = env.get(WORKERS_ENV) or os.environ.get(WORKERS_ENV) or "auto"
    print(f"testfleet: CI run {run_id}, workers {chosen}")
    if shard:
        shardtasks.run_shard(c, shard, env, coverage=True)
        return
    c.run("coverage erase")
    tests = c.run("nox -s tests_parallel", env=env, warn=True)
    cover = c.run("nox -s coverage", warn=True)
    against = f"--baseline {BASELINE}" if Path(BASELINE).exists() else ""
    if not against:
        print(f"testfleet: no baseline at {BASELINE} yet; record one with `invoke baseline`")
    c.run(
        f"testfleet report {REPORT} {against} --run-id {run_id} "
        f"--format markdown --output {SUMMARY} --step-summary"
    )
    c.run(f"testfleet report {REPORT} {against} --top 5")
    failed = tests is None or tests.failed
    if failed:
        # Rerun the failed tests to tell isolation bugs from flaky tests and plain failures;
        # it exits 0 only when all of them are flaky and fewer than the threshold.
        diagnosis = c.run(
            f"testfleet classify {REPORT} --run-id {run_id} --summary {SUMMARY} --step-summary",
            warn=True,
        )
        failed = diagnosis is None or diagnosis.failed
        if history_enabled(None, Path.cwd()):
            # The reruns and classes replace the run's first record; a failure only warns.
            c.run(f"testfleet history import {REPORT} --classification {CLASSIFICATION}", warn=True)
    c.run(f"testfleet report {REPORT} {against} --format html --output {PAGE}", warn=True)
    if failed:
        raise Exit("tests failed: see the output above and " + SUMMARY, code=1)
    if cover is None or cover.failed:
        raise Exit("coverage is below the threshold in pyproject.toml (fail_under)", code=1)


@task
def baseline(c: Context) -> None:
    """Record a serial run as the timing baseline, reports/test-timing-baseline.json."""
    candidate = Path(REPORTS, "test-timing-baseline.candidate.json")
    c.run("coverage erase")
    tests = c.run("nox -s tests", env={"TESTFLEET_REPORT": str(candidate)}, warn=True)
    if tests is None or tests.failed:
        raise Exit(f"baseline not recorded: the serial run failed; {BASELINE} is unchanged", code=1)
    # Only a passing run replaces the baseline, and in one rename.
    candidate.replace(BASELINE)
    c.run(f"testfleet report {BASELINE} --top 5")


@task(help={"top": "how many of the slowest tests to list"})
def report(c: Context, top: int = 10) -> None:
    """Show the last run's timing report against the baseline."""
    against = f"--baseline {BASELINE}" if Path(BASELINE).exists() else ""
    c.run(f"testfleet report {REPORT} {against} --top {top}")


@task(help={"shards": "directory of the shards' reports (default reports/shards)"})
def combine(c: Context, shards: str = str(shardtasks.SHARDS_DIR)) -> None:
    """Make one run of the CI shards: report, coverage, baseline, classification, summary."""
    shardtasks.combine_shards(
        c, Path(shards), Path(REPORT), Path(BASELINE), Path(SUMMARY), coverage=True
    )


namespace = Collection(ci, baseline, report, combine)
