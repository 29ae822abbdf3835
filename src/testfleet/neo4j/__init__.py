"""Neo4j support: connection, readiness, isolation strategies and a local Bolt server.

Nothing here imports the ``neo4j`` driver at import time: it is an optional extra. The
names below are imported on first use: every ``testfleet`` command reads the Neo4j
settings (:mod:`testfleet.neo4j.config`), and most never touch a database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from testfleet.neo4j.config import Connection
    from testfleet.neo4j.strategies import (
        Neo4jIsolation,
        Neo4jLeakWarning,
        StrategyUnsupported,
    )

__all__ = ["Connection", "Neo4jIsolation", "Neo4jLeakWarning", "StrategyUnsupported"]


def __getattr__(name: str) -> Any:
    if name == "Connection":
        # Imported on first use: the settings table imports testfleet.neo4j.modes, and so
        # this package, in every process; only a project that uses Neo4j pays for the rest.
        from testfleet.neo4j import config

        return config.Connection
    if name in __all__:
        # As above: only a project that uses the strategies pays for their imports.
        from testfleet.neo4j import strategies

        return getattr(strategies, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
