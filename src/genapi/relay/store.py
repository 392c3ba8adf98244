"""Where group state lives: a small store interface with compare-and-set, and memory.

Every change is read → decide (pure, :mod:`genapi.relay.groups`) → write *if nobody
wrote in between*: :meth:`GroupStore.put` and :meth:`GroupStore.delete` take the
revision the caller read and raise :class:`StoreConflict` when it moved, and the hub
reads again and retries. That is all a shared implementation needs (a NATS key-value
bucket: ``create`` / ``update(last=revision)`` / ``delete(last=revision)``).

Revision 0 means "absent": ``put(group_id, group, 0)`` creates and fails if the group
exists.
"""

from __future__ import annotations

from typing import Protocol

from ..errors import ConfigError, StoreConflict, StoreError, StoreFull
from .groups import Group

__all__ = ["GroupStore", "MemoryGroupStore", "StoreConflict", "StoreError", "StoreFull"]


class GroupStore(Protocol):
    """Group state by id, with revisions for compare-and-set."""

    async def get(self, group_id: str) -> tuple[Group | None, int]:
        """The group and its revision; ``(None, 0)`` when absent."""

    async def put(self, group_id: str, group: Group, expected_revision: int) -> int:
        """Write ``group`` if the stored revision is ``expected_revision`` (0: absent);
        returns the new revision, raises :class:`StoreConflict` otherwise."""

    async def delete(self, group_id: str, expected_revision: int) -> None:
        """Remove the group if its revision is ``expected_revision``; raises
        :class:`StoreConflict` otherwise."""

    async def group_ids(self, limit: int = 1000) -> list[str]:
        """Up to ``limit`` group ids (for status pages)."""


class MemoryGroupStore:
    """The in-process store (the default). At most ``max_groups`` groups."""

    def __init__(self, *, max_groups: int = 10_000) -> None:
        if max_groups < 1:
            raise ConfigError("max_groups must be at least 1")
        self.max_groups = max_groups
        self._groups: dict[str, tuple[Group, int]] = {}
        self._revision = 0  # one counter for the store, like a key-value stream sequence

    def __len__(self) -> int:
        return len(self._groups)

    def seed(self, group: Group) -> None:
        """Add a group before anything runs (for example a persistent lobby at startup)."""
        if group.group_id in self._groups:
            raise StoreConflict(f"group {group.group_id!r} exists")
        self._write(group.group_id, group)

    async def get(self, group_id: str) -> tuple[Group | None, int]:
        """The group and its revision; ``(None, 0)`` when absent."""
        entry = self._groups.get(group_id)
        return (None, 0) if entry is None else entry

    async def put(self, group_id: str, group: Group, expected_revision: int) -> int:
        """Compare-and-set write (revision 0 creates)."""
        entry = self._groups.get(group_id)
        current = 0 if entry is None else entry[1]
        if current != expected_revision:
            raise StoreConflict(
                f"group {group_id!r} is at revision {current}, not {expected_revision}"
            )
        if entry is None and len(self._groups) >= self.max_groups:
            raise StoreFull(f"the store holds {self.max_groups} groups already")
        return self._write(group_id, group)

    async def delete(self, group_id: str, expected_revision: int) -> None:
        """Compare-and-set removal."""
        entry = self._groups.get(group_id)
        if entry is None or entry[1] != expected_revision:
            raise StoreConflict(f"group {group_id!r} is not at revision {expected_revision}")
        del self._groups[group_id]

    async def group_ids(self, limit: int = 1000) -> list[str]:
        """Up to ``limit`` group ids, oldest first."""
        return [gid for gid, _ in zip(self._groups, range(limit), strict=False)]

    def _write(self, group_id: str, group: Group) -> int:
        self._revision += 1
        self._groups[group_id] = (group, self._revision)
        return self._revision
