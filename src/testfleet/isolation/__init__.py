"""Isolation between workers: unique names, per-worker dirs and env, pools, services, serial.

``testfleet.isolation.unique_name`` and the rest of :mod:`.names` stay importable from here,
as before the package was split.
"""

from __future__ import annotations

from testfleet.isolation.names import (
    MAX_NAME_LENGTH,
    MAX_PREFIX_LENGTH,
    Redirect,
    normalize_prefix,
    run_token,
    unique_name,
    worker_dir,
    worker_index,
    worker_token,
)

__all__ = [
    "MAX_NAME_LENGTH",
    "MAX_PREFIX_LENGTH",
    "Redirect",
    "normalize_prefix",
    "run_token",
    "unique_name",
    "worker_dir",
    "worker_index",
    "worker_token",
]
