"""The in-process bus: numbering, history, synchronous fan-out, event encoding."""

from __future__ import annotations

from genapi.relay import GroupDeleted, LocalBus, MemberEvent, RelayMessage
from genapi.relay.bus import RelayEvent, decode_event, encode_event
from genapi.relay.groups import MemberStatus, Role


def message(group_id: str = "g", text: str = "hi") -> RelayMessage:
    """An unnumbered message."""
    return RelayMessage(group_id=group_id, from_user_id="u", message=text,
                        timestamp="2025-01-01T00:00:00.000000Z", sent_at=0.0)


async def test_messages_are_numbered_per_group_and_delivered_before_publish_returns() -> None:
    """Every subscriber has the message when publish_message returns; offsets are per group."""
    bus = LocalBus(clock=lambda: 0.0)
    seen: list[RelayEvent] = []
    bus.subscribe(seen.append)
    first = await bus.publish_message(message("a"))
    assert seen == [first]
    second = await bus.publish_message(message("a"))
    other = await bus.publish_message(message("b"))
    assert (first.offset, second.offset, other.offset) == (1, 2, 1)


async def test_since_reads_the_history() -> None:
    """since() answers from the group's history; unknown groups have offset 0."""
    bus = LocalBus(history_size=2, clock=lambda: 0.0)
    for n in range(3):
        await bus.publish_message(message(text=f"m{n}"))
    recovery = await bus.since("g", 0)
    assert [m.message for m in recovery.messages] == ["m1", "m2"]
    assert recovery.recovered is False
    assert (await bus.since("nope", 0)).recovered is True
    assert (await bus.since("nope", 3)).recovered is False
    assert (await bus.since("nope", None)).offset == 0


async def test_deleting_a_group_ends_its_history() -> None:
    """After GroupDeleted the group's offsets start again at 1."""
    bus = LocalBus(clock=lambda: 0.0)
    await bus.publish_message(message())
    await bus.publish(GroupDeleted(group_id="g"))
    assert (await bus.publish_message(message())).offset == 1


async def test_a_failing_receiver_does_not_starve_the_others() -> None:
    """An exception in one subscriber is logged; the next still receives."""
    bus = LocalBus()
    seen: list[RelayEvent] = []

    def broken(event: RelayEvent) -> None:
        raise RuntimeError("boom")

    bus.subscribe(broken)
    bus.subscribe(seen.append)
    await bus.publish(MemberEvent(group_id="g", user_id="u", status=MemberStatus.ACTIVE))
    assert len(seen) == 1


async def test_unsubscribe() -> None:
    """An unsubscribed receiver gets nothing more (unsubscribing twice is harmless)."""
    bus = LocalBus()
    seen: list[RelayEvent] = []
    unsubscribe = bus.subscribe(seen.append)
    unsubscribe()
    unsubscribe()
    await bus.publish(GroupDeleted(group_id="g"))
    assert seen == []


def test_events_encode_with_a_type_tag() -> None:
    """Every event survives a JSON round trip, tagged by type (what a networked bus sends)."""
    events: list[RelayEvent] = [
        message(),
        MemberEvent(group_id="g", user_id="u", status=None, role=Role.ADMIN, notice="leave",
                    origin="hub:1"),
        GroupDeleted(group_id="g"),
    ]
    for event in events:
        data = encode_event(event)
        assert decode_event(data) == event
    assert b'"type":"member"' in encode_event(events[1])
