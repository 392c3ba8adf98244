"""What callers and operators see of a stored call: the ack, the terminal Response, views.

Pure functions over :class:`~genapi.durable.StoredCall` values (no I/O).

* The **ack** of a durable call is ``success: true, async: true`` like any async ack, with
  ``result`` ``{"durable": "stored", "call_id": …, "state": "pending", "attempts": 0,
  "duplicate": false}`` — sent only once the call is committed. A repeated submission
  (same idempotency key) gets ``duplicate: true`` and the stored call's current state.
* The **terminal Response** is the one an async call ends with: ``Response.sync(request_id,
  result)`` when it succeeded; ``success: false`` with the error when it died
  (``can_retry`` false: it was retried already) or ``"Cancelled"``.
"""

from __future__ import annotations

from typing import Any, Final

from ..errors import Cancelled, InternalError
from ..messages import Response
from .calls import StoredCall
from .states import CallState

__all__ = [
    "INTERNAL_PREFIX",
    "MAX_ERROR_CHARS",
    "ack",
    "call_view",
    "client_error",
    "result_view",
    "terminal_response",
]

#: How a stored error of an unexpected exception starts (the detail follows for
#: operators; callers see only this part unless the gateway shows details).
INTERNAL_PREFIX: Final = InternalError.default_message
#: The longest error text stored with a call.
MAX_ERROR_CHARS: Final = 2000


def ack(call: StoredCall, request_id: str, *, duplicate: bool) -> Response:
    """The acknowledgement of a stored durable call, submitted as ``request_id``."""
    return Response(
        request_id=request_id, success=True, async_=True,
        result={"durable": "stored", "call_id": call.id, "state": call.state.value,
                "attempts": call.attempts, "duplicate": duplicate},
    )


def client_error(error: str | None, *, detail: bool = False) -> str:
    """The error a caller sees for a stored error text: unexpected exceptions are masked
    as ``Internal Server Error`` unless ``detail``."""
    if error is None:
        return INTERNAL_PREFIX
    if error.startswith(INTERNAL_PREFIX) and not detail:
        return INTERNAL_PREFIX
    return error


def terminal_response(call: StoredCall, *, detail: bool = False) -> Response:
    """The final Response of a finished call (its request id, the async call's final
    shape)."""
    if call.state is CallState.SUCCEEDED:
        return Response.sync(call.request_id, call.result)
    if call.state is CallState.CANCELLED:
        return Response.fail(call.request_id, Cancelled.default_message)
    return Response.fail(call.request_id, client_error(call.last_error, detail=detail))


def result_view(call: StoredCall, *, detail: bool = False) -> dict[str, Any]:
    """A call as its caller sees it (``durable.get_result``)."""
    error = None
    if call.state is CallState.CANCELLED:
        error = Cancelled.default_message
    elif call.state is CallState.DEAD:
        error = client_error(call.last_error, detail=detail)
    return {"found": True, "call_id": call.id, "request_id": call.request_id,
            "service": call.service, "request_type": call.request_type,
            "state": call.state.value, "attempts": call.attempts,
            "max_attempts": call.max_attempts, "result": call.result, "error": error,
            "created_at": call.created_at, "finished_at": call.finished_at}


def call_view(call: StoredCall) -> dict[str, Any]:
    """A call as operators see it (the admin API, ``genapi jobs``): every field."""
    return {"id": call.id, "service": call.service, "request_type": call.request_type,
            "request_id": call.request_id, "version": call.version, "args": call.args,
            "user_id": call.user_id, "user_roles": list(call.user_roles),
            "device_id": call.device_id, "idempotency_key": call.idempotency_key,
            "topic": call.topic, "state": call.state.value, "attempts": call.attempts,
            "max_attempts": call.max_attempts,
            "backoff": {"base_s": call.backoff.base_s, "max_s": call.backoff.max_s,
                        "jitter": call.backoff.jitter.value},
            "retrying": call.retrying, "due_at": call.due_at, "lease_owner": call.lease_owner,
            "lease_expires_at": call.lease_expires_at,
            "cancel_requested": call.cancel_requested, "last_error": call.last_error,
            "result": call.result, "created_at": call.created_at,
            "updated_at": call.updated_at, "started_at": call.started_at,
            "finished_at": call.finished_at, "delivered_at": call.delivered_at}
