"""Neo4j support: connection, readiness, isolation strategies and a local Bolt server.

Nothing here imports the ``neo4j`` driver at import time: it is an optional extra.
"""
