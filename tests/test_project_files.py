"""The README, .ci/run, the noxfile and tasks.py agree with each other and with the code."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from testfleet.cli.program import main

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    section = (
        ROOT.joinpath("README.md")
        .read_text()
        .split("## On a fresh machine", 1)[1]
        .split("\n## ", 1)[0]
    )
    return re.findall(r"```sh\n(.+?)\n```", section, flags=re.S)


def test_the_readme_gives_exactly_two_commands_for_a_fresh_machine() -> None:
    main_job, test_suite = readme_commands()
    assert main_job.endswith("&& invoke ci")
    assert test_suite.endswith("&& nox -s tests_parallel")
    extras = tomllib.loads(ROOT.joinpath("pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for command in (main_job, test_suite):
        for part in command.split(" && "):
            words = shlex.split(part)
            if words[:4] == ["python", "-m", "pip", "install"] and words[4:5] == ["-e"]:
                # The extra the README installs exists.
                assert words[5] == ".[dev]"
                assert "dev" in extras


def test_ci_runs_the_readme_main_job_word_for_word_once_in_a_random_order() -> None:
    main_job, _ = readme_commands()
    lines = ROOT.joinpath(".ci", "run").read_text().splitlines()
    assert lines.count(main_job) == 1
    # The one run of the suite is in a random order, set before it.
    exported = lines.index("export TESTFLEET_RANDOM_ORDER=$seed")
    assert exported < lines.index(main_job)
    # ... and it is the only one: no other pytest run or test session.
    others = [line for line in lines if "-m pytest" in line or "nox -s tests" in line]
    assert not others
    # The Docker step comes after the checks, before the closing count line, which reads
    # the suite's own report (the container run writes into reports/ too).
    docker = lines.index("bash .ci/docker || exit $?")
    assert lines.index('cp "$report" reports/ci-suite-timing.json') < docker
    assert lines.index("nox --no-venv -s lint typecheck || exit $?") < docker
    assert docker < lines.index("python3 - \"$report\" <<'PY'")
    result = subprocess.run(["bash", "-n", str(ROOT / ".ci" / "run")], check=False)
    assert result.returncode == 0


def test_nox_lists_the_sessions_the_docs_promise() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nox", "-l", "--no-color"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    sessions = set(re.findall(r"^[*-] (\w+)", result.stdout, flags=re.M))
    assert {"tests", "tests_parallel", "randomized", "coverage", "lint", "typecheck"} <= sessions
    readme = ROOT.joinpath("README.md").read_text()
    for session in sessions:
        assert f"nox -s {session}" in readme


def test_the_quick_loop_keeps_at_least_80_percent_of_the_tests(
    request: pytest.FixtureRequest,
) -> None:
    # The tests of this run: in the whole suite's run (CI), all of them. nox -s tests_fast
    # leaves out the `e2e` ones; were they more than a fifth, it would no longer be the suite.
    items = request.session.items
    e2e = [item.nodeid for item in items if item.get_closest_marker("e2e")]
    assert len(e2e) <= 0.2 * len(items), f"{len(e2e)} of {len(items)} tests are marked e2e"
    noxfile = ROOT.joinpath("noxfile.py").read_text()
    assert '"-m", "not e2e"' in noxfile


def test_invoke_lists_ci_and_baseline_with_a_line_each() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "--list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    tasks = dict(re.findall(r"^  (\w+)\s+(\S.*)$", result.stdout, flags=re.M))
    assert {"ci", "baseline", "report"} <= set(tasks)
    assert all(text.strip() for text in tasks.values())


def cli_usage_lines() -> list[str]:
    section = (
        ROOT.joinpath("README.md")
        .read_text()
        .split("## The command line", 1)[1]
        .split("\n## ", 1)[0]
    )
    block = re.findall(r"```sh\n(.+?)\n```", section, flags=re.S)[0]
    return block.splitlines()


@pytest.mark.parametrize("line", cli_usage_lines(), ids=lambda line: line.split()[1])
def test_every_testfleet_command_in_the_readme_names_real_options(
    line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    words = shlex.split(line.split("#", 1)[0])
    assert words[0] == "testfleet"
    with pytest.raises(SystemExit) as exit_info:
        main([words[1], "--help"])
    assert exit_info.value.code == 0
    usage = capsys.readouterr().out
    flags = {
        re.sub(r"[=\]].*", "", w.strip("["))
        for w in words
        if w.strip("[").startswith("--") and w != "--"
    }
    assert usage.startswith(f"usage: testfleet {words[1]}")
    for flag in flags:
        # Whole flags only: --seed must not pass because --seeds exists.
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", usage), flag


def test_the_committed_baseline_is_a_valid_serial_report() -> None:
    from testfleet.timing import report

    baseline = report.load(ROOT / "reports" / "test-timing-baseline.json")
    assert baseline["run"]["mode"] == "serial"
    assert baseline["run"]["workers"] == 1
    assert baseline["summary"]["tests"] > 50
    assert baseline["summary"]["outcomes"]["failed"] == 0
