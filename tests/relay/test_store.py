"""The memory group store: compare-and-set writes and bounds."""

from __future__ import annotations

import pytest

from genapi.relay import MemoryGroupStore, StoreConflict, StoreFull
from genapi.relay.groups import GroupType, new_group


def group(group_id: str = "g", creator: str | None = "a"):  # type: ignore[no-untyped-def]
    """A small public group."""
    return new_group(group_id, GroupType.PUBLIC, creator=creator, now=0.0)


async def test_absent_groups_read_as_revision_zero() -> None:
    """get() of an unknown id is (None, 0)."""
    assert await MemoryGroupStore().get("nope") == (None, 0)


async def test_create_then_update_with_the_read_revision() -> None:
    """put(…, 0) creates; put with the current revision updates; revisions increase."""
    store = MemoryGroupStore()
    first = await store.put("g", group(), 0)
    second = await store.put("g", group(creator="b"), first)
    stored, revision = await store.get("g")
    assert revision == second > first
    assert stored is not None and stored.creator == "b"


async def test_stale_revisions_conflict() -> None:
    """A write or delete based on an old revision raises StoreConflict and changes nothing."""
    store = MemoryGroupStore()
    first = await store.put("g", group(), 0)
    await store.put("g", group(creator="b"), first)
    with pytest.raises(StoreConflict):
        await store.put("g", group(creator="c"), first)
    with pytest.raises(StoreConflict):
        await store.put("g", group(), 0)  # creating an existing group
    with pytest.raises(StoreConflict):
        await store.delete("g", first)
    stored, _ = await store.get("g")
    assert stored is not None and stored.creator == "b"


async def test_delete_with_the_current_revision() -> None:
    """delete() removes the group; deleting an absent group conflicts."""
    store = MemoryGroupStore()
    revision = await store.put("g", group(), 0)
    await store.delete("g", revision)
    assert await store.get("g") == (None, 0)
    with pytest.raises(StoreConflict):
        await store.delete("g", revision)


async def test_max_groups_bounds_creation_not_updates() -> None:
    """A full store refuses new groups but still updates existing ones."""
    store = MemoryGroupStore(max_groups=1)
    revision = await store.put("a", group("a"), 0)
    with pytest.raises(StoreFull):
        await store.put("b", group("b"), 0)
    await store.put("a", group("a", creator="x"), revision)
    assert len(store) == 1


async def test_seed_and_list() -> None:
    """seed() adds a group synchronously; group_ids() lists up to a limit."""
    store = MemoryGroupStore()
    store.seed(group("lobby", creator=None))
    await store.put("g", group(), 0)
    assert await store.group_ids() == ["lobby", "g"]
    assert await store.group_ids(limit=1) == ["lobby"]
    with pytest.raises(StoreConflict):
        store.seed(group("lobby"))
