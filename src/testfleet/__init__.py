"""testfleet: fast, trusted parallel pytest runs.

PYTEST_DONT_REWRITE: the `testfleet` command imports this package before it runs pytest
in its own process, and pytest, which rewrites the asserts of every plugin's package,
would warn that it came too late (an error under ``filterwarnings = error``).
"""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    # The version is looked up on first use: every pytest run loads this package as a
    # plugin, and reading the installed metadata is most of what importing it costs.
    if name != "__version__":
        raise AttributeError(f"module 'testfleet' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("testfleet")
    except PackageNotFoundError:  # pragma: no cover - only when run from an uninstalled tree
        found = "0+unknown"
    globals()["__version__"] = found
    return found
