"""The shard partition: pure, deterministic, balanced; tested on generated collections."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from testfleet.sharding import plan as sharding
from testfleet.sharding.plan import CollectedTest, ShardSpec


def generated_suite(
    seed: int, tests: int = 400, groups: int = 6, serial: int = 5
) -> tuple[list[CollectedTest], dict[str, float]]:
    """A suite with a long tail of durations, a few xdist groups and `serial` tests."""
    rng = random.Random(seed)
    units: list[CollectedTest] = []
    durations: dict[str, float] = {}
    for number in range(tests):
        nodeid = f"tests/test_m{number % 17}.py::test_{number}"
        group = (f"g{number % groups}",) if number % 11 == 0 else ()
        units.append(CollectedTest(nodeid, group, serial=number < serial))
        durations[nodeid] = round(rng.lognormvariate(-2.0, 1.2), 4)
    return units, durations


def assigned(plan: sharding.Plan) -> Counter[str]:
    return Counter(t for shard in plan.shards for t in shard.tests)


@pytest.mark.parametrize("total", [2, 4, 8])
@pytest.mark.parametrize("seed", range(5))
def test_longest_shard_is_within_ten_percent_of_the_mean_on_generated_suites(
    total: int, seed: int
) -> None:
    units, durations = generated_suite(seed)
    plan = sharding.plan_for(units, durations, total)
    loads = [shard.predicted for shard in plan.shards]
    mean = sum(durations.values()) / total
    assert sum(loads) == pytest.approx(sum(durations.values()))
    # The bound the tests allow: no shard can be shorter than its largest unit.
    largest_unit = max(sum(durations[t] for t in unit) for unit in sharding.units_of(units))
    assert max(loads) <= max(1.10 * mean, largest_unit + 1e-9)


@pytest.mark.parametrize("total", [2, 4, 8])
def test_every_test_is_in_exactly_one_shard(total: int) -> None:
    units, durations = generated_suite(1)
    plan = sharding.plan_for(units, durations, total)
    assert assigned(plan) == Counter(unit.nodeid for unit in units)
    assert plan.tests == len(units)
    assert len(plan.shards) == total


def test_xdist_groups_and_serial_tests_stay_whole() -> None:
    units, durations = generated_suite(2)
    plan = sharding.plan_for(units, durations, 8)
    shard_of = {t: shard.index for shard in plan.shards for t in shard.tests}
    by_group: dict[str, set[int]] = {}
    for unit in units:
        for group in unit.groups:
            by_group.setdefault(group, set()).add(shard_of[unit.nodeid])
        if unit.serial:
            by_group.setdefault("serial", set()).add(shard_of[unit.nodeid])
    assert by_group
    assert all(len(shards) == 1 for shards in by_group.values()), by_group


def test_a_serial_test_in_a_group_joins_the_group_and_the_serial_unit() -> None:
    units = [
        CollectedTest("a::t1", ("db",)),
        CollectedTest("a::t2", ("db",), serial=True),
        CollectedTest("a::t3", (), serial=True),
        CollectedTest("a::t4", ("web",)),
        CollectedTest("a::t5"),
    ]
    assert sharding.units_of(units) == [["a::t1", "a::t2", "a::t3"], ["a::t4"], ["a::t5"]]


def test_the_plan_does_not_depend_on_collection_order() -> None:
    units, durations = generated_suite(3)
    shuffled = list(units)
    random.Random(9).shuffle(shuffled)
    first = sharding.plan_for(units, durations, 4)
    second = sharding.plan_for(shuffled, dict(reversed(list(durations.items()))), 4)
    assert [s.tests for s in first.shards] == [s.tests for s in second.shards]
    assert first.digest() == second.digest()
    assert first.collection == second.collection


def test_tests_without_history_are_spread_by_count() -> None:
    units = [CollectedTest(f"t.py::test_{n:03}") for n in range(103)]
    plan = sharding.plan_for(units, {}, 4)
    assert sorted(len(s.tests) for s in plan.shards) == [25, 26, 26, 26]
    assert [s.unknown for s in plan.shards] == [len(s.tests) for s in plan.shards]
    assert all(s.predicted == 0 for s in plan.shards)


def test_new_tests_are_spread_by_count_beside_the_recorded_ones() -> None:
    recorded = {f"old.py::test_{n}": 1.0 for n in range(8)}
    units = [CollectedTest(t) for t in recorded]
    units += [CollectedTest(f"new.py::test_{n}") for n in range(12)]
    plan = sharding.plan_for(units, recorded, 4)
    assert [s.unknown for s in plan.shards] == [3, 3, 3, 3]
    assert [s.predicted for s in plan.shards] == [2.0, 2.0, 2.0, 2.0]


def test_a_removed_test_in_the_durations_changes_nothing() -> None:
    units = [CollectedTest(f"t.py::test_{n}") for n in range(10)]
    durations = {u.nodeid: float(n + 1) for n, u in enumerate(units)}
    with_gone = {**durations, "t.py::test_removed": 100.0}
    assert sharding.plan_for(units, durations, 3).digest() == (
        sharding.plan_for(units, with_gone, 3).digest()
    )


def test_a_group_with_some_recorded_tests_counts_the_others_at_the_mean() -> None:
    units = [CollectedTest("a::x", ("g",)), CollectedTest("a::y", ("g",)), CollectedTest("b::z")]
    plan = sharding.plan_for(units, {"a::x": 2.0, "b::z": 4.0}, 2)
    # a::y has no history: counted at the mean of the recorded tests, 3 s.
    assert sorted((s.tests, s.predicted) for s in plan.shards) == [
        (["a::x", "a::y"], 5.0),
        (["b::z"], 4.0),
    ]


def test_more_shards_than_tests_leaves_some_empty() -> None:
    plan = sharding.plan_for([CollectedTest("a::t")], {}, 3)
    assert [len(s.tests) for s in plan.shards] == [1, 0, 0]


@pytest.mark.parametrize(("text", "expected"), [("1/2", (1, 2)), (" 3/3 ", (3, 3))])
def test_a_shard_is_written_index_slash_total(text: str, expected: tuple[int, int]) -> None:
    assert sharding.parse_shard(text) == ShardSpec(*expected)


@pytest.mark.parametrize("text", ["0/2", "3/2", "a/b", "2", "1/0", "-1/2", "1/2/3", ""])
def test_a_malformed_shard_is_refused_with_the_form(text: str) -> None:
    with pytest.raises(ValueError, match=r"not of the form I/N: shard I of N"):
        sharding.parse_shard(text)


def test_gitlab_counts_shards_from_one() -> None:
    env = {"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3"}
    assert sharding.shard_from_engine(env) == ShardSpec(2, 3)


def test_buildkite_counts_shards_from_zero() -> None:
    env = {"BUILDKITE_PARALLEL_JOB": "0", "BUILDKITE_PARALLEL_JOB_COUNT": "4"}
    assert sharding.shard_from_engine(env) == ShardSpec(1, 4)


def test_an_engine_variable_without_its_partner_is_refused() -> None:
    with pytest.raises(ValueError, match="CI_NODE_INDEX='2' and CI_NODE_TOTAL=''"):
        sharding.shard_from_engine({"CI_NODE_INDEX": "2"})


def test_engine_variables_are_read_only_when_auto_is_asked() -> None:
    env = {"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3"}
    assert sharding.resolve_shard(None, env) is None
    assert sharding.resolve_shard("auto", env) == ShardSpec(2, 3)
    assert sharding.resolve_shard(None, {**env, "TESTFLEET_SHARD": "auto"}) == ShardSpec(2, 3)
    assert sharding.resolve_shard("auto", {}) is None


def test_an_explicit_shard_wins_over_the_environment() -> None:
    env = {"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3", "TESTFLEET_SHARD": "1/5"}
    assert sharding.resolve_shard("4/4", env) == ShardSpec(4, 4)
    assert sharding.resolve_shard(None, env) == ShardSpec(1, 5)


def test_a_bad_shard_in_the_environment_names_the_variable() -> None:
    with pytest.raises(ValueError, match=r"\$TESTFLEET_SHARD: shard '3/2' is not of the form"):
        sharding.resolve_shard(None, {"TESTFLEET_SHARD": "3/2"})


def test_the_plan_renders_each_shards_count_and_predicted_seconds() -> None:
    units = [CollectedTest(f"t.py::test_{n}") for n in range(4)]
    plan = sharding.plan_for(units, {u.nodeid: 1.5 for u in units}, 2)
    text = sharding.render_plan({**plan.to_json(), "durations": "base.json"})
    assert text.splitlines() == [
        "testfleet: 4 tests in 2 shards (durations from base.json)",
        "shard  tests  predicted s  without history",
        "    1      2         3.00                0",
        "    2      2         3.00                0",
        "longest shard 3.00 s, 0.0 % over the mean",
    ]
    markdown = sharding.render_plan({**plan.to_json(), "durations": None}, "markdown")
    assert "| 2 | 2 | 3.00 | 0 |" in markdown
