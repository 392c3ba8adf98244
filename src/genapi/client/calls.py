"""The client's calls in flight: which Response or reply ends which call, and how.

Each call is a :class:`PendingCall`, found by its request id (for ``api`` pushes) and by the
ref of its push (for the ``phx_reply``). A call awaiting one result has a future; a call
whose every Response is wanted (streams, :meth:`Client.responses`) has a queue.

Two rules make errors complete:

* the gateway pushes an error Response and then replies ``error`` with the details (every
  argument problem, a rate limit's ``retry_after_ms``, a relay ``code``): an error whose
  reply is still due waits for it, so the raised :class:`~genapi.ApiError` carries them;
* a call awaiting one result that receives a stream's ``"init"`` fails with
  :class:`~genapi.UsageError` pointing to ``Client.stream`` (the client then cancels the
  stream on the server) instead of returning ``"init"``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ApiError, CallTimeout, UsageError, error_from_wire
from ..messages import Response

__all__ = ["Calls", "PendingCall", "is_stream_init"]

#: What a call's queue receives: Responses, the error ending it, or None (no Response will
#: come: a fire-and-forget call was acknowledged).
Item = Response | BaseException | None


def _future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


def is_stream_init(response: Response) -> bool:
    """True for a stream's acknowledgement (``result: "init"``, more to come)."""
    return (response.success and response.async_ and response.has_more
            and response.result == "init")


@dataclass(eq=False)
class PendingCall:
    """A call waiting for its Responses."""

    request_id: str
    name: str  # service.request_type, for messages
    queue: asyncio.Queue[Item] | None = None
    ref: str | None = None
    done: asyncio.Future[Any] = field(default_factory=_future)
    acked: bool = False
    responded: bool = False
    failure: Response | None = None  # an error Response waiting for its reply's details
    stream_refused: bool = False


class Calls:
    """The table of calls in flight."""

    def __init__(self) -> None:
        self._by_id: dict[str, PendingCall] = {}
        self._by_ref: dict[str, PendingCall] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, call: PendingCall) -> None:
        """Track ``call`` (its ref already set)."""
        self._by_id[call.request_id] = call
        if call.ref is not None:
            self._by_ref[call.ref] = call

    def forget(self, call: PendingCall) -> None:
        """Stop tracking ``call``."""
        self._by_id.pop(call.request_id, None)
        if call.ref is not None:
            self._by_ref.pop(call.ref, None)

    def _reply_due(self, call: PendingCall) -> bool:
        return call.ref is not None and call.ref in self._by_ref

    @staticmethod
    def _fail(call: PendingCall, error: BaseException) -> None:
        if call.queue is not None:
            call.queue.put_nowait(error)
        elif not call.done.done():
            call.done.set_exception(error)

    @staticmethod
    def _error(failure: Response, details: Mapping[str, Any] | None = None) -> ApiError:
        return error_from_wire(failure.error or "", can_retry=failure.can_retry,
                               details=details)

    def on_response(self, response: Response) -> bool:
        """Route an ``api`` Response to its call; False when it answers none of them."""
        call = self._by_id.get(response.request_id)
        if call is None:
            return False
        if not response.success:
            if self._reply_due(call):
                call.failure = response  # the reply brings the details
            else:
                self._fail(call, self._error(response))
            return True
        call.responded = True
        if call.queue is not None:
            call.queue.put_nowait(response)
        elif call.done.done():
            pass
        elif is_stream_init(response) and not call.acked:
            call.stream_refused = True
            call.done.set_exception(UsageError(
                f"{call.name} is a stream function: iterate client.stream(...) instead of "
                "awaiting client.call(...)"))
        elif response.async_ and not response.has_more:
            # An async ack (a durable call's carries {"durable": "stored", …}): the final
            # Response, which has async false, comes later.
            call.acked = True
        else:
            call.done.set_result(response.result)
        return True

    def on_reply(self, ref: str, status: str, payload: Any) -> None:
        """Route a ``phx_reply`` to the call whose push it answers."""
        call = self._by_ref.pop(ref, None)
        if call is None:
            return
        failure, call.failure = call.failure, None
        if status != "ok":
            body = payload if isinstance(payload, Mapping) else {}
            details = {k: v for k, v in body.items() if k != "reason"}
            reason = str(body.get("reason", failure.error if failure else "error"))
            can_retry = failure.can_retry if failure else bool(details.get("can_retry"))
            self._fail(call, error_from_wire(reason, can_retry=can_retry, details=details))
        elif failure is not None:
            self._fail(call, self._error(failure))
        elif call.queue is not None:
            if not call.responded:
                call.queue.put_nowait(None)  # fire-and-forget: the reply is all there is
        elif not call.done.done() and not call.acked:
            call.done.set_result(None)

    def on_timeout(self, ref: str, timeout_ms: int) -> None:
        """No reply came to a push in time."""
        call = self._by_ref.pop(ref, None)
        if call is None:
            return
        failure, call.failure = call.failure, None
        if failure is not None:
            self._fail(call, self._error(failure))
        elif call.queue is None and not call.done.done():
            call.done.set_exception(CallTimeout(timeout_ms))

    def fail_all(self, error: BaseException) -> None:
        """End every call with ``error`` (the connection is gone)."""
        for call in list(self._by_id.values()):
            self._fail(call, error)
        self._by_id.clear()
        self._by_ref.clear()
