"""`testfleet audit`: each rule on code that is wrong on purpose, its look-alikes, the CLI."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import pytest

from testfleet.cli.program import main
from testfleet.diagnose.audit import scan as audit
from testfleet.diagnose.audit.rules import RULES

REPO = Path(__file__).resolve().parent.parent
MATERIAL = REPO / "tests" / "material" / "audit"
AUDIT_DOC = REPO / "docs" / "test-isolation-audit.md"
# The command that writes docs/test-isolation-audit.md, without --output and --root.
DOC_COMMAND = ["audit", "tests", "src", "--exclude", "tests/material", "--format", "markdown"]

# Every line of the material that must be found; every other line must stay silent.
EXPECTED = {
    "tf101_shared_paths.py": [
        ("TF101", 13),
        ("TF101", 18),
        ("TF101", 22),
        ("TF101", 26),
        ("TF101", 30),
        ("TF101", 50),
        ("TF101", 62),
        ("TF101", 66),
        ("TF101", 70),
    ],
    "tf101_shared_names.py": [
        ("TF101", 32),
        ("TF101", 36),
        ("TF101", 40),
        ("TF101", 44),
        ("TF102", 49),
        ("TF102", 53),
    ],
    "tf102_working_directory.py": [
        ("TF102", 10),
        ("TF102", 15),
        ("TF102", 19),
        ("TF102", 23),
        ("TF102", 27),
        ("TF102", 65),
        ("TF102", 66),
        ("TF102", 68),
        ("TF102", 70),
    ],
    "tf103_shared_state.py": [
        ("TF103", 14),
        ("TF103", 22),
        ("TF103", 27),
        ("TF103", 31),
        ("TF103", 39),
        ("TF103", 42),
    ],
    "tf103_imported_state.py": [
        ("TF103", 12),
        ("TF103", 16),
        ("TF103", 20),
        ("TF103", 24),
        ("TF103", 29),
    ],
    "tf104_fixture_scope.py": [("TF104", 9), ("TF104", 15), ("TF104", 20)],
    "tf104_shared_config.py": [("TF104", 30), ("TF104", 37), ("TF104", 42)],
    "tf105_ports.py": [("TF105", 7), ("TF105", 8), ("TF105", 15), ("TF105", 19), ("TF105", 23)],
    "tf106_names.py": [("TF106", 6), ("TF106", 10), ("TF106", 15), ("TF106", 19)],
    "tf107_settings.py": [
        ("TF107", 13),
        ("TF107", 17),
        ("TF107", 21),
        ("TF107", 25),
        ("TF107", 29),
        ("TF107", 77),
    ],
    "tf108_sleep.py": [("TF108", 10), ("TF108", 14), ("TF108", 18)],
    "tf109_prefix_cleanup.py": [
        ("TF109", 13),
        ("TF109", 18),
        ("TF109", 24),
        ("TF109", 29),
        ("TF109", 33),
        ("TF109", 37),
    ],
    "tf110_unseeded_reads.py": [("TF110", 14), ("TF110", 18), ("TF110", 23)],
}


def found(path: Path) -> list[tuple[str, int]]:
    result = audit.audit_paths([path], root=path.parent)
    assert not result.errors
    return [(item.rule, item.line) for item in result.findings]


def audit_text(tmp_path: Path, source: str) -> list[tuple[str, int]]:
    path = tmp_path / "test_sample.py"
    path.write_text(source, encoding="utf-8")
    return found(path)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_rule_finds_exactly_the_marked_lines_of_its_material(name: str) -> None:
    assert found(MATERIAL / name) == EXPECTED[name]


def test_every_rule_has_material_and_a_row_in_the_docs() -> None:
    covered = {rule for findings in EXPECTED.values() for rule, _ in findings}
    assert covered == set(RULES)
    diagnose = (REPO / "docs" / "diagnose.md").read_text(encoding="utf-8")
    for rule in RULES.values():
        row = f"| {rule.id} | {rule.severity} | {rule.title} | {rule.why} | {rule.fix} | "
        assert f"{row}{rule.effort} |" in diagnose


def test_the_outer_pytest_never_collects_the_material() -> None:
    # pytest's default python_files; the material must match neither.
    names = [path.name for path in MATERIAL.iterdir()]
    assert names
    assert not [
        name for name in names if fnmatch.fnmatch(name, "test_*.py") or name.endswith("_test.py")
    ]
    assert not (MATERIAL / "conftest.py").exists()


def test_a_finding_carries_why_fix_and_effort_from_its_rule() -> None:
    result = audit.audit_paths([MATERIAL / "tf105_ports.py"], root=REPO)
    first = result.findings[0]
    assert first.path == "tests/material/audit/tf105_ports.py"
    assert (first.line, first.rule, first.severity, first.detail) == (
        7,
        "TF105",
        "high",
        "`PORT = 8080`",
    )
    assert "testfleet_service" in first.fix
    assert first.effort == "moderate"


SILENCED = """\
def test_paths():
    open("/tmp/a", "w")  # testfleet: ignore[TF101]
    open("/tmp/b", "w")  # testfleet: ignore
    open("/tmp/c", "w")  # testfleet: ignore[TF999]
    open("/tmp/d", "w")  # testfleet: ignore[tf102, TF101]
    open("/tmp/e # testfleet: ignore", "w")
    open("/tmp/f", "w")  # testfleet: ignore[TF102]
"""


def test_an_ignore_comment_silences_its_rule_and_a_wrong_rule_id_silences_nothing(
    tmp_path: Path,
) -> None:
    assert audit_text(tmp_path, SILENCED) == [("TF101", 4), ("TF101", 6), ("TF101", 7)]


def test_an_unknown_rule_id_in_an_ignore_comment_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "test_sample.py"
    path.write_text(SILENCED, encoding="utf-8")
    result = audit.audit_paths([path], root=tmp_path)
    assert result.warnings == [
        "test_sample.py:4: unknown rule TF999 in a testfleet: ignore comment"
    ]


def test_helpers_and_application_code_are_not_audited_as_tests(tmp_path: Path) -> None:
    source = (
        "import os\nimport time\n\nSTATE = []\n\n"
        "def load():\n    STATE.append(1)\n    time.sleep(1)\n    os.environ['A'] = '1'\n"
    )
    assert audit_text(tmp_path, source) == []


TWO_FILES = {
    "test_bad.py": 'def test_writes():\n    open("/tmp/out", "w")\n',
    "test_slow.py": "import time\n\ndef test_waits():\n    time.sleep(1)\n",
    "test_good.py": "def test_writes(tmp_path):\n    (tmp_path / 'out').write_text('x')\n",
}


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    for name, source in TWO_FILES.items():
        (tmp_path / name).write_text(source, encoding="utf-8")
    return tmp_path


def test_the_text_output_lists_each_finding_with_why_and_fix(
    suite: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", str(suite), "--root", str(suite)]) == 1
    tf101, tf108 = RULES["TF101"], RULES["TF108"]
    assert capsys.readouterr().out == (
        "test_bad.py:2: TF101 [high] hardcoded shared path: the shared path '/tmp/out'\n"
        f"    why: {tf101.why}\n"
        f"    fix (1-2 lines): {tf101.fix}\n"
        "test_slow.py:4: TF108 [medium] fixed sleep used to wait: "
        "`time.sleep(1)` outside a polling loop\n"
        f"    why: {tf108.why}\n"
        f"    fix (moderate): {tf108.fix}\n"
        "2 findings (high 1, medium 1, low 0) in 3 files\n"
    )


@pytest.mark.parametrize("fail_on", ["low", "medium", "high"])
def test_findings_at_or_above_the_chosen_severity_exit_1(suite: Path, fail_on: str) -> None:
    assert main(["audit", str(suite), "--fail-on", fail_on]) == 1


def test_findings_below_the_chosen_severity_exit_0(suite: Path) -> None:
    (suite / "test_bad.py").unlink()
    assert main(["audit", str(suite), "--fail-on", "high"]) == 0
    assert main(["audit", str(suite), "--fail-on", "medium"]) == 1


def test_a_clean_suite_exits_0(suite: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(suite / "test_good.py"), "--root", str(suite)]) == 0
    assert capsys.readouterr().out == "0 findings (high 0, medium 0, low 0) in 1 files\n"


def test_an_unknown_path_is_a_usage_error_that_names_it(
    suite: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", str(suite), str(suite / "missing")]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"testfleet: error: no such file or directory: {suite / 'missing'}\n"


def test_a_file_that_does_not_parse_exits_2_without_hiding_the_others_findings(
    suite: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (suite / "test_broken.py").write_text("def test_x(:\n    pass\n", encoding="utf-8")
    assert main(["audit", str(suite), "--root", str(suite)]) == 2
    out, err = capsys.readouterr()
    assert "test_bad.py:2: TF101" in out
    assert "test_slow.py:4: TF108" in out
    assert "error: test_broken.py:1: does not parse: " in out
    assert err.startswith("testfleet: error: 1 file(s) could not be audited: test_broken.py:1:")


def test_excluded_paths_are_not_audited(suite: Path) -> None:
    assert main(["audit", str(suite), "--root", str(suite), "--exclude", "test_ba*"]) == 1
    assert main(["audit", str(suite), "--root", str(suite), "--exclude", "test_[bs]*.py"]) == 0


def test_json_output_is_written_atomically_with_every_field(
    suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out" / "audit.json"
    args = ["audit", str(suite), "--root", str(suite), "--format", "json", "--output"]
    assert main([*args, str(target)]) == 1
    assert capsys.readouterr().out == (
        f"testfleet: audit: 2 findings (high 1, medium 1, low 0) in 3 files; written to {target}\n"
    )
    data = json.loads(target.read_text(encoding="utf-8"))
    assert data["schema"] == "testfleet.audit/1"
    assert data["summary"] == {"findings": 2, "severities": {"high": 1, "medium": 1, "low": 0}}
    assert data["findings"][0] == {
        "path": "test_bad.py",
        "line": 2,
        "rule": "TF101",
        "severity": "high",
        "title": "hardcoded shared path",
        "detail": "the shared path '/tmp/out'",
        "why": RULES["TF101"].why,
        "fix": RULES["TF101"].fix,
        "effort": "1-2 lines",
    }
    assert [path.name for path in target.parent.iterdir()] == ["audit.json"]


def test_markdown_output_is_a_table_with_the_command_that_makes_it(
    suite: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", str(suite), "--root", str(suite), "--format", "markdown"]) == 1
    page = capsys.readouterr().out
    assert page.startswith("# Test isolation audit\n\nGenerated by `testfleet audit . ")
    assert "| `test_bad.py:2` | TF101 | high | hardcoded shared path: " in page
    assert "- **TF108** (fixed sleep used to wait): " in page


def test_the_committed_audit_of_this_repository_is_up_to_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "audit.md"
    args = [str(REPO / word) if word in {"tests", "src"} else word for word in DOC_COMMAND]
    main([*args, "--root", str(REPO), "--output", str(target)])
    capsys.readouterr()
    regenerate = " ".join(["testfleet", *DOC_COMMAND, "--output", "docs/test-isolation-audit.md"])
    assert AUDIT_DOC.read_text(encoding="utf-8") == target.read_text(encoding="utf-8"), (
        f"docs/test-isolation-audit.md is stale: regenerate it with `{regenerate}`"
    )
