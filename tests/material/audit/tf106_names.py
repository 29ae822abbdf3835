# ruff: noqa
"""TF106: hardcoded database and collection names, and look-alikes that are fine."""


def test_uses_a_fixed_database(client):
    client.get_database("app_test")  # TF106


def test_opens_a_fixed_neo4j_database(neo4j_driver):
    with neo4j_driver.session(database="orders"):  # TF106
        pass


def test_creates_a_fixed_database(neo4j_session):
    neo4j_session.run("CREATE DATABASE reports IF NOT EXISTS")  # TF106


def test_writes_a_fixed_collection(store):
    store.insert(collection="users", document={})  # TF106


def test_uses_a_unique_database(client, testfleet_unique_name):
    client.get_database(testfleet_unique_name("app"))


def test_uses_the_isolation_database(neo4j_driver, neo4j_isolation):
    with neo4j_driver.session(database=neo4j_isolation.database):
        pass


def test_formats_a_collection_name(client, testfleet_unique_name):
    client.get_collection(f"users_{testfleet_unique_name('u')}")
