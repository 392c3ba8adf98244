"""Relay fan-out between gateways: one JetStream stream orders, keeps and delivers events.

:class:`NatsRelayBus` implements :class:`genapi.relay.RelayBus`. Every relay event goes
into the stream ``<prefix>_relay`` — messages on ``<prefix>.relay.<group>.m``, membership
events on ``<prefix>.relay.<group>.e`` — and each gateway reads the stream through one
ordered consumer, delivering to its own members. One stream gives one order: a member
accepted before a message was sent receives the message on every gateway.

Offsets are stream sequence numbers: they only increase (also across a group's deletion
and re-creation) and they skip the numbers other groups took. Each message names the
previous message of its group in the header ``Genapi-Prev``; the publish is
compare-and-set on that number (``Nats-Expected-Last-Subject-Sequence``), so the chain
has no holes, and recovery knows a member missed nothing when the first message it is
given follows its offset. The stream keeps ``history_size`` messages per group
(``max_msgs_per_subject``) and nothing is aged out by the server — the age limit is
applied when reading — so the last message of a live group, the base of the chain, is
always there. A deleted group's subjects are purged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
import nats.js.errors as js_errors
from nats.js.api import DeliverPolicy, DiscardPolicy, Header, StorageType, StreamConfig

from ..transport.nats.link import Link, Msg
from .bus import GroupDeleted, MemberEvent, Subscribers, decode_event, encode_event
from .groups import RelayError
from .history import History, Recovery, RelayMessage
from .nats_store import group_key, relay_unavailable, wrong_last_sequence

if TYPE_CHECKING:
    from nats.js.client import JetStreamContext

__all__ = ["NatsRelayBus"]

logger = logging.getLogger("genapi.relay")

PREV_HEADER = "Genapi-Prev"
_ATTEMPTS = 32  # compare-and-set rounds before answering "busy"
_MAX_CACHED_GROUPS = 10_000


class NatsRelayBus(Subscribers):
    """The relay bus of the gateways sharing ``link``'s NATS server (see the module doc).

    ``history_size`` messages are kept per group, none older than ``history_age``
    seconds is given back (None: no age limit); ``storage`` is ``"file"`` or
    ``"memory"``; a deleted group's last event is purged after ``purge_delay`` seconds
    (gateways still reading get it first).
    """

    def __init__(
        self,
        link: Link,
        *,
        prefix: str = "genapi",
        history_size: int = 100,
        history_age: float | None = 300.0,
        storage: str = "file",
        purge_delay: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        History(max_messages=history_size, max_age=history_age, clock=clock)  # validates
        self.link = link
        self.prefix = prefix
        self.stream = prefix.replace(".", "_") + "_relay"
        self.history_size = history_size
        self.history_age = history_age
        self.storage = StorageType(storage)
        self.purge_delay = purge_delay
        self._clock = clock
        self._last: dict[str, int] = {}  # group → sequence of its last message (CAS base)
        self._delivered = 0  # the highest stream sequence handed to the receivers
        self._progress = asyncio.Event()
        self._sub: Any = None
        self._starting = asyncio.Lock()
        self._purges: dict[asyncio.Task[None], tuple[str, int]] = {}

    # -- RelayBus -------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the stream if needed and start reading it (idempotent)."""
        if self._sub is not None:
            return
        async with self._starting:
            if self._sub is not None:
                return
            try:
                await self.link.ready(timeout=5)
                js = self._jetstream()
                await self._ensure_stream(js)
                self._sub = await js.subscribe(
                    f"{self.prefix}.relay.*.*", stream=self.stream, ordered_consumer=True,
                    deliver_policy=DeliverPolicy.NEW, cb=self._on_message)
                info = await self._sub.consumer_info()
                self._delivered = max(self._delivered, info.delivered.stream_seq)
            except Exception as exc:
                raise relay_unavailable(exc) from exc

    async def publish_message(self, message: RelayMessage) -> RelayMessage:
        """Append ``message`` to its group's chain; returns it with its offset."""
        await self.start()
        group_id = message.group_id
        subject = self._subject(group_id, "m")
        data = encode_event(message)
        js = self._jetstream()
        for _ in range(_ATTEMPTS):
            last = self._last.get(group_id)
            try:
                if last is None:
                    last = await self._last_sequence(subject)
                ack = await js.publish(subject, data, headers={
                    Header.EXPECTED_LAST_SUBJECT_SEQUENCE.value: str(last),
                    PREV_HEADER: str(last)})
            except Exception as exc:
                if wrong_last_sequence(exc):  # another gateway sent first
                    self._last.pop(group_id, None)
                    continue
                raise relay_unavailable(exc) from exc
            self._remember(group_id, ack.seq)
            return msgspec.structs.replace(message, offset=ack.seq)
        raise RelayError("busy", "Relay busy: please retry", can_retry=True)

    async def publish(self, event: MemberEvent | GroupDeleted) -> None:
        """Deliver a membership event; a :class:`GroupDeleted` also ends the history."""
        await self.start()
        group_id = event.group_id
        events = self._subject(group_id, "e")
        js = self._jetstream()
        try:
            ack = await js.publish(events, encode_event(event))
            if isinstance(event, GroupDeleted):
                self._last.pop(group_id, None)
                await js.purge_stream(self.stream, subject=self._subject(group_id, "m"))
                await js.purge_stream(self.stream, subject=events, seq=ack.seq)
                self._purge_later(events, ack.seq + 1)
        except Exception as exc:
            raise relay_unavailable(exc) from exc

    async def since(self, group_id: str, offset: int | None) -> Recovery:
        """The group's kept messages after ``offset``; ``recovered`` is False when some
        after it are no longer kept (by count or age) or ``offset`` is unknown here."""
        await self.start()
        subject = self._subject(group_id, "m")
        try:
            last = await self._last_sequence(subject)
            if offset is None or offset >= last:
                return Recovery([], offset is None or offset == last, last)
            return await self._read_after(subject, offset, last)
        except RelayError:
            raise
        except Exception as exc:
            raise relay_unavailable(exc) from exc

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait until this gateway has delivered everything the stream holds so far."""
        await self.start()
        async with asyncio.timeout(timeout):
            while True:
                info = await self._sub.consumer_info()
                if info.num_pending == 0 and self._delivered >= info.delivered.stream_seq:
                    return
                self._progress.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._progress.wait(), 0.05)

    async def aclose(self) -> None:
        """Stop reading; purge what deleted groups left, now."""
        sub, self._sub = self._sub, None
        if sub is not None:
            await self.link.unsubscribe(sub)
        purges = list(self._purges.items())
        self._purges.clear()
        for task, (subject, seq) in purges:
            task.cancel()
            await self._purge(subject, seq, timeout=1.0)
        self._receivers.clear()

    # -- internals ------------------------------------------------------------------------

    async def _purge(self, subject: str, seq: int, timeout: float | None = None) -> None:
        """Drop a deleted group's messages up to ``seq``; on failure they stay until the
        stream's age limit removes them (no reader sees them: the group is gone)."""
        try:
            await asyncio.wait_for(
                self._jetstream().purge_stream(self.stream, subject=subject, seq=seq), timeout)
        except Exception as exc:
            logger.info("could not purge %s up to %d (kept until the age limit): %r",
                        subject, seq, exc)

    def _subject(self, group_id: str, kind: str) -> str:
        return f"{self.prefix}.relay.{group_key(group_id)}.{kind}"

    def _jetstream(self) -> JetStreamContext:
        return self.link.client().jetstream()

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        config = StreamConfig(
            name=self.stream, subjects=[f"{self.prefix}.relay.*.*"], storage=self.storage,
            max_msgs_per_subject=max(1, self.history_size), discard=DiscardPolicy.OLD)
        try:
            info = await js.stream_info(self.stream)
        except js_errors.NotFoundError:
            with contextlib.suppress(js_errors.BadRequestError):  # created by another gateway
                await js.add_stream(config)
            return
        kept = info.config.max_msgs_per_subject
        if kept != config.max_msgs_per_subject:
            logger.warning("relay stream %s keeps %s messages per group, not %s (another "
                           "gateway created it); using it as it is",
                           self.stream, kept, config.max_msgs_per_subject)

    async def _last_sequence(self, subject: str) -> int:
        try:
            raw = await self._jetstream().get_last_msg(self.stream, subject)
        except js_errors.NotFoundError:
            return 0
        return int(raw.seq or 0)

    async def _read_after(self, subject: str, offset: int, last: int) -> Recovery:
        js = self._jetstream()
        horizon = None if self.history_age is None else self._clock() - self.history_age
        messages: list[RelayMessage] = []
        covered: bool | None = None
        aged = False
        sequence = offset + 1
        for _ in range(max(1, self.history_size) + 1):  # bounded: the stream keeps no more
            try:
                raw = await js.get_msg(self.stream, seq=sequence, subject=subject, next=True)
            except js_errors.NotFoundError:
                break
            seq = int(raw.seq or 0)
            if covered is None:
                prev = (raw.headers or {}).get(PREV_HEADER)
                covered = prev is not None and prev.isdigit() and int(prev) <= offset
            event = decode_event(raw.data or b"")
            if isinstance(event, RelayMessage):
                if horizon is not None and event.sent_at < horizon:
                    aged = True
                else:
                    messages.append(msgspec.structs.replace(event, offset=seq))
            if seq >= last:
                break
            sequence = seq + 1
        if self.history_size == 0:
            return Recovery([], False, last)
        return Recovery(messages, bool(covered) and not aged, last)

    async def _on_message(self, msg: Msg) -> None:
        seq = int(msg.metadata.sequence.stream)
        self._delivered = max(self._delivered, seq)
        self._progress.set()
        try:
            event = decode_event(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            logger.warning("ignoring a malformed relay event on %s", msg.subject)
            return
        if isinstance(event, RelayMessage):
            event = msgspec.structs.replace(event, offset=seq)
            self._remember(event.group_id, seq)
        self._dispatch(event)

    def _remember(self, group_id: str, seq: int) -> None:
        if group_id not in self._last and len(self._last) >= _MAX_CACHED_GROUPS:
            self._last.clear()  # a cache: a miss costs one read
        if seq > self._last.get(group_id, 0):
            self._last[group_id] = seq

    def _purge_later(self, subject: str, seq: int) -> None:
        async def purge() -> None:
            await asyncio.sleep(self.purge_delay)
            await self._purge(subject, seq)

        task = asyncio.get_running_loop().create_task(purge())
        self._purges[task] = (subject, seq)
        task.add_done_callback(lambda t: self._purges.pop(t, None))
