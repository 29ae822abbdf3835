"""One source of past test durations: the duration store, the last report, the baseline.

The scheduler, the worker count and CI shards all ask the same question — how long will
this test take? — and get the same answer from :func:`load_durations`::

    durations = load_durations(Path("."), [Path("reports/test-timing.json")])
    durations.wall_of("tests/test_a.py::test_x")   # seconds, known or estimated
    durations.cpu_of("tests/test_a.py::test_x")    # CPU seconds, or None when unknown

Sources are read newest first and the first one that knows a test wins: the store that
each run updates (in the pytest cache directory), then the reports given, in order. A
source that is missing or unreadable is skipped (with the reason in ``skipped``): past
durations make a run faster, never make it fail.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from math import isfinite
from pathlib import Path
from typing import Any

from testfleet.core.atomic import write_text_atomic

#: Schema of the store file.
STORE_SCHEMA = "testfleet.durations/1"
#: Where the store lives inside a pytest cache directory (``Cache.mkdir("testfleet")``).
STORE_RELATIVE = Path("d") / "testfleet" / "durations.json"
#: The estimate for a test when nothing at all is known.
DEFAULT_ESTIMATE = 0.01


def store_for(cache: Any) -> Path:
    """The store file of a pytest ``config.cache`` (its directory is created)."""
    return Path(cache.mkdir("testfleet")) / STORE_RELATIVE.name


def store_path(cache_dir: Path) -> Path:
    """The store file of the pytest cache directory ``cache_dir`` (``.pytest_cache``)."""
    return cache_dir / STORE_RELATIVE


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


def _from_report(data: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for test in data["tests"]:
        nodeid = test["nodeid"]
        # A rerun (attempt 2...) measured the same test again: the last one wins.
        wall[nodeid] = float(test["duration"])
        if "cpu" in test:
            cpu[nodeid] = float(test["cpu"])
    return wall, cpu


def _load_report(path: Path) -> dict[str, Any]:
    # Imported here: report imports this module (through the schedule section).
    from testfleet.timing import report

    return report.load(path, fields=("nodeid", "duration", "cpu"))


def read_report_durations(path: Path) -> tuple[dict[str, float], dict[str, float]]:
    """Wall and CPU seconds per node id from a timing report; ReportError when unusable."""
    return _from_report(_load_report(path))


def _read_store_file(path: Path) -> dict[str, Any]:
    """A store file's JSON; ValueError when it is not a store."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot be read ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != STORE_SCHEMA:
        raise ValueError(f"{path}: not a {STORE_SCHEMA} store")
    return data


def read_store(path: Path) -> tuple[dict[str, float], dict[str, float]]:
    """Wall and CPU seconds per node id from a store file; ValueError when unusable."""
    return _store_tests(_read_store_file(path))


def _store_tests(data: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for nodeid, pair in data.get("tests", {}).items():
        wall[nodeid] = float(pair[0])
        if pair[1] is not None:
            cpu[nodeid] = float(pair[1])
    return wall, cpu


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
    from testfleet.timing.report import ReportError

    durations = Durations()
    if use_store:
        store = store_path(cache_dir if cache_dir is not None else root / ".pytest_cache")
        if store.is_file():
            try:
                data = _read_store_file(store)
                durations.add(str(store), *_store_tests(data))
                durations.store_runs, durations.store_last = _store_runs(data)
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
        except ReportError as exc:
            durations.skipped.append(str(exc))
            continue
        durations.runs.append(data["run"])
        durations.add(str(path), *_from_report(data))
    return durations


#: The facts of a report's run block that the store keeps, per mode.
RUN_FACTS = (
    "workers",
    "collection_seconds",
    "worker_startup",
    "cpu_stretch",
    "controller_cpu_per_test",
    "after_tests_seconds",
)


def run_mode(run: Mapping[str, Any]) -> str:
    """``"xdist"`` for a run on xdist workers, else ``"one"``."""
    workers = run.get("workers")
    return "xdist" if isinstance(workers, int) and workers > 1 else "one"


def read_store_runs(path: Path) -> tuple[dict[str, dict[str, Any]], str | None]:
    """The run facts a store kept per mode, and the mode of the run that wrote it last."""
    return _store_runs(_read_store_file(path))


def _store_runs(data: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], str | None]:
    runs = data.get("runs")
    if not isinstance(runs, dict):
        return {}, None
    kept = {mode: dict(facts) for mode, facts in runs.items() if isinstance(facts, dict)}
    last = data.get("last")
    return kept, last if last in kept else None


def update_store(
    path: Path,
    measured: Iterable[tuple[str, float, float | None]],
    run: Mapping[str, Any] | None = None,
) -> int:
    """Record ``(nodeid, wall, cpu)`` measurements in the store at ``path``; how many.

    Tests of earlier runs that this run did not run (``-k``, a shard) keep their durations.
    ``run``, the report's run block: its costs beyond the tests are kept for its mode
    (with or without xdist), next to those of the last run in the other mode.
    """
    try:
        data = _read_store_file(path)
        wall, cpu = _store_tests(data)
        runs, last = _store_runs(data)
    except ValueError:
        wall, cpu = {}, {}
        runs, last = {}, None
    count = 0
    for nodeid, seconds, cpu_seconds in measured:
        wall[nodeid] = seconds
        if cpu_seconds is None:
            cpu.pop(nodeid, None)
        else:
            cpu[nodeid] = cpu_seconds
        count += 1
    if run is not None:
        last = run_mode(run)
        runs[last] = {key: run[key] for key in RUN_FACTS if key in run}
    write_text_atomic(path, _store_text(wall, cpu, runs, last))
    return count


#: A test in the store, written by one ``%`` with six decimals, as a run's report writes
#: its numbers (see ``records._TEST_LINE``): ``round()`` and ``json`` per number cost twice
#: as much, in every run of a project with a cache.
_STORE_TEST = "%s: [%.6f, %.6f]"
_STORE_TEST_NO_CPU = "%s: [%.6f, null]"


def _store_text(
    wall: Mapping[str, float], cpu: Mapping[str, float], runs: Mapping[str, Any], last: str | None
) -> str:
    """The store file: schema, tests (wall and CPU seconds), and the last run per mode."""
    tests = []
    for nodeid, seconds in wall.items():
        cpu_seconds = cpu.get(nodeid)
        if not isfinite(seconds + (cpu_seconds or 0.0)):
            # Not a measurement ("%.6f" would write nan, which no JSON reader takes).
            continue
        if cpu_seconds is None:
            tests.append(_STORE_TEST_NO_CPU % (encode_basestring_ascii(nodeid), seconds))
        else:
            tests.append(_STORE_TEST % (encode_basestring_ascii(nodeid), seconds, cpu_seconds))
    runs_text = f', "runs": {json.dumps(runs)}, "last": {json.dumps(last)}' if runs else ""
    return f'{{"schema": {json.dumps(STORE_SCHEMA)}, "tests": {{{", ".join(tests)}}}{runs_text}}}\n'
