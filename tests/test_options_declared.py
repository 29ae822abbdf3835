"""Every option of `testfleet` and of testfleet's pytest plugins is declared in the table."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testfleet.cli import program
from testfleet.settings.kinds import PYTEST, PYTEST_NEO4J, Option
from testfleet.settings.plugin_table import PLUGIN_OPTIONS
from testfleet.settings.table import SETTINGS

NEO4J_OPTION = "--testfleet-neo4j-strategy"


def declared() -> set[tuple[str, str]]:
    """(command, flag or positional name) of every declared option."""
    options: list[Option] = [o for setting in SETTINGS for o in setting.options]
    options += [*PLUGIN_OPTIONS, *program.OPTIONS]
    for name in program.COMMANDS:
        module = program.command_module(name)
        options += [o for attribute in vars(module).values() for o in _options_in(attribute)]
    return {(option.command, flag) for option in options for flag in option.flags}


def _options_in(value: object) -> list[Option]:
    if isinstance(value, Option):
        return [value]
    if isinstance(value, tuple) and all(isinstance(item, Option) for item in value):
        return list(value)
    return []


def parsers(
    parser: argparse.ArgumentParser, command: str
) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(command, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += parsers(sub, f"{command} {name}".removeprefix("testfleet "))
    return found


def test_every_option_of_every_command_is_declared() -> None:
    known = declared()
    given = set()
    for command, parser in parsers(program.build_parser(), "testfleet"):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            given |= {(command, flag) for flag in action.option_strings or [action.dest]}
    assert given - known == set()
    assert ("run", "--workers") in given
    assert ("history prune", "--keep-runs") in given


def pytest_help(tmp_path: Path, *, driver: bool) -> str:
    env = dict(os.environ)
    if not driver:
        # `neo4j` unimportable, as in an environment without the driver: find_spec says
        # None for a name whose sys.modules entry is None, and `import neo4j` fails.
        shim = tmp_path / "shim"
        shim.mkdir()
        (shim / "sitecustomize.py").write_text("import sys\nsys.modules['neo4j'] = None\n")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shim), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--help", "-p", "no:randomly"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def options_of_group(help_text: str) -> set[str]:
    """The options ``pytest --help`` lists under testfleet's group."""
    lines = help_text.splitlines()
    start = lines.index("testfleet: timing and parallel safety:")
    flags = set()
    for line in lines[start + 1 :]:
        if line and not line.startswith(" "):
            break
        if line.startswith("  --"):
            flags.add(line.split()[0].split("=")[0].rstrip(","))
    return flags


@pytest.mark.slow
def test_pytest_options_are_declared_and_neo4j_ones_only_with_the_driver(
    tmp_path: Path,
) -> None:
    known = {flag for command, flag in declared() if command in (PYTEST, PYTEST_NEO4J)}
    with_driver = options_of_group(pytest_help(tmp_path, driver=True))
    without = options_of_group(pytest_help(tmp_path, driver=False))
    assert with_driver - known == set()
    assert NEO4J_OPTION in with_driver
    assert not any("neo4j" in flag for flag in without)
    assert with_driver - without == {
        flag for command, flag in declared() if command == PYTEST_NEO4J
    }


def test_a_suite_with_its_own_neo4j_marker_runs_strictly_without_the_driver(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    shim = pytester.mkdir("shim")
    (shim / "sitecustomize.py").write_text("import sys\nsys.modules['neo4j'] = None\n")
    monkeypatch.setenv("PYTHONPATH", str(shim))
    pytester.makeini("[pytest]\nmarkers =\n    neo4j: our own Neo4j tests\n")
    pytester.makepyfile(
        test_graph="import pytest\n\n@pytest.mark.neo4j\ndef test_graph():\n    pass\n"
    )
    result = pytester.runpytest_subprocess("--strict-markers", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
