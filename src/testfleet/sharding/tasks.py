"""The CI pipeline's shard steps, for the invoke tasks: run one shard, combine them all.

``invoke ci --shard I/N`` runs shard I's tests (and its coverage) and leaves its reports
in ``reports/shards/I-of-N/``; the coverage threshold, the baseline comparison and the
classification wait for ``invoke combine``, which reads every shard's directory and
makes one run of them (docs/sharding.md).
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

from invoke.context import Context
from invoke.exceptions import Exit

from testfleet.core import paths
from testfleet.core.atomic import append_text_atomic
from testfleet.sharding import plan as sharding

SHARDS_DIR = paths.SHARDS_DIR
SHARD_REPORT = paths.TIMING_REPORT.name
SHARD_COVERAGE = ".coverage"
REPORT_ENV = "TESTFLEET_REPORT"


def resolve(text: str) -> sharding.ShardSpec:
    """The shard ``--shard`` names (``auto``: the CI's variables; none of them: 1/1)."""
    try:
        spec = sharding.resolve_shard(text)
    except ValueError as exc:
        raise Exit(f"testfleet: error: --shard: {exc}", code=2) from None
    return spec or sharding.ShardSpec(1, 1)


def shard_dir(spec: sharding.ShardSpec, root: Path = SHARDS_DIR) -> Path:
    return root / f"{spec.index}-of-{spec.total}"


def coverage_data_file() -> Path:
    """Where `coverage combine` writes: $COVERAGE_FILE, else the configured data_file."""
    import coverage

    return Path(str(coverage.Coverage().get_option("run:data_file")))


def run_shard(c: Context, text: str, env: dict[str, str], coverage: bool) -> None:
    """Run one shard's tests; keep its timing report and coverage data for the combine."""
    spec = resolve(text)
    directory = shard_dir(spec)
    env = {**env, sharding.SHARD_ENV: str(spec), REPORT_ENV: str(directory / SHARD_REPORT)}
    print(f"testfleet: shard {spec}; its reports go to {directory}/")
    if coverage:
        c.run("coverage erase")
    tests = c.run("nox -s tests_parallel", env=env, warn=True)
    if coverage:
        # One data file per shard; the threshold is checked on the combined data.
        c.run("coverage combine", warn=True)
        data = coverage_data_file()
        if data.is_file():
            directory.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(data, directory / SHARD_COVERAGE)
    if tests is None or tests.failed:
        raise Exit(
            f"shard {spec} failed: see above; `invoke combine` after every shard gives the "
            "run's summary and classifies the failures",
            code=1,
        )


def combine_shards(
    c: Context, shards: Path, report: Path, baseline: Path, summary: Path, coverage: bool
) -> None:
    """Combine the shards, then what `invoke ci` does after its tests, once for all."""
    reports = sorted(shards.glob(f"*/{SHARD_REPORT}"))
    if not reports:
        raise Exit(
            f"testfleet: error: no shard reports in {shards}/*/{SHARD_REPORT}: run "
            "`invoke ci --shard I/N` for every shard first (in CI, download their reports there)",
            code=2,
        )
    data = sorted(shards.glob(f"*/{SHARD_COVERAGE}")) if coverage else []
    summary.unlink(missing_ok=True)
    command = ["testfleet", "combine", *map(str, reports), "--combined", str(report)]
    command += ["--summary", str(summary), "--step-summary"]
    if data:
        command += ["--coverage", *map(str, data)]
    combined = c.run(shlex.join(command), warn=True)
    if combined is None or combined.exited not in (0, 1):
        raise Exit("the shard reports do not make one run: see the message above", code=2)
    against = f"--baseline {shlex.quote(str(baseline))}" if baseline.exists() else ""
    timing = summary.with_name("timing-summary.md")
    quoted = shlex.quote(str(report))
    c.run(f"testfleet report {quoted} {against} --format markdown --output {timing} --step-summary")
    append_text_atomic(summary, timing.read_text(encoding="utf-8"))
    c.run(f"testfleet report {quoted} {against} --top 5")
    cover = c.run("coverage report", warn=True) if data else None
    if data:
        c.run("coverage html --fail-under=0", warn=True)
        c.run("coverage xml --fail-under=0", warn=True)
    outcomes = json.loads(report.read_text(encoding="utf-8"))["summary"]["outcomes"]
    failed = bool(outcomes.get("failed", 0) + outcomes.get("error", 0))
    if failed:
        diagnosis = c.run(
            f"testfleet classify {quoted} --summary {shlex.quote(str(summary))} --step-summary",
            warn=True,
        )
        failed = diagnosis is None or diagnosis.failed
    if combined.exited == 1:
        raise Exit(f"a shard did not finish its tests: they are listed above and in {summary}", 1)
    if failed:
        raise Exit(f"tests failed: see the output above and {summary}", code=1)
    if cover is not None and cover.failed:
        raise Exit("coverage is below the threshold (fail_under): see above", code=1)
