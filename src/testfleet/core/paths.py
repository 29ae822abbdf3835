"""Where testfleet's files go by default, relative to the project: one place for each.

The settings table, the command line, the pytest options and the nox and invoke tasks
all name these paths; a default changed here changes everywhere.
"""

from __future__ import annotations

from pathlib import Path

#: The directory of every file below.
REPORTS_DIR = Path("reports")
#: The timing report of the last run.
TIMING_REPORT = REPORTS_DIR / "test-timing.json"
#: The committed report that runs are compared with, and CI shards are split by.
BASELINE_REPORT = REPORTS_DIR / "test-timing-baseline.json"
#: The markdown summary of a CI run.
CI_SUMMARY = REPORTS_DIR / "ci-summary.md"
#: The one-page HTML report.
HTML_REPORT = REPORTS_DIR / "report.html"
#: The run history (SQLite).
HISTORY = REPORTS_DIR / "history.sqlite"
#: What `testfleet classify` found.
CLASSIFICATION = REPORTS_DIR / "classification.json"
#: What `testfleet randomized` found about order dependence.
ORDER_DEPENDENCE = REPORTS_DIR / "order-dependence.json"
#: The reports of CI shards, one directory per shard (``I-of-N``).
SHARDS_DIR = REPORTS_DIR / "shards"
#: The timing reports of `testfleet randomized`, one per seed.
RANDOMIZED_DIR = REPORTS_DIR / "randomized"
