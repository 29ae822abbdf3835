"""unique_name, the per-worker scratch directory and settings pointed at it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from testfleet.core import workers
from testfleet.isolation import names as isolation

# Neo4j's rules: a database name is 3-63 characters, an ASCII letter first, then
# letters, digits, dots or dashes; an unquoted label is a letter then letters,
# digits or underscores.
NEO4J_DATABASE = re.compile(r"[A-Za-z][A-Za-z0-9.-]{2,62}")
NEO4J_LABEL = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def test_unique_names_are_valid_neo4j_labels_database_names_and_file_names(
    pytestconfig: pytest.Config, tmp_path: Path
) -> None:
    names = [isolation.unique_name(prefix, pytestconfig) for prefix in ("a", "Person", "x" * 24)]
    for name in names:
        assert NEO4J_DATABASE.fullmatch(name), name
        assert NEO4J_LABEL.fullmatch(name), name
        assert len(name) <= isolation.MAX_NAME_LENGTH
        assert set(name) <= set(isolation.ALPHABET)
        (tmp_path / name).mkdir()
        (tmp_path / name / name).write_text("ok")
    assert names[1].startswith("person")


def test_unique_names_differ_within_a_process_and_carry_run_and_worker(
    pytestconfig: pytest.Config,
) -> None:
    names = [isolation.unique_name("n", pytestconfig) for _ in range(1000)]
    assert len(set(names)) == 1000
    token = isolation.run_token(workers.run_id(pytestconfig))
    worker = isolation.worker_token(workers.worker_id(pytestconfig))
    assert all(name.startswith(f"n{token}{worker}p{os.getpid()}n") for name in names)


def test_two_different_runs_never_make_the_same_name(monkeypatch: pytest.MonkeyPatch) -> None:
    # Run ids that are not 12 name characters are hashed: still 12 characters, still distinct.
    tokens = {isolation.run_token(run_id) for run_id in ("ci-1", "ci-2", "CI_1", "a" * 40)}
    assert len(tokens) == 4
    assert all(re.fullmatch(r"[a-f0-9]{12}", token) for token in tokens)
    assert isolation.run_token("0123456789ab") == "0123456789ab"


@pytest.mark.parametrize(
    ("worker", "token"), [("main", "m"), ("gw0", "w0"), ("gw12", "w12"), ("custom", None)]
)
def test_worker_tokens_are_short_and_distinct(worker: str, token: str | None) -> None:
    got = isolation.worker_token(worker)
    if token is None:
        assert re.fullmatch(r"x[0-9a-f]{4}", got)
    else:
        assert got == token


@pytest.mark.parametrize(
    ("prefix", "normalized"),
    [("Person", "person"), ("user_sessions", "usersessions"), ("my-label.v2", "mylabelv2")],
)
def test_a_prefix_is_lowercased_and_loses_its_separators(prefix: str, normalized: str) -> None:
    assert isolation.normalize_prefix(prefix) == normalized


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("", "is empty once '_', '-', '.' and spaces are dropped"),
        ("__", "is empty"),
        ("1abc", "starts with '1': start it with a letter .* e.g. 'n1abc'"),
        ("caf\u00e9", "contains '\u00e9': use ASCII letters and digits only"),
        ("a/b", "contains '/'"),
        ("p" * 25, "is 25 characters long: use at most 24"),
        ("system_db", "starts with 'system', which Neo4j reserves"),
    ],
)
def test_a_bad_prefix_is_refused_with_a_message_saying_what_to_use(
    pytestconfig: pytest.Config, prefix: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        isolation.unique_name(prefix, pytestconfig)


def test_the_unique_name_fixture_uses_this_runs_config(
    testfleet_unique_name: object, pytestconfig: pytest.Config
) -> None:
    assert callable(testfleet_unique_name)
    first, second = testfleet_unique_name("x"), testfleet_unique_name("x")
    assert first != second
    assert first[1:13] == isolation.run_token(workers.run_id(pytestconfig))


class Settings:
    def __init__(self) -> None:
        self.data_dir = "data"
        self.cache = Path("cache")


def test_redirect_points_settings_at_the_directory_and_restores_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings()
    mapping: dict[str, object] = {"UPLOADS": "up"}
    monkeypatch.setenv("MYAPP_HOME", "/original")
    with pytest.MonkeyPatch.context() as inner:
        redirect = isolation.Redirect(inner, tmp_path)
        assert redirect.attr(settings, "data_dir", "data/sessions") == tmp_path / "data/sessions"
        redirect.attr(settings, "cache")
        redirect.env("MYAPP_HOME")
        redirect.item(mapping, "UPLOADS", "up")
        # The type of the old value is kept: str stays str, Path stays Path.
        assert settings.data_dir == str(tmp_path / "data" / "sessions")
        assert settings.cache == tmp_path
        assert os.environ["MYAPP_HOME"] == str(tmp_path)
        assert mapping["UPLOADS"] == str(tmp_path / "up")
        assert (tmp_path / "data" / "sessions").is_dir()
    assert settings.data_dir == "data"
    assert settings.cache == Path("cache")
    assert os.environ["MYAPP_HOME"] == "/original"
    assert mapping == {"UPLOADS": "up"}


def test_redirect_refuses_a_missing_attribute_and_a_path_outside_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    redirect = isolation.Redirect(monkeypatch, tmp_path)
    with pytest.raises(AttributeError, match=r"has no attribute 'data_dirr'.*check"):
        redirect.attr(Settings(), "data_dirr")
    with pytest.raises(ValueError, match=r"leaves .*: give a relative path"):
        redirect.env("X", "../elsewhere")
    with pytest.raises(ValueError, match="leaves"):
        redirect.env("X", "/etc")
    assert "X" not in os.environ


def test_the_worker_dir_is_one_directory_per_worker_inside_the_runs_base_temp(
    testfleet_worker_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    pytestconfig: pytest.Config,
    testfleet_redirect: isolation.Redirect,
) -> None:
    assert testfleet_worker_dir.is_dir()
    assert testfleet_worker_dir.parent == tmp_path_factory.getbasetemp()
    assert testfleet_worker_dir.name == f"testfleet-{workers.worker_id(pytestconfig)}"
    assert testfleet_redirect.directory == testfleet_worker_dir
