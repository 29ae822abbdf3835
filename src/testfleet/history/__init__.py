"""Run history: every run's outcomes and timings in one SQLite file, flake rates and trends."""

from __future__ import annotations

from testfleet.history.store import DEFAULT_PATH, HistoryError, open_history

__all__ = ["DEFAULT_PATH", "HistoryError", "open_history"]
