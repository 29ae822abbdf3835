"""The order of a run given from outside: an order file, or the collection order reversed.

`--testfleet-order-file FILE` runs exactly the node ids listed in FILE, in that order, and
deselects the rest: the probes of `testfleet bisect` and the reruns of `testfleet classify`
pass their tests this way rather than on the command line, so that no list is too long
for one command line and the selection arguments of the suite (paths) can stay. Node ids
the file lists but pytest did not collect are written to FILE + ``.missing`` before the
run stops with a usage error: the caller reads which ones, it never parses pytest's output.

`--testfleet-reverse` runs the collected tests in reverse order: a test that a later test
pollutes, or that needs an earlier one, fails in that one run, whatever random seeds find.

The pytest side of both options is in :mod:`testfleet.scheduling.order_hooks`; this module is the
order file itself, which the command line writes without importing pytest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from testfleet.core.atomic import write_text_atomic

MISSING_SUFFIX = ".missing"


class _Item(Protocol):
    @property
    def nodeid(self) -> str: ...


ItemT = TypeVar("ItemT", bound=_Item)


def read_order_file(path: Path) -> list[str]:
    """Node ids, one per line; blank lines and lines starting with # are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file (expected one node id per line)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot be read ({exc})") from None
    lines = (line.strip() for line in text.splitlines())
    return unique(line for line in lines if line and not line.startswith("#"))


def write_order_file(path: Path, nodeids: Iterable[str]) -> None:
    write_text_atomic(path, "".join(f"{nodeid}\n" for nodeid in nodeids))


def missing_file(order_file: Path) -> Path:
    """Where the node ids of ``order_file`` that were not collected are written."""
    return order_file.with_name(order_file.name + MISSING_SUFFIX)


def read_missing(order_file: Path) -> list[str] | None:
    """The node ids a run did not collect, or None when it wrote no such list."""
    path = missing_file(order_file)
    if not path.is_file():
        return None
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line]


def unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def arrange(
    items: Sequence[ItemT], order: Sequence[str], key: Callable[[ItemT], str] | None = None
) -> tuple[list[ItemT], list[ItemT], list[str]]:
    """(the items of ``order`` in that order, the other items, node ids not among ``items``).

    ``key`` gives the node id an item is listed under (default: its ``nodeid``).
    """
    name = key or (lambda item: item.nodeid)
    by_id: dict[str, ItemT] = {}
    for item in items:
        by_id.setdefault(name(item), item)
    wanted = unique(order)
    kept = [by_id[nodeid] for nodeid in wanted if nodeid in by_id]
    chosen = set(wanted)
    others = [item for item in items if name(item) not in chosen]
    return kept, others, [nodeid for nodeid in wanted if nodeid not in by_id]
