# ruff: noqa
"""TF103: module- and class-level state mutated by tests, and look-alikes that are fine."""

import collections

RESULTS = []
CACHE = {}
COUNTER = 0
SEEN = collections.defaultdict(list)
LIMITS = (1, 2)


def test_appends():
    RESULTS.append(1)  # TF103


def test_reads_what_another_test_added():
    assert RESULTS == [1]


def test_sets_an_item():
    CACHE["key"] = 1  # TF103


def test_counts():
    global COUNTER
    COUNTER += 1  # TF103


def test_clears_a_defaultdict():
    SEEN.clear()  # TF103


class TestCart:
    items = []
    total = 0

    def test_adds_to_the_class_list(self):
        self.items.append("apple")  # TF103

    def test_sets_a_class_attribute(self):
        TestCart.total = 3  # TF103


def test_shadows_with_a_local():
    RESULTS = []
    RESULTS.append(1)


class TestInstance:
    def test_sets_an_instance_attribute(self):
        self.items = []
        self.items.append(1)


def test_reads_a_tuple():
    assert LIMITS[0] == 1
