"""Neo4j support: connection, readiness, isolation strategies and a local Bolt server.

Nothing here imports the ``neo4j`` driver at import time: it is an optional extra.
"""

from __future__ import annotations

from testfleet.neo4j.config import Connection
from testfleet.neo4j.strategies import Neo4jIsolation, Neo4jLeakWarning, StrategyUnsupported

__all__ = ["Connection", "Neo4jIsolation", "Neo4jLeakWarning", "StrategyUnsupported"]
