"""Getting terminal responses to their callers: live, on join, by sweep; then marked delivered.

A durable call's terminal Response is pushed (event ``api``) to:

1. the channel the call came in on, when it is still open on this gateway (*live*), with
   the request id it came with (a repeated submission's, when it was repeated);
2. otherwise the caller's (``user_id``'s) channels on this gateway: those on the call's
   topic, or else one channel per connection, with the call's (first) request id;

when the call finishes here, when the caller joins a topic (*join*: everything waiting
for them), or when a periodic *sweep* finds calls finished elsewhere (another gateway
sharing the Postgres store, an operator's cancel) for users connected here. Each pushed
call is then marked delivered (in batches) so it is not pushed again; a call pushed in the
last minute is not pushed again by this gateway meanwhile (the mark may still be on its
way). Anonymous callers are reached only live. A caller never connected again can still
ask with ``durable.get_result``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Protocol, TypeGuard

from ..errors import StoreUnavailable
from ..messages import Response
from ..telemetry.events import Telemetry
from . import events
from .calls import StoredCall
from .results import terminal_response
from .store import DurableStore

__all__ = ["Delivery", "LiveSink", "is_live"]

logger = logging.getLogger("genapi.durable")

_RECENT_S = 60.0
_MAX_RECENT = 100_000
_MAX_WATCHED = 100_000
_MAX_WATCHERS = 8  # submissions of one call waiting on live channels
_MARK_BATCH = 500
_MAX_MARKS = 100_000
_SWEEP_USERS = 500


class LiveSink(Protocol):
    """A channel of a live connection (the gateway's ``TopicSink``): where it pushes, and
    whether it is closing."""

    topic: str

    @property
    def closing(self) -> bool: ...

    def __call__(self, response: Response) -> Awaitable[None]: ...


_LIVE_TYPES: dict[type, bool] = {}


def is_live(sink: Any) -> TypeGuard[LiveSink]:
    """Whether ``sink`` is a live channel (has ``topic`` and ``closing``): checked once per
    class (a runtime protocol check costs microseconds per call)."""
    kind = type(sink)
    live = _LIVE_TYPES.get(kind)
    if live is None:
        live = _LIVE_TYPES[kind] = (hasattr(kind, "closing") and hasattr(sink, "topic")
                                    and callable(sink))
    return live


class Delivery:
    """Pushes terminal responses to the callers connected to this gateway (module docs).

    ``silent(call)`` says a finished call has no caller to answer (fire-and-forget
    functions, webhook jobs): it is marked delivered without a push. ``detail()`` says
    whether callers see internal error details.
    """

    def __init__(self, store: DurableStore, telemetry: Telemetry, *,
                 silent: Callable[[StoredCall], bool],
                 detail: Callable[[], bool] = lambda: False,
                 sweep_limit: int = 1000) -> None:
        self.store = store
        self.telemetry = telemetry
        self._silent = silent
        self._detail = detail
        self._sweep_limit = sweep_limit
        self._by_user: dict[str, list[LiveSink]] = {}
        self._user_of: dict[Any, str] = {}
        self._watched: collections.OrderedDict[str, list[tuple[LiveSink, str]]] = (
            collections.OrderedDict())
        self._recent: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._to_mark: list[str] = []
        self._marks_waiting = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- who is here --------------------------------------------------------------------

    @property
    def users(self) -> list[str]:
        """The users with open channels on this gateway."""
        return list(self._by_user)

    def joined(self, user_id: str | None, sink: Any) -> None:
        """A connection of ``user_id`` joined a topic (``sink`` pushes on it): remember it
        and push what waits for the user."""
        if self.remember(user_id, sink) and user_id is not None:
            self.spawn(self.deliver_waiting([user_id], "join"))

    def remember(self, user_id: str | None, sink: Any) -> bool:
        """Note that ``user_id`` listens on ``sink`` (no push now); False when it cannot
        be reached that way (anonymous, not a live channel)."""
        if user_id is None or not is_live(sink):
            return False
        sinks = self._by_user.setdefault(user_id, [])
        if sink not in sinks:
            sinks.append(sink)
            self._user_of[sink] = user_id
        return True

    def owner_closed(self, owner: Any) -> None:
        """A channel (or connection) closed: forget it."""
        user = self._user_of.pop(owner, None)
        if user is None:
            return
        sinks = self._by_user.get(user)
        if sinks is not None:
            if owner in sinks:
                sinks.remove(owner)
            if not sinks:
                del self._by_user[user]

    def watch(self, call_id: str, sink: Any, request_id: str) -> None:
        """Push ``call_id``'s terminal to ``sink`` (the channel it came in on), under
        ``request_id`` (the submission's), if the channel still lives then."""
        if not is_live(sink):
            return
        watchers = self._watched.setdefault(call_id, [])
        if (sink, request_id) not in watchers:
            watchers.append((sink, request_id))
            del watchers[:-_MAX_WATCHERS]
        self._watched.move_to_end(call_id)
        while len(self._watched) > _MAX_WATCHED:
            self._watched.popitem(last=False)

    # -- pushing ------------------------------------------------------------------------

    async def finished(self, call: StoredCall) -> None:
        """``call`` just reached its terminal state on this gateway: push it if its caller
        is here, else leave it for a join, a sweep or ``get_result``."""
        watchers = [(sink, rid) for sink, rid in self._watched.pop(call.id, ())
                    if not sink.closing]
        if self._silent(call):
            self._mark(call.id)
            return
        if call.id in self._recent:  # a sweep or a join was quicker
            return
        if watchers:  # each submission still connected gets its terminal
            for sink, request_id in watchers:
                await self._push(call, [sink], "live", request_id=request_id, force=True)
            return
        targets = self._targets(call)
        if targets:
            await self._push(call, targets, "live")

    async def duplicate(self, call: StoredCall, sink: Any, request_id: str) -> None:
        """A finished call was submitted again (as ``request_id``): push its terminal on
        ``sink`` (after the ack), even if it was delivered before."""
        if is_live(sink) and not self._silent(call):
            await self._push(call, [sink], "duplicate", force=True, request_id=request_id)

    async def deliver_waiting(self, users: Sequence[str], how: str) -> int:
        """Push the finished, undelivered calls of ``users`` to their channels here."""
        try:
            calls = await self.store.undelivered_for(users, limit=self._sweep_limit)
        except StoreUnavailable as exc:
            logger.warning("durable results for %d user(s) not looked up: %s", len(users), exc)
            return 0
        pushed = 0
        for call in calls:
            if self._silent(call):
                self._mark(call.id)
                continue
            targets = self._targets(call)
            if targets and await self._push(call, targets, how):
                pushed += 1
        return pushed

    async def sweep(self) -> int:
        """Push calls finished elsewhere to the users connected here (a chunk of users at a
        time); how many were pushed."""
        users = self.users
        pushed = 0
        for start in range(0, len(users), _SWEEP_USERS):
            pushed += await self.deliver_waiting(users[start:start + _SWEEP_USERS], "sweep")
        return pushed

    def fetched(self, call_id: str) -> None:
        """The caller fetched ``call_id``'s result itself: mark it delivered, push it no
        more."""
        self._recent[call_id] = time.monotonic()
        self._recent.move_to_end(call_id)
        self._mark(call_id)

    def forget(self, call_id: str) -> None:
        """``call_id`` will run again (an operator retried it): its next terminal is new."""
        self._recent.pop(call_id, None)

    def _targets(self, call: StoredCall) -> list[LiveSink]:
        if call.user_id is None:
            return []
        sinks = [s for s in self._by_user.get(call.user_id, ()) if not s.closing]
        on_topic = [s for s in sinks if s.topic == call.topic]
        if on_topic:
            return on_topic
        first: dict[Any, LiveSink] = {}
        for sink in sinks:  # one channel per connection, the first it joined
            first.setdefault(getattr(sink, "connection", sink), sink)
        return list(first.values())

    async def _push(self, call: StoredCall, targets: Sequence[LiveSink], how: str, *,
                    force: bool = False, request_id: str | None = None) -> bool:
        now = time.monotonic()
        recent = self._recent
        while recent and (len(recent) > _MAX_RECENT
                          or next(iter(recent.values())) < now - _RECENT_S):
            recent.popitem(last=False)
        if not force and call.id in recent:
            return False
        recent[call.id] = now  # before any await: a concurrent sweep sees it
        recent.move_to_end(call.id)
        response = terminal_response(call, detail=self._detail())
        if request_id is not None:
            response.request_id = request_id
        for sink in targets:
            try:
                await sink(response)
            except Exception:
                logger.exception("durable result %s could not be pushed", call.id)
        self._mark(call.id)
        events.emit(self.telemetry, events.DELIVERED, {"count": 1}, {"how": how})
        return True

    # -- marking ------------------------------------------------------------------------

    def _mark(self, call_id: str) -> None:
        marks = self._to_mark
        marks.append(call_id)
        if len(marks) > _MAX_MARKS:  # the store is down for long: forget the oldest (they
            del marks[: len(marks) - _MAX_MARKS]  # may be pushed again, never lost)
        self._marks_waiting.set()

    async def run_marker(self) -> None:
        """Mark pushed calls delivered, in batches, until cancelled."""
        while True:
            await self._marks_waiting.wait()
            await self.flush_marks()

    async def flush_marks(self) -> None:
        """Mark what was pushed so far (kept for the next try when the store fails)."""
        self._marks_waiting.clear()
        while self._to_mark:
            batch, self._to_mark = self._to_mark[:_MARK_BATCH], self._to_mark[_MARK_BATCH:]
            try:
                await self.store.mark_delivered(batch)
            except StoreUnavailable as exc:
                logger.warning("%d delivered result(s) not marked yet: %s", len(batch), exc)
                self._to_mark[:0] = batch
                await asyncio.sleep(1.0)
                self._marks_waiting.set()
                return

    # -- tasks --------------------------------------------------------------------------

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` as a task owned here (cancelled by :meth:`aclose`)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Cancel the pushes in progress; mark what was pushed."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._to_mark:
            await self.flush_marks()
