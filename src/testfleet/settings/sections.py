"""The sections of the settings, in the order ``testfleet config`` and the docs show them."""

from __future__ import annotations

RUN = "run"
REPORT = "report"
DIAGNOSE = "diagnose"
ISOLATION = "isolation"
NEO4J = "neo4j"
SESSION = "session"

#: Section titles, in the order `testfleet config` and the docs show them.
SECTIONS = {
    RUN: "Runs (testfleet run, testfleet randomized, the nox test sessions)",
    REPORT: "Reports and the CI pipeline (testfleet report, invoke ci, invoke baseline)",
    DIAGNOSE: "Diagnoses (testfleet classify, testfleet bisect)",
    ISOLATION: "Isolation (the pytest plugin)",
    NEO4J: "Neo4j (the pytest plugin)",
    SESSION: "Test environments (the nox sessions of testfleet.nox)",
}
