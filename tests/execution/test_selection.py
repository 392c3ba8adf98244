"""Node selection: modes, stable hashing, round-robin, sticky placements, dynamic lists."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pytest

from genapi.errors import ConfigError, GenApiError
from genapi.execution.selection import (
    InMemoryStickyStore,
    NodeSelectionError,
    NodeSelector,
    StickyEntry,
    StickyKey,
    stable_hash,
)
from genapi.functions.config import FunConfig
from genapi.messages import Request

NODES = ["n1", "n2", "n3"]


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def req(
    request_id: str = "r1",
    *,
    service: str = "svc",
    request_type: str = "fn",
    args: dict[str, Any] | None = None,
    user_id: str | None = None,
    device_id: str | None = None,
) -> Request:
    return Request(
        request_id=request_id,
        service=service,
        request_type=request_type,
        args=args or {},
        user_id=user_id,
        device_id=device_id,
    )


def entry(store: InMemoryStickyStore, key: StickyKey) -> StickyEntry:
    found = store.get(key)
    assert found is not None
    return found


def selector(seed: int = 0, clock: FakeClock | None = None, **kw: Any) -> NodeSelector:
    return NodeSelector(rng=random.Random(seed), clock=clock or FakeClock(), **kw)


# -- every mode ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode",
    ["random", "hash", "round_robin", ("hash", "key"), ("sticky", "key"), ["hash", "key"]],
)
@pytest.mark.parametrize("nodes", [["a"], ["a", "b"], NODES, ("x", "y", "z", "w")])
def test_order_is_a_permutation_of_the_nodes(mode: Any, nodes: Sequence[str]) -> None:
    """Every mode returns each node exactly once, primary first; choose() is that primary."""
    sel = selector()
    request = req(args={"key": "v"})
    order = sel.order(mode, nodes, request)
    assert sorted(order) == sorted(nodes)
    assert sel.choose(mode, nodes, request) in nodes


def test_random_shuffles_all_nodes_with_the_injected_rng() -> None:
    """Random mode is the injected generator's shuffle: reproducible from its seed."""
    expected = list(NODES)
    random.Random(7).shuffle(expected)
    assert selector(7).order("random", NODES, req()) == expected


def test_random_spreads_primaries() -> None:
    """Random mode gives every node a turn as primary."""
    sel = selector(3)
    assert {sel.choose("random", NODES, req()) for _ in range(100)} == set(NODES)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", 3861120841110785035),
        ({"b": 1, "a": 2}, 7942335148182814945),
        ({"a": 2, "b": 1}, 7942335148182814945),
        (1, 17797172410793473910),
        ("1", 2111772349312940339),
    ],
)
def test_stable_hash_is_fixed_across_processes(value: Any, expected: int) -> None:
    """The hash is blake2b of key-sorted JSON: pinned values, key order irrelevant, 1 != "1"."""
    assert stable_hash(value) == expected


def test_stable_hash_rejects_values_json_cannot_encode() -> None:
    """A value that is not JSON raises NodeSelectionError (a GenApiError)."""
    with pytest.raises(NodeSelectionError):
        stable_hash(object())
    assert issubclass(NodeSelectionError, GenApiError)


@pytest.mark.parametrize(
    ("mode", "request_"),
    [
        ("hash", req("req-42")),
        (("hash", "session_id"), req(args={"session_id": "s-9"})),
        (("hash", "user_id"), req(args={"user_id": "u1"})),
        (("hash", "user_id"), req(user_id="u1")),
        (("hash", "device_id"), req(device_id="d7")),
        (("hash", "filter"), req(args={"filter": {"b": [1, 2], "a": None}})),
    ],
)
def test_hash_modes_are_deterministic_across_instances(mode: Any, request_: Request) -> None:
    """Hash modes pick the same primary in every selector (any seed), rest in list order."""
    orders = {tuple(selector(seed).order(mode, NODES, request_)) for seed in range(10)}
    assert len(orders) == 1
    (order,) = orders
    assert list(order[1:]) == [n for n in NODES if n != order[0]]


def test_hash_mode_uses_the_request_id() -> None:
    """"hash" indexes the node list by the request id's stable hash."""
    assert selector().choose("hash", NODES, req("req-42")) == NODES[stable_hash("req-42") % 3]


def test_hash_of_user_id_reads_the_request_field_like_the_argument() -> None:
    """("hash", "user_id") falls back to request.user_id, giving the argument's placement."""
    sel = selector()
    from_args = sel.choose(("hash", "user_id"), NODES, req(args={"user_id": "u5"}))
    assert sel.choose(("hash", "user_id"), NODES, req(user_id="u5")) == from_args


@pytest.mark.parametrize("args", [{}, {"key": None}])
def test_hash_with_missing_value_picks_at_random(args: dict[str, Any]) -> None:
    """A missing or null hash argument falls back to a random primary."""
    sel = selector(5)
    primaries = {sel.choose(("hash", "key"), NODES, req(args=args)) for _ in range(60)}
    assert primaries == set(NODES)


# -- round robin ---------------------------------------------------------------------------


def test_round_robin_cycles_per_function() -> None:
    """Round robin rotates the list; the 4th call with 3 nodes starts at the 1st node again."""
    sel = selector()
    orders = [sel.order("round_robin", NODES, req()) for _ in range(4)]
    assert orders == [
        ["n1", "n2", "n3"],
        ["n2", "n3", "n1"],
        ["n3", "n1", "n2"],
        ["n1", "n2", "n3"],
    ]


def test_round_robin_counters_are_per_service_and_request_type() -> None:
    """Calls to one function do not advance another function's counter."""
    sel = selector()
    a, b = req(request_type="a"), req(request_type="b")
    other_service = req(service="other", request_type="a")
    assert [sel.choose("round_robin", NODES, a) for _ in range(2)] == ["n1", "n2"]
    assert sel.choose("round_robin", NODES, b) == "n1"
    assert sel.choose("round_robin", NODES, other_service) == "n1"
    assert sel.choose("round_robin", NODES, a) == "n3"


def test_round_robin_single_node_and_reset() -> None:
    """A single node is always chosen without advancing; reset restarts the rotation."""
    sel = selector()
    assert sel.order("round_robin", ["only"], req()) == ["only"]
    assert sel.choose("round_robin", NODES, req()) == "n1"
    sel.reset_round_robin()
    assert sel.choose("round_robin", NODES, req()) == "n1"


# -- sticky --------------------------------------------------------------------------------


def test_sticky_keeps_a_value_on_its_node() -> None:
    """The same sticky value keeps its node across calls and selectors sharing the store."""
    store = InMemoryStickyStore()
    sel = selector(1, sticky_store=store)
    request = req(args={"room": "r1"})
    first = sel.choose(("sticky", "room"), NODES, request)
    others = {
        selector(seed, sticky_store=store).choose(("sticky", "room"), NODES, request)
        for seed in range(20)
    }
    assert others == {first}
    order = sel.order(("sticky", "room"), NODES, request)
    assert order == [first, *(n for n in NODES if n != first)]


@pytest.mark.parametrize(
    ("arg", "request_"),
    [
        ("user_id", req(args={"user_id": "u1"})),
        ("user_id", req(user_id="u1")),
        ("device_id", req(device_id="u1")),
    ],
)
def test_sticky_value_from_args_or_request_fields(arg: str, request_: Request) -> None:
    """user_id/device_id come from args first, then from the request's own fields."""
    store = InMemoryStickyStore()
    node = selector(sticky_store=store).choose(("sticky", arg), NODES, request_)
    assert entry(store, ("svc", "fn", arg, '"u1"')).node == node


def test_sticky_missing_value_is_random_and_writes_nothing() -> None:
    """Without a value sticky mode picks at random and leaves the store untouched."""
    store = InMemoryStickyStore()
    sel = selector(2, sticky_store=store)
    primaries = {sel.choose(("sticky", "room"), NODES, req()) for _ in range(60)}
    assert primaries == set(NODES)
    assert len(store) == 0


def test_sticky_entry_expires_after_the_ttl() -> None:
    """A placement is reused while younger than the TTL and re-chosen at exactly the TTL."""
    clock = FakeClock(100.0)
    store = InMemoryStickyStore()
    sel = selector(clock=clock, sticky_store=store, sticky_ttl=60.0)
    key = ("svc", "fn", "room", '"r1"')
    sel.choose(("sticky", "room"), NODES, req(args={"room": "r1"}))
    assert entry(store, key).at == 100.0
    clock.now = 159.9
    sel.choose(("sticky", "room"), NODES, req(args={"room": "r1"}))
    assert entry(store, key).at == 100.0
    clock.now = 160.0
    sel.choose(("sticky", "room"), NODES, req(args={"room": "r1"}))
    assert entry(store, key).at == 160.0


def test_sticky_rechooses_when_its_node_left() -> None:
    """A placement on a node that is no longer listed is replaced by a listed node."""
    store = InMemoryStickyStore()
    sel = selector(sticky_store=store)
    request = req(args={"room": "r1"})
    old = sel.choose(("sticky", "room"), NODES, request)
    remaining = [n for n in NODES if n != old]
    new = sel.choose(("sticky", "room"), remaining, request)
    assert new in remaining
    assert entry(store, ("svc", "fn", "room", '"r1"')).node == new
    assert sel.choose(("sticky", "room"), remaining, request) == new


def test_sticky_is_namespaced_by_function_and_argument() -> None:
    """Equal values of different functions or argument names are separate placements."""
    store = InMemoryStickyStore()
    sel = selector(sticky_store=store)
    sel.choose(("sticky", "k"), NODES, req(args={"k": "v"}))
    sel.choose(("sticky", "k"), NODES, req(request_type="other", args={"k": "v"}))
    sel.choose(("sticky", "k"), NODES, req(service="s2", args={"k": "v"}))
    sel.choose(("sticky", "j"), NODES, req(args={"j": "v"}))
    sel.choose(("sticky", "k"), NODES, req(args={"k": 1}))
    sel.choose(("sticky", "k"), NODES, req(args={"k": "1"}))
    assert len(store) == 6


def test_sticky_store_evicts_the_oldest_at_capacity() -> None:
    """A full store drops its oldest written entry; a rewrite makes an entry the newest."""
    store = InMemoryStickyStore(max_entries=2)
    a, b, c = (("s", "f", "k", v) for v in "abc")
    store.put(a, "n1", 1.0)
    store.put(b, "n1", 2.0)
    store.put(a, "n2", 3.0)
    store.put(c, "n1", 4.0)
    assert store.get(b) is None
    assert store.get(a) == ("n2", 3.0)
    assert len(store) == 2


def test_sticky_bounds_are_validated() -> None:
    """A store needs room for at least one entry and placements a positive TTL."""
    with pytest.raises(ConfigError, match="max_entries"):
        InMemoryStickyStore(max_entries=0)
    with pytest.raises(ConfigError, match="sticky_ttl"):
        selector(sticky_ttl=0)


def test_purge_sticky_drops_expired_entries_only() -> None:
    """purge_sticky removes placements at least a TTL old, keeps fresh ones, is repeatable."""
    clock = FakeClock(0.0)
    store = InMemoryStickyStore()
    sel = selector(clock=clock, sticky_store=store, sticky_ttl=10.0)
    sel.choose(("sticky", "k"), NODES, req(args={"k": "old"}))
    clock.now = 5.0
    sel.choose(("sticky", "k"), NODES, req(args={"k": "new"}))
    clock.now = 10.0
    assert sel.purge_sticky() == 1
    assert sel.purge_sticky() == 0
    assert len(store) == 1


# -- node lists ----------------------------------------------------------------------------


def test_dynamic_nodes_are_resolved_per_call() -> None:
    """A callable node list is called on every selection."""
    current = [["a", "b"], ["c"]]
    sel = selector()
    assert sel.order("round_robin", lambda: current[0], req()) == ["a", "b"]
    assert sel.order("round_robin", lambda: current[1], req()) == ["c"]


def boom() -> list[str]:
    raise RuntimeError("registry down")


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        (boom, "dynamic node resolution failed"),
        (lambda: "n1", "expected a list, got str"),
        (lambda: None, "expected a list, got NoneType"),
        (list, "no nodes available"),
        ([], "no nodes available"),
        (["n1", ""], "non-empty strings"),
        (lambda: ["n1", 3], "non-empty strings"),
        ("everywhere", "invalid nodes configuration"),
        (42, "invalid nodes configuration"),
    ],
)
def test_bad_node_lists_raise_node_selection_error(nodes: Any, message: str) -> None:
    """Failing, non-list, empty or malformed node lists become NodeSelectionError."""
    with pytest.raises(NodeSelectionError, match=message):
        selector().order("random", nodes, req())


def test_callable_exception_is_chained() -> None:
    """The callable's own exception is kept as the cause."""
    with pytest.raises(NodeSelectionError) as info:
        selector().order("random", boom, req())
    assert isinstance(info.value.__cause__, RuntimeError)


def test_duplicates_are_dropped_and_local_resolves_to_the_local_node() -> None:
    """Node lists are deduplicated in order; "local" is the selector's local node name."""
    sel = selector(local_node="gw-1")
    assert sel.order("hash", ["a", "b", "a"], req()) in (["a", "b"], ["b", "a"])
    assert sel.order("random", "local", req()) == ["gw-1"]


@pytest.mark.parametrize("mode", ["roundrobin", ("sticky", ""), ("weighted", "x"), ("hash",)])
def test_invalid_mode_raises(mode: Any) -> None:
    """An unknown mode is a NodeSelectionError, not a silent default."""
    with pytest.raises(NodeSelectionError, match="invalid choose_node_mode"):
        selector().order(mode, NODES, req())


def test_fun_config_supplies_mode_and_nodes() -> None:
    """Given a FunConfig, its mode and nodes are used unless nodes are passed explicitly."""
    config = FunConfig(
        service="svc", request_type="fn", nodes=NODES, choose_node_mode="round_robin"
    )
    sel = selector()
    assert sel.choose(config, None, req()) == "n1"
    assert sel.choose(config, ["x", "y"], req()) == "y"
    with pytest.raises(NodeSelectionError, match="nodes are required"):
        sel.order("random", None, req())


# -- availability --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("down", "expected"),
    [
        (set(), ["n1", "n2", "n3"]),
        ({"n1"}, ["n2", "n3", "n1"]),
        ({"n2"}, ["n1", "n3", "n2"]),
        ({"n1", "n3"}, ["n2", "n1", "n3"]),
        ({"n1", "n2", "n3"}, ["n1", "n2", "n3"]),
    ],
)
def test_unavailable_nodes_move_to_the_end(down: set[str], expected: list[str]) -> None:
    """Unavailable nodes keep their relative order at the end; all down keeps the order."""
    sel = selector()
    order = sel.order("round_robin", NODES, req(), available=lambda n: n not in down)
    assert order == expected


def test_unavailable_sticky_node_keeps_its_placement() -> None:
    """A sticky node that is down is tried last, and the value returns to it when it is up."""
    store = InMemoryStickyStore()
    sel = selector(sticky_store=store)
    request = req(args={"room": "r1"})
    home = sel.choose(("sticky", "room"), NODES, request)
    order = sel.order(("sticky", "room"), NODES, request, available=lambda n: n != home)
    assert order[-1] == home
    assert sel.choose(("sticky", "room"), NODES, request) == home


# -- details mutation testing found unchecked ----------------------------------------------


def test_a_rewrite_moves_an_entry_to_the_newest_below_capacity() -> None:
    """Rewriting a placement when the store is not full still makes it the newest."""
    store = InMemoryStickyStore(max_entries=3)
    a, b, c, d = (("s", "f", "k", v) for v in "abcd")
    store.put(a, "n1", 1.0)
    store.put(b, "n1", 2.0)
    store.put(a, "n2", 3.0)  # a is now newer than b
    store.put(c, "n1", 4.0)
    store.put(d, "n1", 5.0)  # full: the oldest, b, goes
    assert store.get(b) is None
    assert store.get(a) == ("n2", 3.0)


def test_purge_counts_every_expired_entry() -> None:
    """purge returns how many placements it removed."""
    store = InMemoryStickyStore()
    for i, at in enumerate((1.0, 2.0, 3.0, 9.0)):
        store.put(("s", "f", "k", str(i)), "n1", at)
    assert store.purge(3.0) == 3
    assert len(store) == 1


@pytest.mark.parametrize(("build", "message"), [
    (lambda: InMemoryStickyStore(max_entries=0),
     "invalid InMemoryStickyStore: max_entries must be >= 1"),
    (lambda: NodeSelector(sticky_ttl=0), "invalid NodeSelector: sticky_ttl must be > 0 seconds"),
])
def test_selection_settings_refusals_are_named(build: Any, message: str) -> None:
    """Bad bounds are refused with the setting's name and its rule."""
    with pytest.raises(ConfigError) as info:
        build()
    assert str(info.value) == message


def test_selection_settings_edges_are_accepted() -> None:
    """One entry and a TTL under a second are valid."""
    InMemoryStickyStore(max_entries=1)
    NodeSelector(sticky_ttl=0.5)


def test_a_selector_without_an_rng_still_chooses() -> None:
    """The default rng is a fresh Random: random mode works without one being injected."""
    order = NodeSelector().order("random", NODES, req())
    assert sorted(order) == NODES


def test_local_resolves_to_the_local_node_name() -> None:
    """``nodes="local"`` is the selector's local node: "local" unless renamed."""
    assert NodeSelector().resolve("local") == ["local"]
    assert NodeSelector(local_node="gw-1").resolve("local") == ["gw-1"]


def test_node_selection_messages() -> None:
    """What went wrong is said plainly."""
    with pytest.raises(NodeSelectionError) as empty:
        NodeSelector().resolve([])
    assert str(empty.value) == "no nodes available"
    with pytest.raises(NodeSelectionError) as no_nodes:
        NodeSelector().order("random", None, req())
    assert str(no_nodes.value) == "nodes are required when only a mode is given"
    with pytest.raises(NodeSelectionError) as unhashable:
        stable_hash(object())
    assert str(unhashable.value) == "cannot hash value of type object"


def test_hash_of_an_argument_spreads_values_over_nodes() -> None:
    """("hash", arg) depends on the value: different values land on different nodes."""
    sel = selector()
    homes = {sel.choose(("hash", "k"), NODES, req(args={"k": str(v)})) for v in range(30)}
    assert homes == set(NODES)


def test_two_nodes_with_the_first_unavailable_swap() -> None:
    """With two nodes, an unavailable first node goes last."""
    sel = selector()
    assert sel.order("round_robin", ["a", "b"], req(),
                     available=lambda n: n != "a") == ["b", "a"]


def test_choose_honours_availability() -> None:
    """choose picks the first available node of the order."""
    sel = selector()
    assert sel.choose("round_robin", ["a", "b"], req(), available=lambda n: n != "a") == "b"
