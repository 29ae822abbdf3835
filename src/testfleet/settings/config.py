"""Settings: one table, ``[tool.testfleet]`` in pyproject.toml, and one precedence.

A setting's value comes from the first of: the command-line option, its environment
variable, ``[tool.testfleet]``, its default. Every setting is declared once, in
``testfleet.settings.table``, with its type, default, environment variable and help; this module
reads and checks them, so that every command, the pytest plugin and the nox sessions agree.
"""

from __future__ import annotations

import argparse
import difflib
import os
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testfleet.core.workers import Workers
from testfleet.settings.kinds import WORKERS, Setting, show
from testfleet.settings.table import SETTINGS

__all__ = ["WORKERS", "Config", "ConfigError", "Value", "load", "show", "workers_from_env"]

PYPROJECT = "pyproject.toml"
TABLE = "[tool.testfleet]"

DEFAULT = "default"
PYPROJECT_SOURCE = "pyproject"
ENV_SOURCE = "env"
OPTION_SOURCE = "option"


class ConfigError(ValueError):
    """A setting that cannot be used as given; the message names it, where it is, and the fix."""


@dataclass(frozen=True)
class Value:
    """A setting's effective value and where it came from."""

    setting: Setting
    value: Any
    source: str
    #: The variable, file or option the value came from, for messages.
    origin: str = ""

    def describe_source(self) -> str:
        return f"{self.source} ({self.origin})" if self.origin else self.source


@dataclass
class Config:
    """The ``[tool.testfleet]`` table of one project, checked, with the environment beside it."""

    settings: Mapping[str, Setting]
    table: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)

    def resolve(self, name: str, option: Any = None, option_name: str = "") -> Value:
        """The value of ``name``: ``option`` when it is not None, else env, pyproject, default."""
        setting = self.setting(name)
        if option is not None:
            return Value(setting, option, OPTION_SOURCE, option_name)
        if setting.env:
            text = self.environ.get(setting.env, "").strip()
            if text:
                try:
                    return Value(setting, setting.kind.parse(text), ENV_SOURCE, setting.env)
                except (ValueError, argparse.ArgumentTypeError) as exc:
                    raise ConfigError(
                        f"environment variable {setting.env}={text!r} ({name}): {exc}"
                    ) from None
        if name in self.table:
            return Value(setting, self.table[name], PYPROJECT_SOURCE, str(self.path))
        return Value(setting, setting.default, DEFAULT)

    def get(self, name: str, option: Any = None) -> Any:
        """The effective value of ``name`` (see ``resolve``)."""
        return self.resolve(name, option).value

    def setting(self, name: str) -> Setting:
        try:
            return self.settings[name]
        except KeyError:
            raise ConfigError(
                f"testfleet has no setting {name!r}{_did_you_mean(name, self.settings)}"
            ) from None

    def values(self) -> list[Value]:
        return [self.resolve(name) for name in self.settings]


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def find_pyproject(start: Path | None = None) -> Path | None:
    """The pyproject.toml of the project around ``start`` (default: the current directory).

    Looks in ``start`` and its parents, and stops at the top of a git checkout, so that a
    project without one does not pick up an unrelated file further up.
    """
    here = (start or Path.cwd()).absolute()
    for directory in (here, *here.parents):
        candidate = directory / PYPROJECT
        if candidate.is_file():
            return candidate
        if (directory / ".git").exists():
            return None
    return None


def read_table(path: Path) -> dict[str, Any]:
    """The raw ``[tool.testfleet]`` table of ``path``; ConfigError for a malformed file."""
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line L, column C)".
        raise ConfigError(f"{path}: malformed TOML: {exc}; fix the file and retry") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    tool = document.get("tool", {})
    table = tool.get("testfleet", {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: tool.testfleet must be a table, {TABLE}")
    return table


def check_table(
    raw: Mapping[str, Any], settings: Mapping[str, Setting], path: Path
) -> dict[str, Any]:
    """The table's values, converted; ConfigError naming the key and the file otherwise."""
    checked: dict[str, Any] = {}
    for key, raw_value in raw.items():
        setting = settings.get(key)
        if setting is None:
            raise ConfigError(
                f"{path}: {TABLE} has no setting {key!r}{_did_you_mean(key, settings)}; "
                "`testfleet config` lists the settings"
            )
        if setting.secret:
            raise ConfigError(
                f"{path}: {TABLE} {key}: a secret does not belong in a committed file; "
                f"set the environment variable {setting.env} instead"
            )
        try:
            value = setting.kind.from_toml(raw_value)
        except (ValueError, argparse.ArgumentTypeError) as exc:
            raise ConfigError(f"{path}: {TABLE} {key} = {raw_value!r}: {exc}") from None
        if isinstance(value, Path) and not value.is_absolute():
            # Relative to the project, wherever the command runs from.
            value = _relative_to_cwd(path.parent / value)
        checked[key] = value
    return checked


def _relative_to_cwd(path: Path) -> Path:
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def load(
    start: Path | None = None,
    environ: Mapping[str, str] | None = None,
    settings: Sequence[Setting] | None = None,
) -> Config:
    """The settings of the project around ``start``: its table checked, the environment beside."""
    if settings is None:
        settings = SETTINGS
    by_name = {setting.name: setting for setting in settings}
    path = find_pyproject(start)
    table = check_table(read_table(path), by_name, path) if path is not None else {}
    return Config(
        settings=by_name,
        table=table,
        path=path,
        environ=os.environ if environ is None else environ,
    )


def workers_from_env(
    environ: Mapping[str, str] | None = None, default: Workers = "auto"
) -> Workers:
    """The ``workers`` setting (``PYTEST_WORKERS``, else [tool.testfleet]), else ``default``."""
    value = load(environ=environ).resolve("workers")
    return default if value.source == DEFAULT else value.value


def shown(value: Value) -> str:
    """A value as ``testfleet config`` prints it; a secret only says whether it is set."""
    if value.setting.secret:
        return "(set)" if value.value else "(not set)"
    if value.value is None:
        return value.setting.describe_default()
    return show(value.value)


def source_label(value: Value, pyproject: Path | None) -> str:
    if value.source == ENV_SOURCE:
        return f"env {value.origin}"
    if value.source == PYPROJECT_SOURCE:
        return f"{pyproject.name if pyproject else PYPROJECT} {TABLE}"
    return value.source


def render_text(config: Config, values: Sequence[Value], sections: Mapping[str, str]) -> str:
    """The effective settings, by section: key = value, and where the value came from."""
    where = str(config.path) if config.path else "none found (defaults apply)"
    lines = [
        f"pyproject: {where}",
        "precedence: command-line option > environment variable > pyproject > default",
    ]
    width = max((len(value.setting.name) for value in values), default=0)
    rows = [(value, shown(value)) for value in values]
    value_width = min(40, max((len(text) for _, text in rows), default=0))
    for section, title in sections.items():
        chosen = [(value, text) for value, text in rows if value.setting.section == section]
        if not chosen:
            continue
        lines += ["", f"# {title}"]
        for value, text in chosen:
            label = source_label(value, config.path)
            lines.append(f"{value.setting.name:<{width}} = {text:<{value_width}}  # {label}")
    return "\n".join(lines) + "\n"


def render_json(config: Config, values: Sequence[Value]) -> dict[str, Any]:
    """The effective settings as JSON: value (strings for paths), source and variable."""
    settings: dict[str, Any] = {}
    for value in values:
        data = value.value
        if value.setting.secret:
            data = bool(data)
        elif isinstance(data, Path):
            data = str(data)
        settings[value.setting.name] = {
            "value": data,
            "source": value.source,
            "env": value.setting.env,
        }
    return {"pyproject": str(config.path) if config.path else None, "settings": settings}


def render_reference(settings: Sequence[Setting], sections: Mapping[str, str]) -> str:
    """The settings as markdown tables, one per section: the reference in the docs."""
    lines: list[str] = []
    for section, title in sections.items():
        chosen = [setting for setting in settings if setting.section == section]
        if not chosen:
            continue
        lines += [f"### {title}", ""]
        lines += ["| key | environment | type | default | option | meaning |"]
        lines += ["|---|---|---|---|---|---|"]
        for setting in chosen:
            cells = [
                f"`{setting.name}`",
                f"`{setting.env}`" if setting.env else "",
                setting.kind.name,
                setting.describe_default(),
                f"`{setting.option}`" if setting.option else "",
                setting.help,
            ]
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        lines.append("")
    return "\n".join(lines)
