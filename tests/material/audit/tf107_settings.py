# ruff: noqa
"""TF107: settings and environment mutated without restoring, and look-alikes that are fine."""

import os
import sys

import myapp.config
import pytest
from myapp import Settings, settings


def test_sets_a_setting():
    settings.debug = True  # TF107


def test_sets_a_variable():
    os.environ["APP_MODE"] = "test"  # TF107


def test_updates_the_environment():
    os.environ.update({"APP_MODE": "test"})  # TF107


def test_sets_a_module_attribute():
    myapp.config.TIMEOUT = 1  # TF107


def test_sets_through_setattr():
    setattr(settings, "debug", True)  # TF107


def test_uses_monkeypatch(monkeypatch):
    monkeypatch.setattr(settings, "debug", True)
    monkeypatch.setenv("APP_MODE", "test")


@pytest.fixture
def debug_on():
    old = settings.debug
    settings.debug = True
    yield
    settings.debug = old


def test_restores_in_finally():
    os.environ["APP_MODE"] = "test"
    try:
        assert os.environ["APP_MODE"] == "test"
    finally:
        os.environ.pop("APP_MODE")


def test_sets_a_local_object():
    local = Settings()
    local.debug = True


def test_reads_the_environment():
    assert os.environ.get("HOME")


def test_swaps_the_streams_inside_an_isolation(runner):
    with runner.isolation():
        sys.stdout = None


class TestPutsTheEnvironmentBackInTearDown:
    def setup_method(self):
        os.environ["APP_MODE"] = "test"

    def teardown_method(self):
        del os.environ["APP_MODE"]


class TestLeavesTheEnvironmentChanged:
    def setup_method(self):
        os.environ["APP_MODE"] = "test"  # TF107
