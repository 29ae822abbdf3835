"""The diagnosis of the failing runs of `testfleet randomized`: each failed test bisected once.

The result is the ``testfleet.order/1`` report (JSON and markdown), whose markdown also
goes to the step summaries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from testfleet.core.atomic import append_text_atomic, write_json_atomic, write_text_atomic
from testfleet.diagnose import bisect
from testfleet.runs import commands
from testfleet.timing import report as reports

Echo = Callable[[str], None]


def diagnose_runs(
    results: Sequence[dict[str, Any]],
    pytest_args: Sequence[str],
    order_report: Path,
    summaries: Sequence[Path],
    echo: Echo,
    *,
    jobs: int | None = None,
    max_tests: int | None = None,
    max_victims: int | None = None,
) -> None:
    """Bisect the failed tests of the failing runs; write the ``testfleet.order/1`` report."""
    limit = bisect.DEFAULT_MAX_VICTIMS if max_victims is None else max_victims
    diagnoses: list[bisect.Diagnosis] = []
    not_diagnosed: list[str] = []
    seen: set[str] = set()
    entries: list[dict[str, Any]] = []
    for result in results:
        entry = {k: result[k] for k in ("order", "seed", "exit_status", "report")}
        entry["failed"] = []
        entries.append(entry)
        if result["exit_status"] != commands.ExitCode.TESTS_FAILED:
            # 0 and 5 have nothing to diagnose; 2, 3 and 4 wrote no report to read.
            continue
        try:
            data = reports.load(Path(result["report"]))
        except reports.ReportError as exc:
            echo(f"testfleet: {result['order']}: cannot diagnose: {exc}")
            continue
        order = bisect.order_from_report(data)
        entry["failed"] = bisect.failed_in_report(data)
        # A test that failed in several runs is diagnosed once, in the first order.
        for victim in [v for v in entry["failed"] if v not in seen]:
            seen.add(victim)
            if len(diagnoses) >= limit:
                not_diagnosed.append(victim)
                continue
            diagnoses.append(_diagnose(result, order, victim, pytest_args, jobs, max_tests, echo))
    if not_diagnosed:
        echo(
            f"testfleet: {len(not_diagnosed)} more failing tests not diagnosed (at most "
            f"{limit}); they are listed in {order_report}"
        )
    document = bisect.document(diagnoses, seeds=entries, not_diagnosed=not_diagnosed)
    _write_order_report(document, order_report, summaries)
    echo(
        f"testfleet: order dependence: {len(diagnoses)} tests diagnosed; {order_report}"
        + (f", section appended to {', '.join(map(str, summaries))}" if summaries else "")
    )


def _diagnose(
    result: Mapping[str, Any],
    order: list[str],
    victim: str,
    pytest_args: Sequence[str],
    jobs: int | None,
    max_tests: int | None,
    echo: Echo,
) -> bisect.Diagnosis:
    """Bisect ``victim`` in the order of the run ``result``, with that run's seed."""
    echo(f"testfleet: {result['order']}: diagnosing {victim}")
    diagnosis = bisect.diagnose(
        order,
        victim,
        pytest_args,
        jobs=jobs,
        max_tests=max_tests or bisect.DEFAULT_MAX_TESTS,
        seed=result["seed"],
        echo=echo,
    )
    diagnosis.report = result["report"]
    diagnosis.order_source = result["order"]
    echo(diagnosis.render().rstrip("\n"))
    return diagnosis


def _write_order_report(
    document: dict[str, Any], order_report: Path, summaries: Sequence[Path]
) -> None:
    """The ``testfleet.order/1`` report as JSON and markdown; the markdown also to each summary."""
    markdown = bisect.render_markdown(document)
    write_json_atomic(order_report, document)
    write_text_atomic(order_report.with_suffix(".md"), markdown)
    for path in summaries:
        append_text_atomic(path, markdown)
