# ruff: noqa
"""TF104: broad-scoped fixtures that return mutable objects, and look-alikes that are fine."""

import pytest


@pytest.fixture(scope="session")
def users():
    return ["ada"]  # TF104


@pytest.fixture(scope="module")
def config():
    data = {"debug": False}
    yield data  # TF104


@pytest.fixture(scope="class")
def seen():
    return set()  # TF104


@pytest.fixture
def per_test_list():
    return []


@pytest.fixture(scope="session")
def frozen_users():
    return ("ada",)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")
