"""Which Response or reply ends which call: details, stream refusals, fire-and-forget."""

from __future__ import annotations

import asyncio

import pytest

from genapi import ArgumentError, CallTimeout, RateLimited, Response, UsageError
from genapi.client.calls import Calls, PendingCall


def pending(queue: bool = False, ref: str = "7") -> tuple[Calls, PendingCall]:
    calls = Calls()
    call = PendingCall("r1", "svc.fn", queue=asyncio.Queue() if queue else None, ref=ref)
    calls.add(call)
    return calls, call


async def test_an_error_waits_for_its_reply_s_details() -> None:
    """The error Response comes first; the reply's details complete the raised error."""
    calls, call = pending()
    assert calls.on_response(Response.fail("r1", "Missing required argument: a"))
    assert not call.done.done()
    errors = [{"path": ["a"], "message": "Missing required argument: a"}]
    calls.on_reply("7", "error", {"reason": "Missing required argument: a", "errors": errors})
    with pytest.raises(ArgumentError) as info:
        await call.done
    assert info.value.details == {"errors": errors}


async def test_can_retry_comes_from_the_response_and_details_from_the_reply() -> None:
    """A rate limit keeps its can_retry and retry_after_ms."""
    calls, call = pending()
    calls.on_response(Response.fail("r1", "Rate limit exceeded. Please retry after 2 seconds.",
                                    can_retry=True))
    calls.on_reply("7", "error", {"reason": "Rate limit exceeded. Please retry after 2 "
                                            "seconds.", "retry_after_ms": 1500})
    with pytest.raises(RateLimited) as info:
        await call.done
    assert (info.value.can_retry, info.value.retry_after_ms) == (True, 1500)


async def test_an_error_after_the_reply_fails_at_once() -> None:
    """An async call's failed final Response (its reply came long ago) ends it at once."""
    calls, call = pending()
    calls.on_response(Response.async_ack("r1"))
    calls.on_reply("7", "ok", {"request_type": "fn"})
    calls.on_response(Response.fail("r1", "boom"))
    with pytest.raises(Exception, match="boom"):
        await call.done


async def test_a_stream_init_refuses_a_result_call() -> None:
    """Awaiting one result of a stream function points to Client.stream."""
    calls, call = pending()
    calls.on_response(Response.stream_init("r1"))
    with pytest.raises(UsageError, match=r"svc\.fn is a stream function: iterate "
                                         r"client\.stream\(\.\.\.\)"):
        await call.done
    assert call.stream_refused


async def test_fire_and_forget_ends_with_the_ok_reply() -> None:
    """No Response, an ok reply: the result is None; a queued call gets its end marker."""
    calls, call = pending()
    calls.on_reply("7", "ok", {})
    assert await call.done is None
    calls, queued = pending(queue=True)
    calls.on_reply("7", "ok", {})
    assert queued.queue is not None and await queued.queue.get() is None


async def test_a_missing_reply_times_out_unless_an_error_waits() -> None:
    """No reply in time: CallTimeout, or the error that was waiting for it."""
    calls, call = pending()
    calls.on_timeout("7", 250)
    with pytest.raises(CallTimeout):
        await call.done
    calls, waiting = pending()
    calls.on_response(Response.fail("r1", "Invalid argument a: expected num"))
    calls.on_timeout("7", 250)
    with pytest.raises(ArgumentError):
        await waiting.done


async def test_responses_of_no_call_are_pushes() -> None:
    """A Response for an unknown request id is left to the push handlers."""
    calls, _ = pending()
    assert calls.on_response(Response.sync("other", 1)) is False
