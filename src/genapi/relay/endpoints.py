"""This process's side of the relay: where each member's messages go, and the fan-out.

An :class:`Endpoint` is a ``deliver(response)`` callable and the ``owner`` it belongs to
(for the built-in functions: the caller's connection and its sink, which pushes on the
topic the call came in on). :class:`LocalEndpoints` indexes them by group and by owner.

Fairness: the fan-out calls each member's ``deliver`` in turn and never waits for one.
A gateway connection's sink queues the frame in the connection's bounded outbox and
returns without suspending (a client that stops reading is disconnected by its
connection), so one slow member cannot delay the others. A ``deliver`` that does
suspend is finished in a background task (at most ``max_pending`` of them; beyond that
deliveries are dropped and counted) — still without delaying the rest.

Encode once: a ``deliver`` that also has ``deliver_shared(response, frames)`` (a
gateway connection's sink has) is given the batch's ``frames`` dict instead, one per
fan-out: the first sink of a kind encodes the frame and puts it there, the others
write the same frame. A group message then costs one encode, not one per member.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..messages import Response

__all__ = ["Deliver", "Endpoint", "LocalEndpoints", "SharedDeliver"]

logger = logging.getLogger("genapi.relay")

#: Sends one Response to a member; must not block (sync, or async without waiting).
Deliver = Callable[[Response], Awaitable[None] | None]


@runtime_checkable
class SharedDeliver(Protocol):
    """A ``deliver`` that can take part in an encode-once fan-out (see the module
    docstring): it must not block, and puts what it encodes into ``frames``."""

    def deliver_shared(self, response: Response, frames: dict[Any, Any]) -> None: ...


@dataclass(frozen=True, slots=True, eq=False)
class Endpoint:
    """A member's delivery target. Endpoints of one ``owner`` form one connection.

    ``alive`` (when given) tells whether the owner is still open: an endpoint whose owner
    closed while it was joining is not registered (its close was already announced).
    """

    deliver: Deliver
    owner: Any = None
    alive: Callable[[], bool] | None = None

    @property
    def key(self) -> Any:
        """What identifies the connection: the owner, or the endpoint itself."""
        return self.owner if self.owner is not None else self

    @property
    def closed(self) -> bool:
        """True when ``alive`` says the owner is gone."""
        return self.alive is not None and not self.alive()


class _Link:
    """One endpoint in one group, registered at the group's store ``revision``."""

    __slots__ = ("conn", "deliver", "group_id", "key", "receives", "revision", "shared",
                 "user_id")

    def __init__(self, group_id: str, user_id: str, key: Any, conn: str, deliver: Deliver,
                 receives: bool, revision: int) -> None:
        self.group_id = group_id
        self.user_id = user_id
        self.key = key
        self.conn = conn
        self.deliver = deliver
        # looked up once here, not per message: the fan-out is the hot path
        self.shared: Callable[[Response, dict[Any, Any]], None] | None = (
            deliver.deliver_shared if isinstance(deliver, SharedDeliver) else None)
        self.receives = receives
        self.revision = revision

    def older_than(self, revision: int) -> bool:
        """True when an event at ``revision`` (0: unknown) is newer than this link."""
        return revision == 0 or self.revision < revision


class _Resumed:
    """Awaits the rest of a coroutine whose first step ran synchronously and suspended
    on ``waiting`` (so a task can finish what the fan-out started)."""

    __slots__ = ("coro", "waiting")

    def __init__(self, coro: Coroutine[Any, Any, Any], waiting: Any) -> None:
        self.coro = coro
        self.waiting = waiting

    def __await__(self) -> Generator[Any, Any, None]:
        try:
            yield self.waiting  # the task waits on what the coroutine waits on
        except BaseException:
            self.coro.close()
            raise
        yield from self.coro.__await__()  # then resumes it where it stopped


async def _finish(resumed: _Resumed) -> None:
    await resumed


class LocalEndpoints:
    """The endpoints of one hub: ``group → user → connection`` and ``connection → group``.

    Each connection gets an id (``<hub_id>:<n>``) that events carry as their origin.
    """

    def __init__(self, hub_id: str, *, max_pending: int = 10_000) -> None:
        self.hub_id = hub_id
        self.max_pending = max_pending
        self.failures = 0  # deliveries that raised
        self.dropped = 0  # deliveries dropped because too many were still waiting
        self._groups: dict[str, dict[str, dict[Any, _Link]]] = {}
        self._owners: dict[Any, dict[str, _Link]] = {}
        self._conn_ids: dict[Any, str] = {}
        self._counter = itertools.count(1)
        self._pending: set[asyncio.Task[None]] = set()

    # -- index ----------------------------------------------------------------------------

    def conn_id(self, key: Any) -> str | None:
        """The id of a connection (None when it has no endpoint here)."""
        return self._conn_ids.get(key)

    def has(self, group_id: str, key: Any) -> bool:
        """True when the connection ``key`` is in the group."""
        return group_id in self._owners.get(key, {})

    def connections(self) -> int:
        """How many connections have an endpoint here."""
        return len(self._owners)

    def groups_of(self, key: Any) -> int:
        """How many groups the connection ``key`` is in."""
        return len(self._owners.get(key, {}))

    def count(self, group_id: str) -> int:
        """How many local connections the group has."""
        return sum(len(links) for links in self._groups.get(group_id, {}).values())

    def add(self, group_id: str, user_id: str, endpoint: Endpoint, *, receives: bool,
            revision: int = 0) -> str:
        """Register ``endpoint`` for ``user_id`` in the group at the group's store
        ``revision``; returns the connection id."""
        key = endpoint.key
        conn = self._conn_ids.get(key)
        if conn is None:
            conn = self._conn_ids[key] = f"{self.hub_id}:{next(self._counter)}"
        link = _Link(group_id, user_id, key, conn, endpoint.deliver, receives, revision)
        self._groups.setdefault(group_id, {}).setdefault(user_id, {})[key] = link
        self._owners.setdefault(key, {})[group_id] = link
        return conn

    def discard(self, group_id: str, key: Any) -> str | None:
        """Unregister the connection ``key`` from the group; returns its user id."""
        link = self._owners.get(key, {}).get(group_id)
        if link is None:
            return None
        self._unlink(link)
        return link.user_id

    def remove_user(self, group_id: str, user_id: str, *, revision: int = 0) -> None:
        """Unregister the connections of ``user_id`` registered before ``revision``
        (0: all of them)."""
        for link in list(self._groups.get(group_id, {}).get(user_id, {}).values()):
            if link.older_than(revision):
                self._unlink(link)

    def set_receives(self, group_id: str, user_id: str, receives: bool, *,
                     revision: int = 0) -> None:
        """Start or stop deliveries to ``user_id``'s connections registered up to
        ``revision`` (0: all of them)."""
        for link in self._groups.get(group_id, {}).get(user_id, {}).values():
            if revision == 0 or link.revision <= revision:
                link.receives = receives

    def drop_group(self, group_id: str, *, revision: int = 0) -> None:
        """Unregister the group's connections registered before ``revision`` (0: all)."""
        for users in list(self._groups.get(group_id, {}).values()):
            for link in list(users.values()):
                if link.older_than(revision):
                    self._unlink(link)

    def owner_groups(self, key: Any) -> list[tuple[str, str]]:
        """``(group_id, user_id)`` of every group the connection ``key`` is in."""
        return [(gid, link.user_id) for gid, link in self._owners.get(key, {}).items()]

    def _unlink(self, link: _Link) -> None:
        users = self._groups[link.group_id]
        links = users[link.user_id]
        del links[link.key]
        if not links:
            del users[link.user_id]
            if not users:
                del self._groups[link.group_id]
        groups = self._owners[link.key]
        del groups[link.group_id]
        if not groups:
            del self._owners[link.key]
            del self._conn_ids[link.key]

    # -- fan-out --------------------------------------------------------------------------

    def deliver(self, group_id: str, response: Response, *, skip: str | None = None,
                revision: int = 0) -> int:
        """Give ``response`` to every receiving connection of the group except ``skip``
        (with ``revision``: only to connections registered before it); returns how many
        were given it."""
        users = self._groups.get(group_id)
        if not users:
            return 0
        delivered = 0
        frames: dict[Any, Any] = {}  # encode once: the frames of this batch, by kind
        for links in list(users.values()):
            for link in list(links.values()):
                if link.receives and link.conn != skip and link.older_than(revision):
                    shared = link.shared
                    if shared is None:
                        self._deliver(link.deliver, response)
                    else:
                        try:
                            shared(response, frames)
                        except Exception:
                            self.failures += 1
                            logger.exception("a relay delivery failed")
                    delivered += 1
        return delivered

    def _deliver(self, deliver: Deliver, response: Response) -> None:
        try:
            pending = deliver(response)
        except Exception:
            self.failures += 1
            logger.exception("a relay delivery failed")
            return
        if pending is None:
            return
        if isinstance(pending, Coroutine):
            # Run the first step now: a connection's sink finishes within it.
            try:
                waiting = pending.send(None)
            except StopIteration:
                return
            except Exception:
                self.failures += 1
                logger.exception("a relay delivery failed")
                return
            self._spawn(pending, _finish(_Resumed(pending, waiting)))
        else:
            self._spawn(None, _await(pending))

    def _spawn(self, started: Coroutine[Any, Any, Any] | None,
               rest: Coroutine[Any, Any, None]) -> None:
        if len(self._pending) >= self.max_pending:
            self.dropped += 1
            rest.close()
            if started is not None:
                started.close()
            return
        task = asyncio.get_running_loop().create_task(rest)
        self._pending.add(task)
        task.add_done_callback(self._delivered)

    def _delivered(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.failures += 1
            logger.error("a relay delivery failed", exc_info=task.exception())

    async def aclose(self) -> None:
        """Cancel deliveries still waiting."""
        pending = list(self._pending)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


async def _await(awaitable: Awaitable[None]) -> None:
    await awaitable
