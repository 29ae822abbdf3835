"""Duration-balanced shards for CI matrices: which tests run on machine I of N.

The split must come out the same on every machine of a CI run without the machines
talking to each other, so it is a pure function of the collection (node ids, the groups
that must stay whole) and of durations read from committed files. It never looks at
the order of collection (pytest-randomly reorders it per machine) nor at the clock.

Units that must stay whole, `xdist_group` groups and the `serial` tests, are placed
longest first on the least loaded shard (LPT); the units and the placement are the
scheduler's own (:mod:`testfleet.scheduling.units`). Tests with no recorded duration carry
no prediction: they are spread by count, each unit to the shard with the fewest of them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testfleet.runs import commands
from testfleet.scheduling.units import join_units, place_longest_first

SHARD_ENV = "TESTFLEET_SHARD"
AUTO = "auto"
FORM = "I/N: shard I of N, with I from 1 to N, e.g. 2/4 (or 'auto': from the CI's variables)"
#: Variables the CI engines set on parallel jobs: (index, total, first index).
ENGINE_VARIABLES = (
    ("CI_NODE_INDEX", "CI_NODE_TOTAL", 1),  # GitLab `parallel:`
    ("BUILDKITE_PARALLEL_JOB", "BUILDKITE_PARALLEL_JOB_COUNT", 0),  # Buildkite `parallelism:`
)
SERIAL_UNIT = "serial"


@dataclass(frozen=True)
class ShardSpec:
    """Shard ``index`` (from 1) of ``total``."""

    index: int
    total: int

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


def parse_shard(text: str) -> ShardSpec:
    """Parse ``I/N``; raise ValueError saying the form for anything else."""
    index_text, slash, total_text = text.strip().partition("/")
    try:
        index, total = int(index_text), int(total_text)
    except ValueError:
        index = total = 0
    if not slash or total < 1 or not 1 <= index <= total:
        raise ValueError(f"shard {text!r} is not of the form {FORM}")
    return ShardSpec(index, total)


def shard_from_engine(environ: Mapping[str, str] | None = None) -> ShardSpec | None:
    """The shard the CI engine's own variables give, or None outside a parallel CI job."""
    env = os.environ if environ is None else environ
    for index_name, total_name, first in ENGINE_VARIABLES:
        index_text = env.get(index_name, "").strip()
        total_text = env.get(total_name, "").strip()
        if not index_text and not total_text:
            continue
        try:
            index, total = int(index_text) - first + 1, int(total_text)
        except ValueError:
            index = total = 0
        if total < 1 or not 1 <= index <= total:
            raise ValueError(
                f"{index_name}={index_text!r} and {total_name}={total_text!r} do not name a "
                f"shard (the first index is {first}): set both, or give the shard as {FORM}"
            )
        return ShardSpec(index, total)
    return None


def resolve_shard(option: str | None, environ: Mapping[str, str] | None = None) -> ShardSpec | None:
    """The shard to run: the option, else ``$TESTFLEET_SHARD``; None runs every test.

    ``auto`` reads the CI engine's variables. They are read only when asked: a GitLab
    ``parallel: matrix:`` job sets them too, and would otherwise run part of the suite.
    """
    env = os.environ if environ is None else environ
    source = "--testfleet-shard"
    text = option
    if text is None:
        text = env.get(SHARD_ENV, "").strip() or None
        source = f"${SHARD_ENV}"
    if text is None:
        return None
    try:
        if text.strip().lower() == AUTO:
            return shard_from_engine(env)
        return parse_shard(text)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None


@dataclass(frozen=True)
class CollectedTest:
    """What the partition needs to know of one collected test."""

    nodeid: str
    groups: tuple[str, ...] = ()
    serial: bool = False


def units_of(tests: Iterable[CollectedTest]) -> list[list[str]]:
    """The node ids grouped into units that must land on one shard, in node id order.

    A test in several groups, or a `serial` test in a group, joins those units into one.
    """
    tests = list(tests)
    keys = [
        ["test:" + test.nodeid, *("group:" + group for group in test.groups)]
        + ([SERIAL_UNIT] if test.serial else [])
        for test in tests
    ]
    units = [sorted({tests[i].nodeid for i in members}) for members in join_units(keys)]
    return sorted(units, key=lambda ids: ids[0])


@dataclass
class Shard:
    """One shard of a plan: its tests and what they are predicted to take."""

    index: int
    tests: list[str] = field(default_factory=list)
    predicted: float = 0.0
    #: Tests without a recorded duration: new ones, or ones the durations file lacks.
    unknown: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "tests": len(self.tests),
            "predicted_seconds": round(self.predicted, 3),
            "without_history": self.unknown,
        }


@dataclass
class Plan:
    """Every collected test in exactly one of ``total`` shards."""

    total: int
    shards: list[Shard]
    collection: str
    tests: int

    def shard(self, index: int) -> Shard:
        return self.shards[index - 1]

    def digest(self) -> str:
        """Tells plans apart: the same only for the same assignment of every test."""
        hasher = hashlib.sha256()
        for shard in self.shards:
            hasher.update(f"{shard.index}\0".encode())
            hasher.update("\0".join(shard.tests).encode())
            hasher.update(b"\1")
        return hasher.hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "collected": self.tests,
            "collection": self.collection,
            "plan": self.digest(),
            "shards": [shard.to_json() for shard in self.shards],
        }


def collection_digest(nodeids: Iterable[str]) -> str:
    """Tells collections apart, whatever order they were collected in."""
    return hashlib.sha256("\n".join(sorted(nodeids)).encode()).hexdigest()[:16]


def partition(units: Sequence[Sequence[str]], durations: Mapping[str, float], total: int) -> Plan:
    """Split ``units`` into ``total`` shards whose predicted times are as even as LPT makes them.

    A unit with some recorded tests counts its other tests at the mean recorded duration;
    a unit with none is placed by count, after the others.
    """
    if total < 1:
        raise ValueError(f"the shard count must be 1 or more, not {total}")
    ordered = sorted((sorted(unit) for unit in units if unit), key=lambda ids: ids[0])
    known = [float(durations[t]) for unit in ordered for t in unit if t in durations]
    fill = sum(known) / len(known) if known else 0.0
    timed: list[tuple[float, list[str]]] = []
    untimed: list[list[str]] = []
    for unit in ordered:
        recorded = [float(durations[t]) for t in unit if t in durations]
        if recorded:
            timed.append((sum(recorded) + fill * (len(unit) - len(recorded)), unit))
        else:
            untimed.append(unit)
    shards = [Shard(index) for index in range(1, total + 1)]
    timed.sort(key=lambda pair: (-pair[0], pair[1][0]))
    # A tie goes to the shard with fewer tests, then to the lower one.
    placed, _ = place_longest_first([s for s, _ in timed], total, [len(u) for _, u in timed])
    for (seconds, unit), where in zip(timed, placed, strict=True):
        target = shards[where]
        target.tests.extend(unit)
        target.predicted += seconds
        target.unknown += sum(1 for t in unit if t not in durations)
    untimed.sort(key=lambda unit: (-len(unit), unit[0]))
    for unit in untimed:
        target = min(shards, key=lambda s: (s.unknown, s.predicted, len(s.tests), s.index))
        target.tests.extend(unit)
        target.unknown += len(unit)
    for shard in shards:
        shard.tests.sort()
    everything = [t for unit in ordered for t in unit]
    return Plan(total, shards, collection_digest(everything), len(everything))


def plan_for(tests: Sequence[CollectedTest], durations: Mapping[str, float], total: int) -> Plan:
    """The plan for a collection: its units, partitioned."""
    return partition(units_of(tests), durations, total)


def render_plan(document: Mapping[str, Any], fmt: str = "text") -> str:
    """A plan (``Plan.to_json()``, with ``durations``) as each shard's tests and seconds."""
    rows = [
        (
            str(s["index"]),
            str(s["tests"]),
            f"{s['predicted_seconds']:.2f}",
            str(s["without_history"]),
        )
        for s in document["shards"]
    ]
    header = ("shard", "tests", "predicted s", "without history")
    source = document.get("durations")
    origin = f"durations from {source}" if source else "no recorded durations"
    title = f"{document['collected']} tests in {document['total']} shards ({origin})"
    if fmt == "markdown":
        lines = [f"### testfleet shard plan: {title}", "", "| " + " | ".join(header) + " |"]
        lines.append("|" + "---:|" * len(header))
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines) + "\n"
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = [f"testfleet: {title}"]
    lines.append("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    seconds = [float(s["predicted_seconds"]) for s in document["shards"]]
    mean = sum(seconds) / len(seconds) if seconds else 0.0
    if mean > 0:
        over = max(0.0, 100 * (max(seconds) / mean - 1))
        lines.append(f"longest shard {max(seconds):.2f} s, {over:.1f} % over the mean")
    return "\n".join(lines) + "\n"


def shard_choice(text: str) -> str:
    """Validate ``--testfleet-shard`` early, so that a typo is a usage error."""
    if text.strip().lower() == AUTO:
        return AUTO
    try:
        return str(parse_shard(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def collect_plan(
    total: int, pytest_args: Sequence[str], durations: Path | None, scratch: Path
) -> dict[str, Any]:
    """Collect the suite in a child pytest and return the plan for ``total`` shards."""
    out = scratch / "plan.json"
    command = commands.pytest_command(
        [
            "--collect-only",
            "-q",
            f"--testfleet-shard=1/{total}",
            commands.path_option("--testfleet-shard-plan", out.resolve()),
            *(
                [commands.path_option("--testfleet-shard-durations", durations)]
                if durations is not None
                else []
            ),
            *pytest_args,
        ]
    )
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode not in (0, 5) or not out.is_file():
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise ValueError(
            f"collecting the suite failed (pytest exit status {result.returncode}):\n{tail}"
        )
    plan: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return plan
