"""The pytest side of ``--testfleet-state-file``: what the tests before the last one leave.

`testfleet bisect` gives the option to one probe that runs the polluters and then the
victim: a snapshot before the first test and one before the victim (after the polluters'
teardown), and the values of the fixtures the victim shares with them. Snapshots and their
difference are in `state`; the plugin registers these hooks only when the option is given.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from testfleet.core.atomic import write_json_atomic
from testfleet.diagnose import state


class StateHooks:
    """Registered by the plugin only when ``--testfleet-state-file`` is given."""

    def __init__(self, path: Path, root: Path, directory: Path) -> None:
        self.path = path
        #: Where the project's own modules are: the rootdir, and in a copy the original.
        self.roots = state.roots(root)
        #: Where the run started: the files of the current directory are listed from here.
        self.directory = directory
        self.before: state.Snapshot | None = None
        self.victim: pytest.Item | None = None
        self.changes: list[state.Change] = []
        #: Fixture values a test before the victim mutated: (the object, before, after).
        self.mutated: dict[str, tuple[object, state.Value, state.Value]] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        # tryfirst: before the first test's setup, so that its fixtures' doing counts.
        if self.before is None:
            self.before = state.take(self.roots, self.directory)
        if nextitem is None:
            # The victim: the polluters' teardown has run, its own setup has not.
            self.victim = item
            self.changes = state.diff(self.before, state.take(self.roots, self.directory))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        funcargs: dict[str, object] = getattr(item, "funcargs", {})
        if item is self.victim:
            self._shared_fixtures(funcargs)
            return (yield)
        before = {name: state.value_of(value) for name, value in funcargs.items()}
        try:
            return (yield)
        finally:
            for name, value in funcargs.items():
                after = state.value_of(value)
                if after.digest is not None and after.digest != before[name].digest:
                    self.mutated[name] = (value, before[name], after)

    def _shared_fixtures(self, funcargs: dict[str, object]) -> None:
        # The same object in the victim's arguments: a fixture of a wider scope than the
        # function (no public API tells the scope; the identity does).
        for name, (value, before, after) in sorted(self.mutated.items()):
            if funcargs.get(name) is value:
                self.changes.append(
                    state.Change(state.FIXTURE, name, "mutated", "", before.shown, after.shown)
                )

    def pytest_sessionfinish(self) -> None:
        write_json_atomic(self.path, {"changes": [c.to_json() for c in self.changes]})
