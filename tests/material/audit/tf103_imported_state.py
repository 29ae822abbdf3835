# ruff: noqa
"""TF103 followed through imports and names: state of another module changed by tests."""

import state
from state import FLAGS, REGISTRY
from state import make_client

import pytest


def test_sets_a_flag_of_another_module():
    state.FLAGS["ready"] = True  # TF103


def test_counts_in_another_module():
    state.COUNTER[0] += 1  # TF103


def test_registers_in_an_imported_list():
    REGISTRY.append("alice")  # TF103


def test_sets_through_a_from_import():
    FLAGS["debug"] = True  # TF103


def test_sets_through_a_local_name():
    flags = state.FLAGS
    flags["alias"] = 1  # TF103


def test_reads_a_flag():
    assert state.FLAGS.get("ready") is None


def test_changes_a_copy():
    flags = dict(state.FLAGS)
    flags["ready"] = True


def test_builds_its_own_list():
    items = []
    items.append(1)


def test_uses_a_client_of_its_own():
    client = make_client()
    client.headers.update({"a": "b"})


@pytest.fixture
def restored_registry():
    saved = list(state.REGISTRY)
    state.REGISTRY.clear()
    yield
    state.REGISTRY.clear()
    state.REGISTRY.extend(saved)
