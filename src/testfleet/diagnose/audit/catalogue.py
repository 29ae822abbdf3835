"""The audit's rule catalogue: what each rule finds, why it breaks parallel runs, the fix."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

LOW, MEDIUM, HIGH = "low", "medium", "high"
SEVERITIES = (LOW, MEDIUM, HIGH)
ONE_LINE, MODERATE, MAJOR = "1-2 lines", "moderate", "major"


@dataclass(frozen=True)
class Rule:
    """One kind of isolation hazard: what it is, why it breaks parallel runs, how to fix it."""

    id: str
    severity: str
    title: str
    why: str
    fix: str
    effort: str


@dataclass(frozen=True)
class Hit:
    """A rule's finding at one line of a module, before silencing."""

    line: int
    rule: str
    detail: str


RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule(
            "TF101",
            HIGH,
            "hardcoded shared path",
            "every worker (and every run on the machine) reads and writes the same file, "
            "so tests overwrite, delete or read each other's files",
            "use `tmp_path`, or `testfleet_worker_dir` / `testfleet_redirect` for a "
            "directory the application takes from settings or the environment",
            ONE_LINE,
        ),
        Rule(
            "TF102",
            MEDIUM,
            "working directory used as scratch space",
            "all workers share the working directory, and `os.chdir` outlives the test "
            "in its worker, so files collide and later tests run elsewhere",
            "write under `tmp_path`; change directory with `monkeypatch.chdir(tmp_path)`",
            ONE_LINE,
        ),
        Rule(
            "TF103",
            HIGH,
            "module- or class-level state mutated by a test",
            "each worker has its own copy: a test that relies on what another test added "
            "sees it only when both run on the same worker, in that order",
            "build the object in a function-scoped fixture (or a new instance per test) "
            "and let the tests that need it ask for it",
            MODERATE,
        ),
        Rule(
            "TF104",
            MEDIUM,
            "broad-scoped fixture returns a mutable object",
            "every test of the session (or module, class) on a worker gets the same object: "
            "one test's change reaches the tests that follow it on that worker only",
            "return an immutable value (tuple, frozenset, `types.MappingProxyType`) or a "
            "copy from a function-scoped fixture built on this one",
            ONE_LINE,
        ),
        Rule(
            "TF105",
            HIGH,
            "hardcoded port",
            "two workers (or two runs) bind or reach the same port: one fails with "
            "'address in use' or talks to the other's server",
            "start the server once as a run-once service (`pytest_testfleet_services`, "
            "`testfleet.isolation.services.free_port()`) and read its address from "
            "`testfleet_service`",
            MODERATE,
        ),
        Rule(
            "TF106",
            HIGH,
            "hardcoded database or collection name",
            "every worker uses the same database or collection: one test's writes and "
            "cleanup land in the middle of another's",
            "name it with `testfleet_unique_name(...)`, hand out fixed ones with "
            "`testfleet_pool`; for Neo4j use `neo4j_isolation.database` or `neo4j_label` "
            "(docs/neo4j.md)",
            MODERATE,
        ),
        Rule(
            "TF107",
            HIGH,
            "settings or environment mutated without restoring",
            "the change outlives the test in its worker: the tests that happen to follow "
            "it there see other settings than in a serial run",
            "`testfleet_redirect.attr(...)` / `.env(...)` for paths, else "
            "`monkeypatch.setattr` / `monkeypatch.setenv`, which restore the old value",
            ONE_LINE,
        ),
        Rule(
            "TF108",
            MEDIUM,
            "fixed sleep used to wait",
            "a fixed pause waits for something that happens elsewhere (another test, worker "
            "or process); under parallel load it comes later, or on another worker, or never",
            "create what the test waits for in a fixture, or poll for the condition with a "
            "deadline; start shared processes with `testfleet_service`",
            MODERATE,
        ),
        Rule(
            "TF109",
            HIGH,
            "cleanup deletes by a shared prefix or pattern",
            "the pattern also matches what tests on other workers created, and deletes it "
            "under them",
            "delete exactly the names the test made (`testfleet_unique_name`), or clean a "
            "per-worker place (`testfleet_worker_dir`, `testfleet_pool`, the Neo4j "
            "`namespace` strategy's label)",
            MODERATE,
        ),
        Rule(
            "TF110",
            MEDIUM,
            "test reads data it did not create",
            "the data exists only when the test that writes it ran earlier on the same "
            "worker; in random order or on another worker it is missing",
            "create the data in the test or in a fixture it asks for, under a name of its "
            "own (`testfleet_unique_name`)",
            MAJOR,
        ),
    )
}


def rule_ids(items: Iterable[str]) -> list[str]:
    """The known rule ids among ``items``."""
    return [item for item in items if item in RULES]
