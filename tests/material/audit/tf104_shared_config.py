# ruff: noqa
"""TF104 followed through data flow: broad fixtures that build mutable objects from dicts."""

import dataclasses
from typing import NamedTuple

import pytest
from app.settings import Settings, create_engine

DEFAULTS = {"debug": False, "retries": 3}


@dataclasses.dataclass
class Config:
    debug: bool
    retries: int


@dataclasses.dataclass(frozen=True)
class FrozenConfig:
    debug: bool


class Point(NamedTuple):
    x: int


@pytest.fixture(scope="module")
def config():
    return Config(**DEFAULTS)  # TF104


@pytest.fixture(scope="session")
def settings():
    raw = dict(DEFAULTS)
    built = Settings(**raw)
    return built  # TF104


@pytest.fixture(scope="module")
def local_class():
    return Config(debug=True, retries=1)  # TF104


@pytest.fixture(scope="module")
def frozen():
    return FrozenConfig(debug=False)


@pytest.fixture(scope="module")
def point():
    return Point(1)


@pytest.fixture(scope="session")
def engine():
    return create_engine("sqlite://")


@pytest.fixture
def config_per_test():
    return Config(**DEFAULTS)
