"""Relay groups shared between gateways: a NATS key-value bucket with compare-and-set.

:class:`NatsGroupStore` implements :class:`genapi.relay.GroupStore` over a JetStream
key-value bucket (``<prefix>_relay_groups`` by default, one revision per key). The bucket's
revisions are the compare-and-set tokens: a write names the revision it read
(``Nats-Expected-Last-Subject-Sequence``) and the server refuses it when another gateway
wrote in between, which the hub answers by reading again.

Keys are the group ids in URL-safe base64 (a group id may hold any character; a key may
not). A deleted group's delete marker is purged at once, so the bucket holds live groups
only and its message count is the group count that ``max_groups`` bounds.
"""

from __future__ import annotations

import asyncio
import base64
from typing import TYPE_CHECKING, Any

import nats.js.errors as js_errors
from nats.js.api import Header, KeyValueConfig, StorageType

from ..errors import ConfigError
from ..transport.nats.link import Link
from .groups import Group, RelayError, decode_group, encode_group
from .store import StoreConflict, StoreFull

if TYPE_CHECKING:
    from nats.js.client import JetStreamContext
    from nats.js.kv import KeyValue

__all__ = ["NatsGroupStore", "group_key", "key_group", "relay_unavailable", "wrong_last_sequence"]

_WRONG_LAST_SEQUENCE = (10071, 10164)  # JetStream's "wrong last sequence" error codes
_CREATE_ATTEMPTS = 3


def group_key(group_id: str) -> str:
    """A group id as a key and subject token: URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(group_id.encode()).rstrip(b"=").decode("ascii")


def key_group(key: str) -> str:
    """The group id of :func:`group_key`'s ``key``."""
    return base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)).decode()


def relay_unavailable(exc: BaseException) -> RelayError:
    """What a client is told when NATS cannot be reached (it may retry)."""
    return RelayError("unavailable", f"Relay unavailable: please retry ({type(exc).__name__})",
                      can_retry=True)


def wrong_last_sequence(exc: BaseException) -> bool:
    """True for JetStream's refusal of a compare-and-set write (another writer won)."""
    return isinstance(exc, js_errors.KeyWrongLastSequenceError) or (
        isinstance(exc, js_errors.APIError) and exc.err_code in _WRONG_LAST_SEQUENCE)


class NatsGroupStore:
    """Group state in a JetStream key-value bucket, shared by every gateway on ``link``.

    ``storage`` is ``"file"`` (survives a server restart) or ``"memory"``; the bucket is
    created on first use when it does not exist.
    """

    def __init__(
        self,
        link: Link,
        *,
        bucket: str = "genapi_relay_groups",
        max_groups: int = 10_000,
        storage: str = "file",
    ) -> None:
        if max_groups < 1:
            raise ConfigError("max_groups must be at least 1")
        self.link = link
        self.bucket = bucket
        self.max_groups = max_groups
        self.storage = StorageType(storage)
        self._kv: KeyValue | None = None
        self._js: JetStreamContext | None = None
        self._opening = asyncio.Lock()

    async def get(self, group_id: str) -> tuple[Group | None, int]:
        """The group and its revision; ``(None, 0)`` when absent."""
        kv = await self._bucket()
        try:
            entry = await kv.get(group_key(group_id))
        except js_errors.KeyNotFoundError:
            return None, 0
        except Exception as exc:
            raise relay_unavailable(exc) from exc
        if entry.value is None:
            return None, 0
        return decode_group(entry.value), entry.revision or 0

    async def put(self, group_id: str, group: Group, expected_revision: int) -> int:
        """Write ``group`` if the bucket holds ``expected_revision`` (0: absent)."""
        kv = await self._bucket()
        key, data = group_key(group_id), encode_group(group)
        try:
            if expected_revision:
                return await kv.update(key, data, last=expected_revision)
            await self._check_room(kv)
            return await self._create(kv, key, data)
        except (StoreConflict, StoreFull):
            raise
        except Exception as exc:
            if wrong_last_sequence(exc):
                raise StoreConflict(f"group {group_id!r} changed") from None
            raise relay_unavailable(exc) from exc

    async def delete(self, group_id: str, expected_revision: int) -> None:
        """Remove the group if the bucket holds ``expected_revision``."""
        await self._bucket()  # the marker goes through the bucket's stream directly
        subject = f"$KV.{self.bucket}.{group_key(group_id)}"
        try:
            # A delete marker written with compare-and-set, then purged up to itself: a
            # group created again meanwhile (after the marker) is left alone.
            ack = await self._jetstream().publish(subject, headers={
                "KV-Operation": "DEL",
                Header.EXPECTED_LAST_SUBJECT_SEQUENCE.value: str(expected_revision)})
            await self._jetstream().purge_stream(f"KV_{self.bucket}", subject=subject,
                                                 seq=ack.seq + 1)
        except Exception as exc:
            if wrong_last_sequence(exc):
                raise StoreConflict(f"group {group_id!r} changed") from None
            raise relay_unavailable(exc) from exc

    async def group_ids(self, limit: int = 1000) -> list[str]:
        """Up to ``limit`` group ids (a group being deleted right now may still be listed).

        Read from the stream's subjects in one request: nats-py's ``KeyValue.keys()`` can
        answer "no keys" when the server pushed the keys before the client counted any.
        """
        await self._bucket()
        prefix = f"$KV.{self.bucket}."
        try:
            info = await self._jetstream().stream_info(f"KV_{self.bucket}",
                                                       subjects_filter=f"{prefix}>")
        except Exception as exc:
            raise relay_unavailable(exc) from exc
        subjects = list(info.state.subjects or ())[:limit]
        return [key_group(subject[len(prefix):]) for subject in subjects]

    async def _create(self, kv: KeyValue, key: str, data: bytes) -> int:
        for _ in range(_CREATE_ATTEMPTS):
            try:
                return await kv.create(key, data)
            except Exception as exc:
                if not wrong_last_sequence(exc):
                    raise
            # The key exists — or its delete marker was purged between the two steps of
            # nats-py's create. Only an existing group is a conflict.
            try:
                await kv.get(key)
            except js_errors.KeyNotFoundError:
                continue
            raise StoreConflict("group exists")
        raise StoreConflict("group creation raced")

    async def _check_room(self, kv: KeyValue) -> None:
        status = await kv.status()
        if status.values >= self.max_groups:
            raise StoreFull(f"the store holds {self.max_groups} groups already")

    def _jetstream(self) -> JetStreamContext:
        if self._js is None:
            self._js = self.link.client().jetstream()
        return self._js

    async def _bucket(self) -> KeyValue:
        if self._kv is not None:
            return self._kv
        async with self._opening:
            if self._kv is None:
                try:
                    self._kv = await self._open()
                except Exception as exc:
                    raise relay_unavailable(exc) from exc
        return self._kv

    async def _open(self) -> KeyValue:
        await self.link.ready(timeout=5)
        js = self._jetstream()
        try:
            return await js.key_value(self.bucket)
        except js_errors.BucketNotFoundError:
            pass
        # direct gets: the value comes back as raw bytes, not base64 inside JSON
        config: Any = KeyValueConfig(bucket=self.bucket, history=1, storage=self.storage,
                                     direct=True)
        try:
            return await js.create_key_value(config)
        except js_errors.APIError:  # another gateway created it first
            return await js.key_value(self.bucket)
