"""The CI pipeline as invoke tasks: ``ci``, ``baseline`` and ``report``.

A project's tasks.py is one line, ``from testfleet.invoke import namespace``, or, to add
tasks of its own::

    from testfleet.invoke import collection
    namespace = collection()
    namespace.add_task(mine)

``invoke ci`` is what CI runs; ``PYTEST_WORKERS=1 invoke ci`` (or ``invoke ci --workers 1``)
is the rollback to a serial run. Paths and the worker count come from ``[tool.testfleet]``
(``report``, ``baseline``, ``summary``, ``workers``, ``coverage``), with the usual
precedence; the tasks run the nox sessions of ``testfleet.nox`` and the ``testfleet``
command, so that a local run and CI do the same.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from testfleet.cli.output import step_summary_file
from testfleet.core.atomic import append_text_atomic
from testfleet.core.workers import RUN_ID_ENV, WORKERS_ENV, new_run_id
from testfleet.history.settings import ENABLED_ENV as HISTORY_ENV
from testfleet.runs import quarantine
from testfleet.settings import config as config_mod
from testfleet.sharding import tasks as shardtasks

REPORT_ENV = "TESTFLEET_REPORT"


def _settings() -> config_mod.Config:
    try:
        return config_mod.load()
    except config_mod.ConfigError as exc:
        raise Exit(f"testfleet: error: {exc}", code=2) from None


def _baseline_option(baseline: Path) -> str:
    return f"--baseline {shlex.quote(str(baseline))}" if baseline.exists() else ""


@task(
    help={
        "workers": "worker count or 'auto' (default: $PYTEST_WORKERS, else [tool.testfleet] "
        "workers, else auto); 1 is the serial rollback",
        "shard": "run only shard I/N of the suite ('auto': the CI's variables); "
        "`invoke combine` then makes one run of the shards (docs/sharding.md)",
    }
)
def ci(c: Context, workers: str = "", shard: str = "") -> None:
    """Run the CI pipeline: parallel tests with coverage, timing against the baseline."""
    settings = _settings()
    try:
        chosen = settings.get("workers", config_mod.WORKERS.parse(workers) if workers else None)
    except (ValueError, config_mod.ConfigError) as exc:
        raise Exit(f"testfleet: error: --workers: {exc}", code=2) from None
    report = Path(settings.get("report"))
    held = _quarantined(settings)
    run_id = new_run_id()
    env = {RUN_ID_ENV: run_id, REPORT_ENV: str(report), WORKERS_ENV: str(chosen)}
    print(f"testfleet: CI run {run_id}, workers {chosen}")
    coverage = bool(settings.get("coverage"))
    if shard:
        shardtasks.run_shard(c, shard, env, coverage=coverage)
        return
    if coverage:
        c.run("coverage erase")
    main_args = f" -- {quarantine.deselect_args(held)}" if held else ""
    tests = c.run(f"nox -s tests_parallel{main_args}", env=env, warn=True)
    if held:
        _run_apart(c, env, held, report)
    cover = c.run("nox -s coverage", warn=True) if coverage else None
    if not report.exists():
        raise Exit(f"the test session wrote no timing report, {report}: see the output above", 1)
    failed = _report_and_diagnose(c, settings, run_id, tests is None or tests.failed)
    if held:
        _summarise_apart(settings, held)
    if failed:
        raise Exit(f"tests failed: see the output above and {settings.get('summary')}", code=1)
    if coverage and (cover is None or cover.failed):
        raise Exit("coverage failed or is below the threshold (fail_under): see above", code=1)


def _quarantined(settings: config_mod.Config) -> list[quarantine.Quarantined]:
    """The tests of the quarantine file, when the setting names one."""
    source = settings.get("quarantine")
    if source is None:
        return []
    try:
        return quarantine.read_list(Path(source))
    except quarantine.QuarantineError as exc:
        raise Exit(f"testfleet: error: {exc}", code=2) from None


def _run_apart(
    c: Context, env: dict[str, str], held: list[quarantine.Quarantined], report: Path
) -> None:
    """The quarantined tests alone, serially, in the same session; a failure is only shown.

    Their run has a report of its own and no place in the history: a run of a few tests
    would become the serial run that speedups are measured against.
    """
    apart = {**env, RUN_ID_ENV: new_run_id(), REPORT_ENV: str(quarantine.REPORT)}
    apart.update({WORKERS_ENV: "1", HISTORY_ENV: "0"})
    print("testfleet: the quarantined tests, apart; their outcome does not fail the run")
    # -r: the main run's environment again, not a second install.
    c.run(f"nox -r -s tests_parallel -- {quarantine.prepare(held)}", env=apart, warn=True)
    again = quarantine.closing_again(report)
    if again is not None:
        print(again)


def _summarise_apart(settings: config_mod.Config, held: list[quarantine.Quarantined]) -> None:
    got = quarantine.outcomes(held)
    section = quarantine.markdown(held, got, Path(settings.get("quarantine")))
    for target in (Path(settings.get("summary")), step_summary_file()):
        if target is not None:
            append_text_atomic(target, section)
    print(quarantine.headline(held, got))


def _report_and_diagnose(
    c: Context, settings: config_mod.Config, run_id: str, failed: bool
) -> bool:
    """Summaries of the run, and the classification of its failed tests: still failed?"""
    report = shlex.quote(str(settings.get("report")))
    summary = shlex.quote(str(settings.get("summary")))
    baseline = Path(settings.get("baseline"))
    against = _baseline_option(baseline)
    if not against:
        print(f"testfleet: no baseline at {baseline} yet; record one with `invoke baseline`")
    c.run(
        f"testfleet report {report} {against} --run-id {run_id} "
        f"--format markdown --output {summary} --step-summary"
    )
    c.run(f"testfleet report {report} {against} --top 5")
    if failed:
        # Rerun the failed tests to tell isolation bugs from flaky tests and plain failures;
        # it exits 0 only when all of them are flaky and fewer than the threshold.
        classification = shlex.quote(str(settings.get("classification")))
        diagnosis = c.run(
            f"testfleet classify {report} --run-id {run_id} --json {classification} "
            f"--summary {summary} --step-summary",
            warn=True,
        )
        failed = diagnosis is None or diagnosis.failed
        if settings.get("history"):
            # The reruns and classes replace the run's first record; a failure only warns.
            c.run(
                f"testfleet history import {report} --classification {classification}",
                warn=True,
            )
    page = shlex.quote(str(settings.get("html_report")))
    c.run(f"testfleet report {report} {against} --format html --output {page}", warn=True)
    return failed


@task
def baseline(c: Context) -> None:
    """Record a serial run as the timing baseline ([tool.testfleet] baseline)."""
    settings = _settings()
    target = Path(settings.get("baseline"))
    candidate = target.with_name(target.stem + ".candidate.json")
    if settings.get("coverage"):
        c.run("coverage erase")
    tests = c.run("nox -s tests", env={REPORT_ENV: str(candidate)}, warn=True)
    if tests is None or tests.failed:
        raise Exit(f"baseline not recorded: the serial run failed; {target} is unchanged", code=1)
    # Only a passing run replaces the baseline, and in one rename.
    candidate.replace(target)
    c.run(f"testfleet report {shlex.quote(str(target))} --top 5")


@task(help={"top": "how many of the slowest tests to list"})
def report(c: Context, top: int = 10) -> None:
    """Show the last run's timing report against the baseline."""
    settings = _settings()
    against = _baseline_option(Path(settings.get("baseline")))
    c.run(f"testfleet report {shlex.quote(str(settings.get('report')))} {against} --top {top}")


@task(help={"shards": "directory of the shards' reports (default reports/shards)"})
def combine(c: Context, shards: str = str(shardtasks.SHARDS_DIR)) -> None:
    """Make one run of the CI shards: report, coverage, baseline, classification, summary."""
    settings = _settings()
    shardtasks.combine_shards(
        c,
        Path(shards),
        Path(settings.get("report")),
        Path(settings.get("baseline")),
        Path(settings.get("summary")),
        coverage=bool(settings.get("coverage")),
    )


def collection() -> Collection:
    """A new Collection of testfleet's tasks, for a tasks.py that adds its own."""
    return Collection(ci, baseline, report, combine)


namespace = collection()
