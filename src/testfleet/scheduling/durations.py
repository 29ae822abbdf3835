"""One source of past test durations: the duration store, the last report, the baseline.

The scheduler, the worker count and CI shards all ask the same question — how long will
this test take? — and read the answer here. The scheduler and the worker count use
:func:`load_durations`::

    durations = load_durations(Path("."), [Path("reports/test-timing.json")])
    durations.wall_of("tests/test_a.py::test_x")   # seconds, known or estimated
    durations.cpu_of("tests/test_a.py::test_x")    # CPU seconds, or None when unknown

Sources are read newest first and the first one that knows a test wins: the store that
each run updates (in the pytest cache directory), then the reports given, in order. A
source that is missing or unreadable is skipped (with the reason in ``skipped``): past
durations make a run faster, never make it fail.

CI shards must split a run the same way on every machine, so they read one committed
report and nothing else, through :func:`read_report_durations` (its first attempts).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testfleet.timing import report
from testfleet.timing.store import read_store_file, store_path, store_runs, store_tests

#: The estimate for a test when nothing at all is known.
DEFAULT_ESTIMATE = 0.01


def _function_of(nodeid: str) -> str:
    """The node id without its parameters: ``t.py::test_x[1]`` -> ``t.py::test_x``."""
    bracket = nodeid.find("[")
    return nodeid if bracket < 0 else nodeid[:bracket]


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


@dataclass
class Durations:
    """Past wall and CPU seconds per node id, and estimates for tests never seen."""

    wall: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    #: The sources that gave durations, newest first.
    sources: list[str] = field(default_factory=list)
    #: Sources that were given but could not be used, with the reason.
    skipped: list[str] = field(default_factory=list)
    #: The ``run`` blocks of the reports read, in the order given (start-up, workers...).
    runs: list[dict[str, Any]] = field(default_factory=list)
    #: What the store kept of the last run with xdist (``"xdist"``) and without it
    #: (``"one"``): the costs beyond the tests that `--workers auto` weighs.
    store_runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Which of those two updated the store last: the mode its CPU times were taken in.
    store_last: str | None = None
    _by_function: dict[str, float] | None = field(default=None, repr=False)
    _by_file: dict[str, float] | None = field(default=None, repr=False)
    _overall: float | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.wall)

    def __contains__(self, nodeid: object) -> bool:
        return nodeid in self.wall

    def known(self, nodeid: str) -> float | None:
        """The measured wall seconds of ``nodeid``, or None."""
        return self.wall.get(nodeid)

    def wall_of(self, nodeid: str) -> float:
        """Measured wall seconds, else an estimate (see :meth:`estimate`)."""
        seconds = self.wall.get(nodeid)
        return seconds if seconds is not None else self.estimate(nodeid)

    def cpu_of(self, nodeid: str) -> float | None:
        """Measured CPU seconds (the test's process and its waited-for children), or None."""
        return self.cpu.get(nodeid)

    def estimate(self, nodeid: str) -> float:
        """A guess for a test without history.

        The median of its other parameters, else of its file's tests, else of all tests:
        a new case of a slow parametrized test is likely slow too.
        """
        self._index()
        assert self._by_function is not None
        assert self._by_file is not None
        seconds = self._by_function.get(_function_of(nodeid))
        if seconds is None:
            seconds = self._by_file.get(_file_of(nodeid))
        if seconds is None:
            assert self._overall is not None
            seconds = self._overall
        return seconds

    def _index(self) -> None:
        if self._by_function is not None:
            return
        # Imported here: only estimates need it, and every pytest imports this module.
        import statistics

        functions: dict[str, list[float]] = {}
        files: dict[str, list[float]] = {}
        for nodeid, seconds in self.wall.items():
            functions.setdefault(_function_of(nodeid), []).append(seconds)
            files.setdefault(_file_of(nodeid), []).append(seconds)
        self._by_function = {key: statistics.median(v) for key, v in functions.items()}
        self._by_file = {key: statistics.median(v) for key, v in files.items()}
        self._overall = statistics.median(self.wall.values()) if self.wall else DEFAULT_ESTIMATE

    def add(self, source: str, wall: Mapping[str, float], cpu: Mapping[str, float]) -> None:
        """Take the tests of an older source that no newer one knew."""
        new = 0
        for nodeid, seconds in wall.items():
            if nodeid not in self.wall:
                self.wall[nodeid] = seconds
                new += 1
                if nodeid in cpu:
                    self.cpu[nodeid] = cpu[nodeid]
        if new:
            self.sources.append(source)
        self._by_function = self._by_file = self._overall = None


def _from_report(
    data: Mapping[str, Any], first_attempt: bool = False
) -> tuple[dict[str, float], dict[str, float]]:
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for test in data["tests"]:
        if first_attempt and int(test.get("attempt", 1)) != 1:
            continue
        nodeid = test["nodeid"]
        # A rerun (attempt 2...) measured the same test again: the last one wins.
        wall[nodeid] = float(test["duration"])
        if "cpu" in test:
            cpu[nodeid] = float(test["cpu"])
    return wall, cpu


def _load_report(path: Path) -> dict[str, Any]:
    return report.load(path, fields=("nodeid", "duration", "cpu"))


def read_report_durations(
    path: Path, *, first_attempt: bool = False
) -> tuple[dict[str, float], dict[str, float]]:
    """Wall and CPU seconds per node id from a timing report; ReportError when unusable.

    Of a test run more than once, the last attempt counts; with ``first_attempt``, the
    run's own one (reruns are attempts 2, 3...), as CI shards are split.
    """
    return _from_report(_load_report(path), first_attempt)


def load_durations(
    root: Path,
    sources: Sequence[Path] = (),
    *,
    cache_dir: Path | None = None,
    use_store: bool = True,
    needed: Collection[str] = (),
) -> Durations:
    """Past durations for the project at ``root``: the store, then ``sources`` in order.

    ``cache_dir`` is the pytest cache directory (default ``root/.pytest_cache``);
    relative ``sources`` are taken from ``root``. When the store knows every test of
    ``needed`` the sources are not read: they could only add tests the store knows, and
    parsing a large report costs a run's scheduler tenths of a second.
    """
    durations = Durations()
    if use_store:
        store = store_path(cache_dir if cache_dir is not None else root / ".pytest_cache")
        if store.is_file():
            try:
                data = read_store_file(store)
                durations.add(str(store), *store_tests(data))
                durations.store_runs, durations.store_last = store_runs(data)
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                durations.skipped.append(f"{store}: {exc}")
    if needed and all(nodeid in durations.wall for nodeid in needed):
        return durations
    for source in sources:
        path = source if source.is_absolute() else root / source
        if not path.is_file():
            durations.skipped.append(f"{path}: no such file")
            continue
        try:
            data = _load_report(path)
        except report.ReportError as exc:
            durations.skipped.append(str(exc))
            continue
        durations.runs.append(data["run"])
        durations.add(str(path), *_from_report(data))
    return durations
