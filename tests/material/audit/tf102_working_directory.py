# ruff: noqa
"""TF102: the working directory as scratch space, and look-alikes that are fine."""

import os
import sqlite3
from pathlib import Path


def test_writes_a_relative_file():
    with open("out.json", "w") as out:  # TF102
        out.write("{}")


def test_keeps_a_database_file():
    sqlite3.connect("app.db")  # TF102


def test_changes_directory(tmp_path):
    os.chdir(tmp_path)  # TF102


def test_asks_for_the_working_directory():
    assert Path.cwd().exists()  # TF102


def test_writes_through_path():
    Path("result.txt").write_text("x")  # TF102


def test_reads_a_relative_file():
    assert open("pyproject.toml").read()


def test_changes_directory_for_this_test_only(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)


def test_uses_an_in_memory_database():
    sqlite3.connect(":memory:")


def test_writes_in_an_isolated_filesystem():
    runner = CliRunner()
    with runner.isolated_filesystem():
        Path("out.txt").write_text("x")
        assert os.getcwd()


def test_writes_in_its_own_cwd(tmp_path):
    with tmp_path.as_cwd():
        Path("out.txt").write_text("x")


def test_runs_the_cli_in_its_own_directory_and_goes_back(tmp_path_factory):
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cli"))
    try:
        with open(".toolrc", "w") as config:
            config.write("x = 1\n")
    finally:
        os.chdir(cwd)


def test_goes_to_a_fixed_directory_and_back():
    cwd = os.getcwd()  # TF102
    os.chdir("/srv/shared")  # TF102
    try:
        Path("out.txt").write_text("x")  # TF102
    finally:
        os.chdir(cwd)  # TF102
