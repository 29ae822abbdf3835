"""The `group` strategy's lock: one per server, and no file left when no one holds it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from testfleet.isolation import pools
from testfleet.neo4j.strategies import GROUP_LOCK_TIMEOUT, group_pool


def test_the_lock_is_one_slot_named_after_the_server_not_the_run(tmp_path: Path) -> None:
    first = group_pool("bolt://db.example:7687", tmp_path)
    assert first.slots == ("0",)
    assert first.timeout == GROUP_LOCK_TIMEOUT
    # Two runs against one server share the lock; another server has another one.
    assert group_pool("bolt://db.example:7687", tmp_path).directory == first.directory
    assert group_pool("bolt://db.example:7688", tmp_path).directory != first.directory


def test_holding_the_lock_survives_its_directory_being_removed_by_a_closing_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = group_pool("bolt://127.0.0.1:7687", tmp_path)
    opened = pools.open_lock_file
    removed: list[Path] = []

    def open_after_removal(path: Path, shared: bool) -> int:
        # Another worker's close() ran remove_unused() between our mkdir and our open.
        if not removed:
            removed.append(path.parent)
            shutil.rmtree(path.parent)
        return opened(path, shared)

    monkeypatch.setattr(pools, "open_lock_file", open_after_removal)
    lease = pool.acquire({"test": "t"})
    assert removed == [pool.directory]
    assert lease.held
    assert lease.path.exists()
    # And the slot is really held: a second holder finds none free.
    with pytest.raises(pools.PoolTimeout):
        group_pool("bolt://127.0.0.1:7687", tmp_path).acquire({}, timeout=0)
    lease.release()
    assert pool.remove_unused() == ["0"]
    assert not pool.directory.exists()
