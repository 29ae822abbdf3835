"""`testfleet report --format html`: the page's content, and the page in a real browser."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from invoke import MockContext, Result

import chromium
from testfleet.cli.program import build_parser, main
from testfleet.core.atomic import write_json_atomic
from testfleet.reporting import analysis
from testfleet.reporting import html as html_report
from testfleet.reporting import svg as html_svg
from testfleet.timing import report
from testfleet.timing.records import TimingRecord, build_report

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "reports" / "test-timing-baseline.json"
#: A real run of this repository's suite on two workers (the one docs/report-timeline.png shows).
PARALLEL_RUN = ROOT / "tests" / "material" / "history" / "parallel-run-of-this-suite.json"
REPORT = "reports/test-timing.json"

SAMPLE_SUITE = """
import time

import pytest


@pytest.mark.parametrize("n", range(12))
def test_sleeps_a_little(n):
    time.sleep(0.01 * (n % 4))


def test_fails():
    assert 1 == 2


@pytest.mark.skip(reason="not today")
def test_skipped():
    pass


@pytest.mark.serial
def test_runs_alone():
    time.sleep(0.05)
"""


def generated_report(tests: int, workers: int) -> dict[str, Any]:
    """A parallel run of ``tests`` tests on ``workers`` workers, and one serial test after."""
    records = []
    clock = dict.fromkeys(range(workers), 1000.0)
    for index in range(tests):
        worker = index % workers
        start = clock[worker]
        clock[worker] = start + 0.001 + (index % 7) * 0.002
        records.append(
            TimingRecord(
                nodeid=f"tests/test_m{index % 40}.py::test_{index}[<b>{index}</b>]",
                worker=f"gw{worker}",
                outcome="failed" if index % 97 == 0 else "passed",
                call=clock[worker] - start,
                start=start,
                stop=clock[worker],
            )
        )
    end = max(clock.values())
    records.append(
        TimingRecord("tests/test_z.py::test_serial", "main", call=0.5, start=end, stop=end + 0.5)
    )
    run = {"id": "gen", "mode": "parallel", "workers": workers, "dist": "loadgroup",
           "start": 1000.0, "end": end + 0.5, "wall_seconds": end + 0.5 - 1000.0}  # fmt: skip
    return build_report(records, run)


def render(data: dict[str, Any], **extras: Any) -> str:
    return html_report.page(analysis.analyze(data), data, **extras)


def test_the_page_has_one_lane_per_worker_and_one_bar_per_test_serial_lane_last() -> None:
    data = generated_report(200, 3)
    page = render(data)
    lanes = re.findall(r'<g class="lane" data-worker="([^"]+)"', page)
    assert lanes == ["gw0", "gw1", "gw2", "main"]
    assert page.count('<rect class="bar ') == 201
    assert page.count('class="bar o-failed"') == 3  # tests 0, 97 and 194
    assert ">serial phase</text>" in page
    assert '<line class="phase"' in page


def test_the_page_needs_nothing_from_the_network_and_escapes_node_ids() -> None:
    page = render(generated_report(20, 2))
    assert "default-src 'none'" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<b>3</b>" not in page
    assert "[&lt;b&gt;3&lt;/b&gt;]" in page


def test_worker_start_up_and_collection_show_before_the_first_test_of_each_lane() -> None:
    data = generated_report(20, 2)
    # As a parallel phase records it, in seconds from the phase's start.
    phase = {**data["run"], "start": 995.0}
    phase["worker_startup"] = {"gw0": {"ready": 2.0, "collected": 4.5}, "gw1": {"ready": 2.5}}
    data["run"]["phases"] = [phase]
    page = render(data)
    assert "<title>gw0 start-up: 2.00s</title>" in page
    assert "<title>gw0 collection: 2.50s</title>" in page
    assert "<title>gw1 start-up: 2.50s</title>" in page
    data["tests"][0]["cpu"] = 0.0042
    assert f"{data['tests'][0]['duration']:.3f}s (CPU 0.004s) failed on gw0" in render(data)
    assert page.count('<rect class="startup"') == 2
    # The axis starts with the phase, before the first test.
    assert re.search(r'<rect class="startup" x="110.00"', page)
    assert page.count('<rect class="bar ') == 21


def test_lanes_sort_workers_by_number_and_put_the_serial_phase_last() -> None:
    tests = [{"worker": w} for w in ("main", "gw10", "gw2", "gw0")]
    assert html_svg.lanes(tests) == ["gw0", "gw2", "gw10", "main"]


def test_classification_of_another_run_is_not_shown_as_this_runs() -> None:
    data = generated_report(10, 2)
    result = {
        "run_id": "gen",
        "results": [{"nodeid": "t.py::x", "class": "flaky", "worker": "gw0", "reproduce": "p"}],
    }
    assert "<td>flaky</td>" in render(data, classification=result)
    stale = render(data, classification={**result, "run_id": "older"})
    assert "is from run older, not this one: not shown" in stale
    assert "<td>flaky</td>" not in stale


def test_report_format_html_writes_the_page_with_trends_and_diagnoses_beside_it(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    data = generated_report(30, 2)
    write_json_atomic(pytester.path / REPORT, data)
    assert main(["history", "import", REPORT]) == 0
    order = {"schema": "testfleet.order/1", "results": [
        {"victim": "t.py::victim", "verdict": "polluted-by", "tests": ["t.py::polluter"],
         "command": "python -m pytest t.py::polluter t.py::victim"}]}  # fmt: skip
    write_json_atomic(pytester.path / html_report.ORDER_REPORT, order)
    capsys.readouterr()
    assert main(["report", REPORT, "--format", "html", "--output", "reports/report.html"]) == 0
    page = (pytester.path / "reports" / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<h3>Wall time per run</h3>" in page
    assert '<rect class="col bad"' in page  # the run had failures
    assert "Order dependence (testfleet randomized)" in page
    assert "<code>t.py::polluter</code>" in page


def test_an_unreadable_history_leaves_the_page_without_trends_saying_why(
    pytester: pytest.Pytester,
) -> None:
    write_json_atomic(pytester.path / REPORT, generated_report(10, 2))
    history = pytester.path / "reports" / "history.sqlite"
    history.write_bytes(b"not a database" * 100)
    assert main(["report", REPORT, "--format", "html", "--output", "page.html"]) == 0
    page = (pytester.path / "page.html").read_text()
    assert "<p class='warn'>No trends: reports/history.sqlite is not a readable history" in page
    assert history.read_bytes() == b"not a database" * 100


@pytest.fixture(scope="module")
def browser() -> Iterator[chromium.Page]:
    binary = chromium.find()
    if binary is None:
        pytest.skip("no Chromium installed: apt-get install chromium")
    page = chromium.Page(binary)
    try:
        yield page
    finally:
        page.close()


COUNTS = """({
  lanes: [...document.querySelectorAll("svg.timeline g.lane")].map(g => g.dataset.worker),
  bars: document.querySelectorAll("svg.timeline rect.bar").length,
  tips: [...document.querySelectorAll("svg.timeline rect.bar title")].map(t => t.textContent),
})"""


def test_the_browser_reports_errors_of_a_broken_page(
    browser: chromium.Page, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    browser.open(broken)
    assert any("undefinedFunction" in error for error in browser.errors)


def test_a_real_parallel_run_shows_in_chromium_a_lane_per_worker_and_every_test(
    pytester: pytest.Pytester, browser: chromium.Page
) -> None:
    pytester.makepyfile(test_sample=SAMPLE_SUITE)
    assert main(["run", "--workers", "2", "--report", REPORT, "--", "-p", "no:randomly"]) == 1
    assert main(["report", REPORT, "--format", "html", "--output", "report.html"]) == 0
    data = json.loads((pytester.path / REPORT).read_text())
    browser.open(pytester.path / "report.html")
    assert browser.errors == []
    seen = browser.evaluate(COUNTS)
    # The `serial` test ran last on one of the workers, in the same session.
    assert seen["lanes"] == ["gw0", "gw1"]
    assert seen["bars"] == len(data["tests"]) == 15
    assert sorted(tip.split("\n")[0] for tip in seen["tips"]) == sorted(
        t["nodeid"] for t in data["tests"]
    )
    failed = next(tip for tip in seen["tips"] if "test_fails" in tip)
    # testfleet run records each test's CPU time: the hover text shows it.
    assert re.fullmatch(
        r"test_sample\.py::test_fails\n\d+\.\d{3}s \(CPU \d+\.\d{3}s\) failed on gw\d", failed
    )
    # Hovering a bar names the test under the timeline.
    shown = browser.evaluate(
        """(() => {
          const bar = document.querySelector("rect.bar.o-failed");
          bar.dispatchEvent(new MouseEvent("mouseover", {bubbles: true}));
          return document.getElementById("hover").textContent;
        })()"""
    )
    assert shown.startswith("test_sample.py::test_fails\n")


@pytest.mark.parametrize("recorded", [BASELINE, PARALLEL_RUN], ids=["serial", "parallel"])
def test_this_repositorys_recorded_runs_show_every_test_in_chromium(
    browser: chromium.Page, tmp_path: Path, recorded: Path
) -> None:
    data = report.load(recorded)
    page = tmp_path / "report.html"
    page.write_text(render(data))
    browser.open(page)
    assert browser.errors == []
    seen = browser.evaluate(COUNTS)
    assert seen["lanes"] == sorted({t["worker"] for t in data["tests"]})
    assert seen["bars"] == len(data["tests"]) > 300


def test_a_ten_thousand_test_page_opens_with_every_bar(
    browser: chromium.Page, tmp_path: Path
) -> None:
    page = tmp_path / "big.html"
    page.write_text(render(generated_report(10_000, 8)))
    browser.open(page)
    assert browser.errors == []
    seen = browser.evaluate(COUNTS.split("  tips:")[0] + "})")
    assert seen["bars"] == 10_001
    assert len(seen["lanes"]) == 9


@pytest.mark.parametrize("history", ["1", "0"])
def test_ci_writes_the_page_after_recording_the_classified_reruns(
    history: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    spec = importlib.util.spec_from_file_location("testfleet_tasks", ROOT / "tasks.py")
    assert spec is not None
    assert spec.loader is not None
    tasks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tasks)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TESTFLEET_HISTORY", history)
    # The report the mocked `nox -s tests_parallel` would have written.
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "test-timing.json").write_text("{}")
    context = MockContext(
        run={
            re.compile(r"nox -s tests_parallel\b.*"): Result(exited=1),
            re.compile(".*"): Result(),
        },
        repeat=True,
    )
    tasks.namespace.tasks["ci"](context)
    commands = [call.args[0] for call in context.run.call_args_list]  # type: ignore[attr-defined]
    testfleet = [shlex.split(c)[1:] for c in commands if c.startswith("testfleet ")]
    for argv in testfleet:
        build_parser().parse_args(argv)  # every command parses
    names = [argv[0] if argv[0] != "history" else f"history {argv[1]}" for argv in testfleet]
    expected = (
        ["classify", "history import", "report"] if history == "1" else ["classify", "report"]
    )
    assert names[-len(expected) :] == expected
    page = testfleet[-1]
    assert page[page.index("--format") + 1] == "html"
    assert page[page.index("--output") + 1] == "reports/report.html"
    if history == "1":
        assert testfleet[-2][2:] == [
            "reports/test-timing.json",
            "--classification",
            "reports/classification.json",
        ]


def test_a_src_layout_project_with_an_xdist_group_gets_its_page_and_its_history(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyprojecttoml(
        '[tool.pytest.ini_options]\naddopts = "-ra"\ntestpaths = ["tests"]\n'
    )
    package = pytester.mkdir("src").joinpath("sample")
    package.mkdir()
    (package / "__init__.py").write_text("VALUE = 3\n")
    tests = pytester.mkdir("tests")
    (tests / "test_value.py").write_text(
        "import pytest\n\n\n"
        "@pytest.mark.xdist_group('db')\n"
        "@pytest.mark.parametrize('n', range(6))\n"
        "def test_grouped(n):\n    assert n < 6\n\n\n"
        "@pytest.mark.parametrize('n', range(6))\n"
        "def test_free(n):\n    pass\n"
    )
    pytester.syspathinsert(pytester.path / "src")
    assert main(["run", "--workers", "2", "--report", REPORT]) == 0
    assert main(["report", REPORT, "--format", "html", "--output", "page.html"]) == 0
    page = (pytester.path / "page.html").read_text()
    assert re.findall(r'<g class="lane" data-worker="([^"]+)"', page) == ["gw0", "gw1"]
    assert page.count('<rect class="bar o-passed"') == 12
    # The grouped tests keep their serial node ids, and the run is in the history.
    assert "tests/test_value.py::test_grouped[0]\n" in page
    assert "<h3>Wall time per run</h3>" in page
