"""The duration store: each test's last wall and CPU seconds, kept in the pytest cache.

Every run that records timing updates it (:mod:`testfleet.timing.recorder`); the
scheduler, the worker count and ``testfleet run`` read it back through
:func:`testfleet.scheduling.durations.load_durations`, newest source first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from json.encoder import encode_basestring_ascii
from math import isfinite
from pathlib import Path
from typing import Any

from testfleet.core.atomic import write_text_atomic

#: Schema of the store file.
STORE_SCHEMA = "testfleet.durations/1"
#: Where the store lives inside a pytest cache directory (``Cache.mkdir("testfleet")``).
STORE_RELATIVE = Path("d") / "testfleet" / "durations.json"


def store_for(cache: Any) -> Path:
    """The store file of a pytest ``config.cache`` (its directory is created)."""
    return Path(cache.mkdir("testfleet")) / STORE_RELATIVE.name


def store_path(cache_dir: Path) -> Path:
    """The store file of the pytest cache directory ``cache_dir`` (``.pytest_cache``)."""
    return cache_dir / STORE_RELATIVE


def read_store_file(path: Path) -> dict[str, Any]:
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
    return store_tests(read_store_file(path))


def store_tests(data: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for nodeid, pair in data.get("tests", {}).items():
        wall[nodeid] = float(pair[0])
        if pair[1] is not None:
            cpu[nodeid] = float(pair[1])
    return wall, cpu


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
    return store_runs(read_store_file(path))


def store_runs(data: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], str | None]:
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
        data = read_store_file(path)
        wall, cpu = store_tests(data)
        runs, last = store_runs(data)
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
