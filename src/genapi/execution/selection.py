"""Node selection: which node runs a remote call, and in which order the others are tried.

Pure decisions over injected state: a :class:`NodeSelector` holds the round-robin counters
and the sticky store, and takes its randomness (``random.Random``) and clock from the
caller, so tests replay exactly. Modes (``FunConfig.choose_node_mode``):

* ``"random"`` — a random primary, then the other nodes shuffled.
* ``"hash"`` — the request id's stable hash picks the primary, then the rest in list order.
* ``("hash", arg)`` — the same over the argument's JSON value (``user_id``/``device_id`` fall
  back to the request's own fields); a missing value picks at random.
* ``"round_robin"`` — the node list rotated by a counter kept per ``(service, request_type)``.
* ``("sticky", arg)`` — the value keeps the node it was first given while that node is still
  listed and the mapping is younger than the TTL; a missing value picks at random and
  remembers nothing.

Hashes are blake2b over the canonical (key-sorted) JSON encoding, so every process and every
restart maps a value to the same node; Python's ``hash()`` is salted per process.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import msgspec

from ..errors import ConfigError, NodeSelectionError
from ..functions.config import FunConfig, NodeMode, Nodes
from ..messages import Request

__all__ = [
    "DEFAULT_STICKY_TTL",
    "InMemoryStickyStore",
    "NodeSelectionError",
    "NodeSelector",
    "StickyEntry",
    "StickyKey",
    "StickyStore",
    "stable_hash",
]

#: Seconds a sticky mapping lives before its value is placed again.
DEFAULT_STICKY_TTL = 3600.0
DEFAULT_STICKY_MAX_ENTRIES = 100_000

_encoder = msgspec.json.Encoder(order="sorted")
# Request fields a keyed mode may read when the argument is absent (never user_roles or ip).
_REQUEST_FIELDS = ("user_id", "device_id")


def _canonical(value: Any) -> bytes:
    try:
        return _encoder.encode(value)
    except (TypeError, msgspec.EncodeError) as exc:
        raise NodeSelectionError(f"cannot hash value of type {type(value).__name__}") from exc


def stable_hash(value: Any) -> int:
    """A 64-bit hash of ``value``'s canonical JSON, identical in every process.

    Raises :class:`NodeSelectionError` when the value cannot be encoded as JSON.
    """
    return int.from_bytes(hashlib.blake2b(_canonical(value), digest_size=8).digest(), "big")


# -- sticky store ------------------------------------------------------------------------

#: ``(service, request_type, arg name, canonical JSON of the value)``.
StickyKey = tuple[str, str, str, str]


class StickyEntry(NamedTuple):
    """A remembered placement: the node and when (clock seconds) it was chosen."""

    node: str
    at: float


class StickyStore(Protocol):
    """Where sticky placements live. :class:`InMemoryStickyStore` is the default."""

    def get(self, key: StickyKey) -> StickyEntry | None:
        """The entry for ``key``, or None."""

    def put(self, key: StickyKey, node: str, at: float) -> None:
        """Remember ``node`` for ``key``, chosen at ``at``."""

    def purge(self, cutoff: float) -> int:
        """Drop entries chosen at or before ``cutoff``; return how many."""


class InMemoryStickyStore:
    """A bounded in-process sticky store; when full, the oldest written entry is evicted.

    Entries are kept in write order, so with a monotonic clock the front is the oldest and
    both eviction and :meth:`purge` are O(removed).
    """

    def __init__(self, max_entries: int = DEFAULT_STICKY_MAX_ENTRIES) -> None:
        if max_entries < 1:
            raise ConfigError("InMemoryStickyStore", ["max_entries must be >= 1"])
        self.max_entries = max_entries
        self._entries: OrderedDict[StickyKey, StickyEntry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: StickyKey) -> StickyEntry | None:
        """The entry for ``key``, or None."""
        return self._entries.get(key)

    def put(self, key: StickyKey, node: str, at: float) -> None:
        """Remember ``node`` for ``key``; a rewrite counts as the newest entry."""
        entries = self._entries
        entries.pop(key, None)
        while len(entries) >= self.max_entries:
            entries.popitem(last=False)
        entries[key] = StickyEntry(node, at)

    def purge(self, cutoff: float) -> int:
        """Drop entries chosen at or before ``cutoff``; return how many."""
        entries = self._entries
        removed = 0
        while entries:
            key, entry = next(iter(entries.items()))
            if entry.at > cutoff:
                break
            del entries[key]
            removed += 1
        return removed

    def clear(self) -> None:
        """Forget every placement."""
        self._entries.clear()


# -- selector -----------------------------------------------------------------------------


def _parse_mode(mode: Any) -> tuple[str, str | None]:
    if mode in ("random", "hash", "round_robin"):
        return mode, None
    if (
        isinstance(mode, tuple | list)
        and len(mode) == 2
        and mode[0] in ("hash", "sticky")
        and isinstance(mode[1], str)
        and mode[1]
    ):
        return mode[0], mode[1]
    raise NodeSelectionError(f"invalid choose_node_mode: {mode!r}")


def _lookup(request: Request, name: str) -> Any:
    value = request.args.get(name)
    if value is None and name in _REQUEST_FIELDS:
        value = getattr(request, name)
    return value


class NodeSelector:
    """Chooses nodes for remote calls.

    ``rng`` and ``clock`` (seconds, monotonic) are injected for determinism; ``local_node``
    is the name ``nodes="local"`` resolves to. One selector is shared by a gateway so that
    round-robin counters and sticky placements are shared too.
    """

    def __init__(
        self,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        sticky_store: StickyStore | None = None,
        sticky_ttl: float = DEFAULT_STICKY_TTL,
        local_node: str = "local",
    ) -> None:
        if sticky_ttl <= 0:
            raise ConfigError("NodeSelector", ["sticky_ttl must be > 0 seconds"])
        self.rng = rng if rng is not None else random.Random()
        self.clock = clock
        self.sticky_store: StickyStore = (
            sticky_store if sticky_store is not None else InMemoryStickyStore()
        )
        self.sticky_ttl = sticky_ttl
        self.local_node = local_node
        self._counters: dict[tuple[str, str], int] = {}

    def resolve(self, nodes: Nodes) -> list[str]:
        """The node names of ``nodes`` (calling it when dynamic), deduplicated, in order.

        Raises :class:`NodeSelectionError` for an empty result, a callable that raises or
        returns something other than a list of non-empty strings.
        """
        if isinstance(nodes, str):
            if nodes == "local":
                return [self.local_node]
            raise NodeSelectionError(f"invalid nodes configuration: {nodes!r}")
        if callable(nodes):
            try:
                nodes = nodes()
            except Exception as exc:
                raise NodeSelectionError(f"dynamic node resolution failed: {exc!r}") from exc
            if not isinstance(nodes, list | tuple):
                raise NodeSelectionError(
                    f"dynamic node resolution failed: expected a list, got {type(nodes).__name__}"
                )
        elif not isinstance(nodes, list | tuple):
            raise NodeSelectionError(f"invalid nodes configuration: {nodes!r}")
        if not all(isinstance(n, str) and n for n in nodes):
            raise NodeSelectionError(f"node names must be non-empty strings: {nodes!r}")
        if not nodes:
            raise NodeSelectionError("no nodes available")
        return list(dict.fromkeys(nodes))

    def order(
        self,
        config_or_mode: FunConfig | NodeMode,
        nodes: Nodes | None,
        request: Request,
        *,
        available: Callable[[str], bool] | None = None,
    ) -> list[str]:
        """Every node to try for ``request``: the primary first, then the fallbacks.

        ``nodes`` may be None when a :class:`~genapi.FunConfig` is given (its ``nodes`` are
        used). ``available`` (for example a circuit breaker check) moves unavailable nodes
        to the end, keeping relative order; when none is available the order is unchanged.
        """
        if isinstance(config_or_mode, FunConfig):
            mode_spec: NodeMode = config_or_mode.choose_node_mode
            if nodes is None:
                nodes = config_or_mode.nodes
        else:
            mode_spec = config_or_mode
        if nodes is None:
            raise NodeSelectionError("nodes are required when only a mode is given")
        mode, arg = _parse_mode(mode_spec)
        resolved = self.resolve(nodes)
        ordered = self._order(mode, arg, resolved, request)
        if available is None or len(ordered) == 1:
            return ordered
        flags = [available(n) for n in ordered]
        if all(flags) or not any(flags):
            return ordered
        return [n for n, ok in zip(ordered, flags, strict=True) if ok] + [
            n for n, ok in zip(ordered, flags, strict=True) if not ok
        ]

    def choose(
        self,
        config_or_mode: FunConfig | NodeMode,
        nodes: Nodes | None,
        request: Request,
        *,
        available: Callable[[str], bool] | None = None,
    ) -> str:
        """The primary node for ``request`` (the first of :meth:`order`)."""
        return self.order(config_or_mode, nodes, request, available=available)[0]

    def reset_round_robin(self) -> None:
        """Restart every round-robin counter."""
        self._counters.clear()

    def purge_sticky(self) -> int:
        """Drop sticky placements older than the TTL; return how many (run periodically)."""
        return self.sticky_store.purge(self.clock() - self.sticky_ttl)

    # -- modes ------------------------------------------------------------------------

    def _order(self, mode: str, arg: str | None, nodes: list[str], request: Request) -> list[str]:
        if len(nodes) == 1:
            return nodes
        if mode == "round_robin":
            return self._round_robin(nodes, request)
        if mode == "random":
            self.rng.shuffle(nodes)
            return nodes
        if arg is None:
            primary = nodes[stable_hash(request.request_id) % len(nodes)]
        else:
            value = _lookup(request, arg)
            if value is None:
                primary = self.rng.choice(nodes)
            elif mode == "hash":
                primary = nodes[stable_hash(value) % len(nodes)]
            else:
                primary = self._sticky(request, arg, value, nodes)
        return [primary, *(n for n in nodes if n != primary)]

    def _round_robin(self, nodes: list[str], request: Request) -> list[str]:
        key = (request.service, request.request_type)
        count = self._counters.get(key, 0)
        self._counters[key] = count + 1
        i = count % len(nodes)
        return nodes[i:] + nodes[:i]

    def _sticky(self, request: Request, arg: str, value: Any, nodes: list[str]) -> str:
        # JSON keeps "1" and 1 apart; the service and function namespace the value.
        key: StickyKey = (request.service, request.request_type, arg, _canonical(value).decode())
        now = self.clock()
        entry = self.sticky_store.get(key)
        if entry is not None and entry.node in nodes and now - entry.at < self.sticky_ttl:
            return entry.node
        node = self.rng.choice(nodes)
        self.sticky_store.put(key, node, now)
        return node
