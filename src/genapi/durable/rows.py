"""Mapping between stored rows and call values, shared by the SQL backends.

Both backends keep the same columns in the same order (:data:`COLUMNS`) and store
``args``, ``user_roles`` and ``result`` as JSON text, so one function turns a row of
either into a :class:`~genapi.durable.StoredCall`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from .backoff import Backoff, Jitter
from .calls import NewCall, StoredCall
from .states import CallState

__all__ = [
    "COLUMNS",
    "SELECT_LIST",
    "EncodedCall",
    "call_from_row",
    "encode_json",
    "new_call_columns",
    "select_list",
    "stored_from_new",
]

#: Every column of the calls table, in the order rows are read.
COLUMNS = (
    "id",
    "service",
    "request_type",
    "request_id",
    "args",
    "version",
    "user_id",
    "user_roles",
    "device_id",
    "idempotency_key",
    "max_attempts",
    "backoff_base_s",
    "backoff_max_s",
    "backoff_jitter",
    "state",
    "attempts",
    "due_at",
    "lease_owner",
    "lease_expires_at",
    "cancel_requested",
    "last_error",
    "result",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "delivered_at",
)

#: ``COLUMNS`` as a select list; a table alias is prefixed with :func:`select_list`.
SELECT_LIST = ", ".join(COLUMNS)

#: A call with its insert values (:func:`new_call_columns`), encoded before queueing.
EncodedCall = tuple[NewCall, tuple[Any, ...]]

_encoder = msgspec.json.Encoder()
_decode = msgspec.json.decode
_backoffs: dict[tuple[float, float, str], Backoff] = {}


def select_list(alias: str) -> str:
    """``COLUMNS`` qualified by a table alias (``c.id, c.service, …``)."""
    return ", ".join(f"{alias}.{name}" for name in COLUMNS)


def encode_json(value: Any) -> str:
    """JSON text of a JSON-able value (raises ``TypeError`` for anything else)."""
    try:
        return _encoder.encode(value).decode()
    except msgspec.EncodeError as exc:
        raise TypeError(f"not JSON-able: {exc}") from exc


def _backoff(base_s: float, max_s: float, jitter: str) -> Backoff:
    # A fleet uses a handful of policies: share one frozen value per policy.
    key = (base_s, max_s, jitter)
    found = _backoffs.get(key)
    if found is None:
        found = Backoff(base_s=base_s, max_s=max_s, jitter=Jitter(jitter))
        if len(_backoffs) < 1024:
            _backoffs[key] = found
    return found


def _time(value: float | None) -> float | None:
    # SQLite hands back whole-number REALs as ints; times are floats in both backends.
    return None if value is None else float(value)


def call_from_row(row: Sequence[Any]) -> StoredCall:
    """The call of a row read in :data:`COLUMNS` order."""
    result = row[21]
    return StoredCall(
        id=row[0],
        service=row[1],
        request_type=row[2],
        request_id=row[3],
        args=_decode(row[4]),
        version=row[5],
        user_id=row[6],
        user_roles=tuple(_decode(row[7])),
        device_id=row[8],
        idempotency_key=row[9],
        max_attempts=row[10],
        backoff=_backoff(row[11], row[12], row[13]),
        state=CallState(row[14]),
        attempts=row[15],
        due_at=float(row[16]),
        lease_owner=row[17],
        lease_expires_at=_time(row[18]),
        cancel_requested=bool(row[19]),
        last_error=row[20],
        result=None if result is None else _decode(result),
        created_at=float(row[22]),
        updated_at=float(row[23]),
        started_at=_time(row[24]),
        finished_at=_time(row[25]),
        delivered_at=_time(row[26]),
    )


def new_call_columns(call: NewCall) -> tuple[Any, ...]:
    """The values a new call inserts, in the order of the backends' insert statements:
    id, service, request_type, request_id, args, version, user_id, user_roles, device_id,
    idempotency_key, max_attempts, backoff_base_s, backoff_max_s, backoff_jitter, due_at
    (``None``: now)."""
    backoff = call.backoff
    return (
        call.id,
        call.service,
        call.request_type,
        call.request_id,
        encode_json(call.args),
        call.version,
        call.user_id,
        encode_json(list(call.user_roles)),
        call.device_id,
        call.idempotency_key,
        call.max_attempts,
        backoff.base_s,
        backoff.max_s,
        str(backoff.jitter),
        call.run_after,
    )


def stored_from_new(
    call: NewCall, *, created_at: float, due_at: float
) -> StoredCall:
    """The stored form of a call just inserted (saves reading the row back)."""
    return StoredCall(
        id=call.id,
        service=call.service,
        request_type=call.request_type,
        request_id=call.request_id,
        args=call.args,
        version=call.version,
        user_id=call.user_id,
        user_roles=call.user_roles,
        device_id=call.device_id,
        idempotency_key=call.idempotency_key,
        max_attempts=call.max_attempts,
        backoff=call.backoff,
        state=CallState.PENDING,
        attempts=0,
        due_at=due_at,
        lease_owner=None,
        lease_expires_at=None,
        cancel_requested=False,
        last_error=None,
        result=None,
        created_at=created_at,
        updated_at=created_at,
        started_at=None,
        finished_at=None,
        delivered_at=None,
    )
