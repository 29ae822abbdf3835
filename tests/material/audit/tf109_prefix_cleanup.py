# ruff: noqa
"""TF109: cleanup that deletes by a shared prefix or pattern, and look-alikes that are fine."""

import glob
import shutil

import pytest


@pytest.fixture
def cleanup():
    yield
    for path in glob.glob("/srv/data/test-*"):  # TF109
        shutil.rmtree(path)


def test_deletes_by_prefix(data_dir):
    for entry in data_dir.iterdir():  # TF109
        if entry.name.startswith("test_"):
            entry.unlink()


def test_deletes_redis_keys(redis):
    for key in redis.scan_iter("session:*"):  # TF109
        redis.delete(key)


def test_deletes_nodes_by_prefix(neo4j_session):
    neo4j_session.run("MATCH (n) WHERE n.name STARTS WITH 'test' DETACH DELETE n")  # TF109


def test_deletes_every_node(neo4j_session):
    neo4j_session.run("MATCH (n) DETACH DELETE n")  # TF109


def test_empties_a_table(cursor):
    cursor.execute("DELETE FROM users")  # TF109


def test_deletes_its_own_label(neo4j_session, neo4j_label):
    neo4j_session.run(f"MATCH (n:{neo4j_label}) DETACH DELETE n")


def test_deletes_its_own_row(cursor):
    cursor.execute("DELETE FROM users WHERE id = ?", (1,))


def test_deletes_its_own_files(tmp_path):
    for path in tmp_path.glob("*.json"):
        path.unlink()
