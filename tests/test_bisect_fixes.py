"""The fixes `testfleet bisect` proposes for a polluter: a cleaner, the state, verified patches.

The snapshots, the patch texts and the cleaner search run in this process (a module made
here, files in tmp_path, an oracle that is a function); the pytest runs are in the slow
tests at the end, on generated suites with planted polluters and a planted cleaner.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from testfleet.cli.program import main
from testfleet.diagnose import cleaner, edits, fixes, polluter_fixes, propose, state
from testfleet.diagnose.probes import SubprocessProbes
from testfleet.diagnose.state import ATTRIBUTE, CWD, ENVIRON, FILE, FIXTURE, Change

HELPERS = 'MODE = "plain"\nSEEN = []\n'
POLLUTERS = """\
import os
from pathlib import Path

import helpers


def test_sets_mode():
    helpers.MODE = "fancy"
    os.environ["UNRELATED_FLAG"] = "1"


def test_sets_env():
    os.environ["PLANTED_FLAG"] = "1"


def test_writes_file():
    Path("marker.txt").write_text("x")


def test_fills_shared(shared):
    shared["items"].append(1)
"""
VICTIMS = """\
import os
from pathlib import Path

import helpers


def test_mode_is_plain():
    assert helpers.MODE == "plain"


def test_flag_is_unset():
    assert "PLANTED_FLAG" not in os.environ


def test_no_marker():
    assert not Path("marker.txt").exists()


def test_shared_is_empty(shared):
    assert shared["items"] == []
"""
# The session fixture removes the marker at the end of each run: the file polluter leaks
# only within a run, as order dependence does (a file that outlives the process would
# make every later probe fail).
CONFTEST = """\
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared():
    return {"items": []}


@pytest.fixture(scope="session", autouse=True)
def _remove_marker_at_exit():
    yield
    Path("marker.txt").unlink(missing_ok=True)
"""
CLEANER = 'import helpers\n\n\ndef test_resets_mode():\n    helpers.MODE = "plain"\n'

Oracle = Callable[[tuple[str, ...]], str]


@pytest.fixture
def suite(pytester: pytest.Pytester) -> Path:
    """Polluters, their victims, a cleaner that runs after the victims, and fillers."""
    pytester.makepyfile(
        helpers=HELPERS,
        conftest=CONFTEST,
        test_a_polluters=POLLUTERS,
        test_b_victims=VICTIMS,
        test_c_cleaner=CLEANER,
        **{f"test_d_filler{n}": f"def test_filler_{n}():\n    pass\n" for n in range(4)},
    )
    return pytester.path


def planted_module() -> types.ModuleType:
    module = types.ModuleType("planted")
    module.MODE = "plain"  # type: ignore[attr-defined]
    module.CACHE = []  # type: ignore[attr-defined]
    module.Config = type("Config", (), {"__module__": "planted", "DEBUG": False})  # type: ignore[attr-defined]
    module.fetch = lambda: "real"  # type: ignore[attr-defined]
    return module


def test_rebound_attributes_functions_included_and_a_mutated_container_are_told_apart() -> None:
    module = planted_module()
    before = state.Snapshot(state.attributes(iter([module])))
    module.MODE = "fancy"  # type: ignore[attr-defined]
    module.CACHE.append(1)  # type: ignore[attr-defined]
    module.Config.DEBUG = True  # type: ignore[attr-defined]
    module.fetch = lambda: "fake"  # type: ignore[attr-defined]
    after = state.Snapshot(state.attributes(iter([module])))

    changes = state.diff(before, after)

    assert [(c.kind, c.place, c.name, c.how) for c in changes] == [
        (ATTRIBUTE, "planted", "CACHE", "mutated"),
        (ATTRIBUTE, "planted", "Config.DEBUG", "rebound"),
        (ATTRIBUTE, "planted", "MODE", "rebound"),
        (ATTRIBUTE, "planted", "fetch", "rebound"),
    ]
    assert changes[0].describe() == "planted.CACHE mutated: [] -> [1]"


class Unconfigured:
    """A lazy settings object before it is configured: every attribute lookup refuses."""

    def __getattribute__(self, name: str) -> object:
        raise RuntimeError("settings are not configured")


def test_an_attribute_that_refuses_every_lookup_is_left_out_and_the_rest_still_snapshotted() -> (
    None
):
    module = planted_module()
    module.settings = Unconfigured()  # type: ignore[attr-defined]

    found = state.attributes(iter([module]))

    assert "planted:MODE" in found
    assert "planted:settings" not in found
    assert state.value_of(Unconfigured()).digest is None


def test_environment_files_and_the_current_directory_changes_are_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kept.txt").write_text("same")
    (tmp_path / "edited.txt").write_text("old")
    (tmp_path / "sub").mkdir()
    monkeypatch.setenv("PLANTED_CHANGED", "old")
    before = state.take([tmp_path], tmp_path)
    monkeypatch.setenv("PLANTED_CHANGED", "new")
    monkeypatch.setenv("PLANTED_SET", "1")
    (tmp_path / "edited.txt").write_text("newer text")
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "inside.txt").write_text("x")
    monkeypatch.chdir(tmp_path / "sub")
    after = state.take([tmp_path], tmp_path)

    changes = {(c.kind, c.name, c.how) for c in state.diff(before, after)}

    assert (ENVIRON, "PLANTED_CHANGED", "changed") in changes
    assert (ENVIRON, "PLANTED_SET", "set") in changes
    assert (FILE, "edited.txt", "changed") in changes
    assert (FILE, "new/inside.txt", "created") in changes
    assert (CWD, str(tmp_path / "sub"), "changed") in changes
    assert not any(name == "kept.txt" for _, name, _ in changes)


def test_the_state_plugin_records_what_the_tests_before_the_last_one_leave(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANTED_FLAG", "before")
    # A temp directory of its own, as the runs of `propose` have: the machine's sees the
    # files of every other process.
    private = pytester.mkdir("private-tmp")
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    pytester.syspathinsert()
    pytester.makepyfile(
        planted_helpers='MODE = "plain"\n',
        test_one="""
            import os
            from pathlib import Path

            import pytest

            import planted_helpers


            @pytest.fixture(scope="module")
            def shared():
                return {"items": []}


            def test_polluter(shared):
                planted_helpers.MODE = "fancy"
                os.environ["PLANTED_FLAG"] = "after"
                Path("marker.txt").write_text("x")
                shared["items"].append(1)


            def test_victim(shared):
                pass
        """,
    )

    result = pytester.runpytest("-p", "no:randomly", "--testfleet-state-file=state.json")

    result.assert_outcomes(passed=2)
    data = json.loads((pytester.path / "state.json").read_text(encoding="utf-8"))
    found = {(c["kind"], c["name"], c["how"]) for c in data["changes"]}
    assert found == {
        (ATTRIBUTE, "MODE", "rebound"),
        (ENVIRON, "PLANTED_FLAG", "changed"),
        (FILE, "marker.txt", "created"),
        (FIXTURE, "shared", "mutated"),
    }


def suggestions_for(root: Path, polluter: str, change: Change) -> list[fixes.Suggestion]:
    found = fixes.suggest(root, [polluter], [change])
    for suggestion in found:
        for name, text in suggestion.files.items():
            compile(text, name, "exec")  # every patched file is still Python
    return found


def test_a_polluter_assigning_an_attribute_gets_monkeypatch_and_a_conftest_fixture(
    suite: Path,
) -> None:
    change = Change(ATTRIBUTE, "MODE", "rebound", "helpers", "'plain'", "'fancy'")

    inside, conftest = suggestions_for(suite, "test_a_polluters.py::test_sets_mode", change)

    assert "+def test_sets_mode(monkeypatch):" in inside.diff
    assert '+    monkeypatch.setattr(helpers, "MODE", "fancy")' in inside.diff
    assert '-    helpers.MODE = "fancy"' in inside.diff
    assert list(conftest.files) == ["conftest.py"]
    assert "+@pytest.fixture(autouse=True)" in conftest.diff
    assert "+    owner.MODE = saved" in conftest.diff


def test_env_file_and_fixture_changes_get_fixes_in_the_polluter_and_beside_it(
    suite: Path,
) -> None:
    env = suggestions_for(
        suite, "test_a_polluters.py::test_sets_env", Change(ENVIRON, "PLANTED_FLAG", "set")
    )
    file = suggestions_for(
        suite, "test_a_polluters.py::test_writes_file", Change(FILE, "marker.txt", "created", "cwd")
    )
    fixture = suggestions_for(
        suite, "test_a_polluters.py::test_fills_shared", Change(FIXTURE, "shared", "mutated")
    )

    assert '+    monkeypatch.setenv("PLANTED_FLAG", "1")' in env[0].diff
    assert 'os.environ.pop("PLANTED_FLAG", None)' in env[1].files["conftest.py"]
    assert "+    monkeypatch.chdir(tmp_path)" in file[0].diff
    assert "+def test_writes_file(monkeypatch, tmp_path):" in file[0].diff
    assert "path.unlink(missing_ok=True)" in file[1].files["conftest.py"]
    assert "+    shared = copy.deepcopy(shared)" in fixture[0].diff
    assert "+import copy" in fixture[0].diff
    assert list(fixture[1].files) == ["conftest.py"]
    assert '-@pytest.fixture(scope="session")\n+@pytest.fixture\n' in fixture[1].diff


def test_a_fixture_keeps_its_other_arguments_when_its_scope_is_taken_off(tmp_path: Path) -> None:
    path = tmp_path / "conftest.py"
    path.write_text(
        'import pytest\n\n\n@pytest.fixture(scope="module", autouse=True)\ndef data():\n'
        "    return []\n"
    )
    fixture = edits.find_fixture([path], "data")
    assert fixture is not None

    lines = edits.without_scope(fixture)

    assert lines is not None
    assert "@pytest.fixture(autouse=True)\n" in lines


def test_a_method_with_a_long_docstring_gets_its_fixture_after_the_docstring(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_m.py").write_text(
        "class TestThing:\n"
        "    def test_writes(self) -> None:\n"
        '        """Writes a file.\n\n        Into the cwd.\n        """\n'
        '        open("out.txt", "w").close()\n'
    )
    change = Change(FILE, "out.txt", "created", "cwd")

    inside, _ = suggestions_for(tmp_path, "test_m.py::TestThing::test_writes", change)

    text = inside.files["test_m.py"]
    assert "    def test_writes(self, monkeypatch, tmp_path) -> None:\n" in text
    assert '        """\n        monkeypatch.chdir(tmp_path)\n        open(' in text


def test_a_polluter_whose_signature_ends_in_a_comment_gets_monkeypatch_in_its_own_body(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_c.py").write_text(
        "import os\n\n\n"
        "def test_sets():  # noqa: D103 (a comment)\n"
        '    os.environ["PLANTED_FLAG"] = "1"\n'
        '    with open("out.txt", "w") as out:\n'
        '        out.write("x")\n'
    )
    change = Change(ENVIRON, "PLANTED_FLAG", "set", "", None, "1")

    inside, _ = suggestions_for(tmp_path, "test_c.py::test_sets", change)

    text = inside.files["test_c.py"]
    assert "def test_sets(monkeypatch):  # noqa: D103 (a comment)\n" in text
    assert '    monkeypatch.setenv("PLANTED_FLAG", "1")\n' in text
    assert '    with open("out.txt", "w") as out:\n' in text


def test_a_method_is_rewritten_in_its_own_class_not_in_an_earlier_one_of_the_same_name(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_two.py").write_text(
        "import os\n\n\n"
        "class TestUsers:\n"
        "    def test_create(self):\n"
        "        assert os.environ.get('PLANTED_FLAG') is None\n\n\n"
        "class TestGroups:\n"
        "    def test_create(self):\n"
        "        os.environ['PLANTED_FLAG'] = '1'\n"
    )
    change = Change(ENVIRON, "PLANTED_FLAG", "set", "", None, "1")

    inside, _ = suggestions_for(tmp_path, "test_two.py::TestGroups::test_create", change)

    assert "-        os.environ['PLANTED_FLAG'] = '1'" in inside.diff
    assert "+        monkeypatch.setenv('PLANTED_FLAG', '1')" in inside.diff
    assert inside.diff.count("+    def test_create(self, monkeypatch):") == 1
    text = inside.files["test_two.py"]
    assert "    def test_create(self):\n        assert os.environ" in text


def test_an_import_goes_after_a_module_docstring_with_a_line_that_starts_like_one(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_doc.py").write_text(
        '"""The store, seen\n'
        "from a user's side.\n"
        '"""\n\n'
        "def test_fills(shared):\n"
        "    shared.append(1)\n"
    )
    change = Change(FIXTURE, "shared", "mutated", "", "[]", "[1]")

    (inside,) = polluter_fixes.in_polluters(tmp_path, ["test_doc.py::test_fills"], change)

    text = inside.files["test_doc.py"]
    assert text.startswith('"""The store, seen\nfrom a user\'s side.\n"""\nimport copy\n')


def test_a_copy_of_the_project_has_its_absolute_links_to_its_own_files_point_into_the_copy(
    tmp_path: Path,
) -> None:
    root, copy = tmp_path / "project", tmp_path / "copy"
    (root / "real").mkdir(parents=True)
    (root / "data").symlink_to(root / "real")
    (root / "outside").symlink_to(tmp_path)
    (root / "relative").symlink_to("real")

    propose.copy_project(root, copy)
    (copy / "data" / "written.txt").write_text("x")

    assert not (root / "real" / "written.txt").exists()
    assert (copy / "real" / "written.txt").exists()
    assert (copy / "outside").readlink() == tmp_path
    assert (copy / "relative").readlink() == Path("real")


def oracle_with(cleaners: set[str], polluter: str, runs: list[tuple[str, ...]]) -> Oracle:
    """The victim fails after the polluter unless a cleaner runs in between."""

    def outcome(tests: tuple[str, ...]) -> str:
        runs.append(tests)
        polluted = False
        for test in tests[:-1]:
            polluted = (polluted or test == polluter) and test not in cleaners
        return "failed" if polluted else "passed"

    return outcome


def test_a_cleaner_among_two_hundred_tests_is_found_in_a_few_rounds() -> None:
    order = [f"t.py::test_{n}" for n in range(200)]
    runs: list[tuple[str, ...]] = []
    oracle = oracle_with({"t.py::test_150"}, "t.py::test_3", runs)

    found = cleaner.find_cleaner(
        order, ["t.py::test_3"], "t.py::test_7", oracle,
        jobs=2, max_tests=4, max_runs=100, echo=lambda _: None,
    )  # fmt: skip

    assert found.tests == ["t.py::test_150"]
    assert all(run[0] == "t.py::test_3" and run[-1] == "t.py::test_7" for run in runs)
    # One run of all 198, log3(198) ~ 5 rounds of 2, and the check of the one found.
    assert found.runs <= 13
    assert found.rounds <= 8


def test_no_cleaner_is_claimed_when_no_other_test_makes_the_victim_pass() -> None:
    order = [f"t.py::test_{n}" for n in range(20)]
    runs: list[tuple[str, ...]] = []

    found = cleaner.find_cleaner(
        order, ["t.py::test_3"], "t.py::test_7", oracle_with(set(), "t.py::test_3", runs),
        jobs=2, max_tests=4, max_runs=100, echo=lambda _: None,
    )  # fmt: skip

    assert found.tests is None
    assert found.runs == 1


def settings() -> propose.Settings:
    return propose.Settings(["-p", "no:randomly"], None, 60.0, jobs=2, max_tests=4, max_runs=50)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("polluter", "victim", "kind", "in_polluter"),
    [
        ("test_sets_env", "test_flag_is_unset", ENVIRON, "monkeypatch.setenv"),
        ("test_writes_file", "test_no_marker", FILE, "monkeypatch.chdir(tmp_path)"),
        ("test_fills_shared", "test_shared_is_empty", FIXTURE, "copy.deepcopy(shared)"),
    ],
)
def test_the_fixes_of_a_planted_polluter_are_verified_by_rerunning_the_failing_order(
    suite: Path, polluter: str, victim: str, kind: str, in_polluter: str
) -> None:
    polluter, victim = f"test_a_polluters.py::{polluter}", f"test_b_victims.py::{victim}"
    order = [
        polluter,
        victim,
        "test_c_cleaner.py::test_resets_mode",
        "test_d_filler0.py::test_filler_0",
    ]
    scratch = suite / "scratch"
    scratch.mkdir()
    oracle = SubprocessProbes(victim, ["-p", "no:randomly"], scratch, cwd=suite)

    found = propose.propose(order, [polluter], victim, oracle, settings(), root=suite, echo=print)

    assert found.cleaner is None
    assert [change.kind for change in found.changes] == [kind]
    assert found.tried == 2
    assert found.dropped == 0
    assert in_polluter in found.fixes[0].diff
    assert not (suite / "marker.txt").exists(), "the runs leave the project as it was"


@pytest.mark.slow
def test_bisect_names_the_cleaner_and_prints_only_the_fixes_a_rerun_confirmed(
    pytester: pytest.Pytester, suite: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    pytester.runpytest_subprocess("-p", "no:randomly", "--testfleet-report", "run.json")
    capfd.readouterr()
    victim = "test_b_victims.py::test_mode_is_plain"

    code = main(["bisect", "run.json", "--test", victim, "--jobs", "2", "--json", "order.json"])
    out = capfd.readouterr().out

    assert code == 1
    (result,) = json.loads((suite / "order.json").read_text(encoding="utf-8"))["results"]
    assert result["tests"] == ["test_a_polluters.py::test_sets_mode"]
    assert result["cleaner"] == ["test_c_cleaner.py::test_resets_mode"]
    assert "  cleaner: test_c_cleaner.py::test_resets_mode" in out
    fix = result["fix"]
    assert {c["name"] for c in fix["changes"]} == {"MODE", "UNRELATED_FLAG"}
    # The two fixes of the unrelated variable do not make the victim pass: dropped.
    assert (fix["tried"], fix["dropped"], len(fix["fixes"])) == (4, 2, 2)
    assert "fixes: 2 verified by rerunning the failing order (4 tried, 2 dropped)" in out
    assert all("MODE" in f["title"] for f in fix["fixes"])

    # A person applies the first fix printed: the command that reproduced it now passes.
    (test_file,) = fix["fixes"][0]["files"]
    patch = subprocess.run(
        ["git", "apply", "-p1", "-"], input=fix["fixes"][0]["diff"], cwd=suite, text=True,
        capture_output=True, check=False,
    )  # fmt: skip
    assert patch.returncode == 0, patch.stdout + patch.stderr
    assert "monkeypatch.setattr" in (suite / test_file).read_text(encoding="utf-8")
    rerun = subprocess.run(result["argv"], cwd=suite, capture_output=True, text=True, check=False)
    assert rerun.returncode == 0, rerun.stdout


@pytest.mark.slow
def test_no_fix_leaves_the_diagnosis_without_a_cleaner_or_fixes(
    pytester: pytest.Pytester, suite: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    pytester.runpytest_subprocess("-p", "no:randomly", "--testfleet-report", "run.json")
    victim = "test_b_victims.py::test_mode_is_plain"

    code = main(["bisect", "run.json", "--test", victim, "--no-fix", "--json", "order.json"])

    assert code == 1
    (result,) = json.loads((suite / "order.json").read_text(encoding="utf-8"))["results"]
    assert result["verdict"] == "polluted-by"
    assert (result["cleaner"], result["fix"]) == (None, None)
    assert "cleaner:" not in capfd.readouterr().out


@pytest.mark.slow
def test_a_package_imported_from_the_project_not_from_its_copy_still_has_its_changes_seen(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A src layout installed in editable mode: the runs in a copy of the project import
    # the package from the project itself (PYTHONPATH stands for the editable install).
    pytester.makepyfile(
        **{
            "src/planted_app/__init__.py": "",
            "src/planted_app/settings.py": 'MODE = "plain"\n',
            "tests/test_app.py": (
                "import planted_app.settings\n\n\n"
                "def test_sets_mode():\n"
                '    planted_app.settings.MODE = "fancy"\n\n\n'
                "def test_mode_is_plain():\n"
                '    assert planted_app.settings.MODE == "plain"\n'
            ),
        }
    )
    monkeypatch.setenv("PYTHONPATH", str(pytester.path / "src"))
    polluter, victim = "tests/test_app.py::test_sets_mode", "tests/test_app.py::test_mode_is_plain"
    scratch = pytester.mkdir("scratch")
    oracle = SubprocessProbes(victim, ["-p", "no:randomly"], scratch, cwd=pytester.path)

    found = propose.propose(
        [polluter, victim], [polluter], victim, oracle, settings(), root=pytester.path, echo=print
    )

    assert [(c.place, c.name, c.how) for c in found.changes] == [
        ("planted_app.settings", "MODE", "rebound")
    ]
    assert (found.tried, found.dropped) == (2, 0)
