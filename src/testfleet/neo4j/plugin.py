"""pytest wiring for the Neo4j support (options, fixtures, the local server as a service)."""

from __future__ import annotations
