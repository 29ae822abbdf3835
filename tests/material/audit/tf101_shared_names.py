# ruff: noqa
"""TF101/TF102: fixed names in the temp dir, the home dir and the cwd, also through helpers."""

import json
import os
import tempfile
from pathlib import Path

CACHE = Path(tempfile.gettempdir()) / "app-cache.json"
SETTINGS = Path.home() / ".app-settings"
CONFIG = Path("~/.apprc").expanduser()
STATE = "state.json"


def save_state(data):
    Path(STATE).write_text(json.dumps(data))


def save_to(path, data):
    path.write_text(json.dumps(data))


def write_report():
    save_state({})


def read_settings():
    return SETTINGS.read_text()


def test_writes_a_module_level_name_in_the_temp_dir():
    CACHE.write_text("{}")  # TF101


def test_writes_in_the_home_dir():
    SETTINGS.write_text("x")  # TF101


def test_writes_an_expanded_home_path():
    CONFIG.write_text("x")  # TF101


def test_writes_home_joined():
    with open(os.path.join(os.path.expanduser("~"), ".apphistory"), "w"):  # TF101
        pass


def test_saves_through_a_helper():
    save_state({"a": 1})  # TF102


def test_saves_through_a_helper_of_a_helper():
    write_report()  # TF102


def test_saves_through_a_helper_to_its_own_path(tmp_path):
    save_to(tmp_path / "state.json", {})


def test_reads_the_home_settings():
    assert read_settings() is not None
    assert Path("~/.gitconfig").expanduser().exists() in (True, False)


def test_writes_under_tmp_path(tmp_path):
    (tmp_path / "app-cache.json").write_text("{}")
