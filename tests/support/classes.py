"""Sync classes for tests of the engine: synchronizing everything, no bases or filters."""

from __future__ import annotations

from toolkit.config.model import SyncClass

#: the correlation lists of Ping's users class
USER_CORRELATION = (("externalId",), ("userName",))


def sync_class(
    name: str = "users",
    index: int = 100,
    correlation: tuple[tuple[str, ...], ...] = USER_CORRELATION,
) -> SyncClass:
    return SyncClass(
        name=name,
        evaluation_order_index=index,
        include_base_dn=(),
        include_filter=(),
        synchronize_creates=True,
        synchronize_modifies=True,
        synchronize_deletes=True,
        destination_correlation_attributes=correlation,
        resource=None,
    )
