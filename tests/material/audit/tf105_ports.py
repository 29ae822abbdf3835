# ruff: noqa
"""TF105: hardcoded ports, and look-alikes that are fine."""

import socket
import urllib.request

PORT = 8080  # TF105
serverPort = 9090  # TF105
MAX_IMPORTS = 10
REPORTS_KEPT = 20


def test_binds_a_fixed_port():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 8765))  # TF105


def test_starts_a_server_on_a_fixed_port(app):
    app.run(port=5000)  # TF105


def test_calls_a_fixed_url():
    urllib.request.urlopen("http://localhost:8000/health")  # TF105


def test_asks_the_os_for_a_port():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))


def test_compares_a_url():
    assert "http://localhost:8000".startswith("http")


def test_uses_the_service_address(testfleet_service):
    urllib.request.urlopen(testfleet_service("web")["url"])
