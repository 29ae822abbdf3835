# ruff: noqa
"""TF110: tests that read data they did not create, and look-alikes that are fine."""

from pathlib import Path

STATE = Path(__file__).parent / "state.json"


def test_writes_the_state():
    STATE.write_text("{}")


def test_reads_the_state():
    assert STATE.read_text() == "{}"  # TF110


def test_counts_orders(neo4j_session):
    record = neo4j_session.run("MATCH (o:Order) RETURN count(o) AS c").single()  # TF110
    assert record["c"] == 3


def test_finds_a_user(db):
    assert db.users.find_one({"name": "ada"})  # TF110


def test_creates_then_reads(neo4j_session):
    neo4j_session.run("CREATE (:Order)").consume()
    assert neo4j_session.run("MATCH (o:Order) RETURN count(o) AS c").single()["c"] == 1


def test_reads_what_its_fixture_made(neo4j_session, orders):
    assert neo4j_session.run("MATCH (o:Order) RETURN o").data()


def test_writes_and_reads_the_state():
    STATE.write_text("x")
    assert STATE.read_text() == "x"
