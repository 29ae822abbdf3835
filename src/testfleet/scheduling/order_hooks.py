"""The pytest side of ``--testfleet-order-file`` and ``--testfleet-reverse`` (see ordering)."""

from __future__ import annotations

from pathlib import Path

import pytest

from testfleet.core.atomic import write_text_atomic
from testfleet.scheduling.ordering import arrange, missing_file, read_order_file


def listed_id(item: pytest.Item) -> str:
    """The node id reports list: without the ``@group`` xdist's loadgroup adds in workers."""
    marker = item.get_closest_marker("xdist_group")
    if marker is None:
        return item.nodeid
    suffix = f"@{marker.args[0] if marker.args else marker.kwargs.get('name', '')}"
    return item.nodeid.removesuffix(suffix)


class OrderHooks:
    """The pytest side: registered by the plugin only when one of the two options is given."""

    def __init__(self, order_file: Path | None) -> None:
        # Read once, at configure time: a missing file is a usage error before collection.
        self.order_file = order_file
        try:
            self.order = read_order_file(order_file) if order_file is not None else None
        except ValueError as exc:
            raise pytest.UsageError(f"--testfleet-order-file: {exc}") from None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        # trylast: after every plugin that reorders or deselects (pytest-randomly, -k, -m).
        if self.order is None:
            items.reverse()
            return
        assert self.order_file is not None
        kept, others, missing = arrange(items, self.order, listed_id)
        if missing:
            write_text_atomic(missing_file(self.order_file), "".join(f"{m}\n" for m in missing))
            shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
            raise pytest.UsageError(
                f"testfleet: {len(missing)} node ids of {self.order_file} were not collected "
                f"(listed in {missing_file(self.order_file)}): {shown}"
            )
        if others:
            config.hook.pytest_deselected(items=others)
        items[:] = kept
