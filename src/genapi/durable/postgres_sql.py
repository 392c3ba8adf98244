"""The Postgres schema, its migrations and the statements of :class:`PostgresStore`.

Driver-neutral text with ``$n`` placeholders; the tables live in one schema (default
``genapi``) so several applications or test runs can share a database.

Tables::

    durable_schema_version (version int PK, applied_at timestamptz)
    durable_calls          one row per call; columns as in genapi.durable.rows.COLUMNS

Indexes on ``durable_calls`` (each one a cost on every write, so only what a hot path or
an unbounded scan needs):

* ``id`` primary key; ids sort by creation time (``new_call_id``), so listing pages by id;
* ``durable_calls_key``: unique ``idempotency_key`` where not null: deduplication;
* ``durable_calls_ready``: ``due_at`` where state is pending or running: the claim scan
  (``due_at`` is the run time of a pending call and the lease expiry of a running one,
  so one ordered index serves new work, retries and expired leases);
* ``durable_calls_undelivered``: ``user_id`` where finished and not delivered: results
  waiting for their caller;
* ``durable_calls_finished``: ``finished_at`` where finished: purge.

All times are Unix seconds (``float8``). ``NOW`` below is the caller's clock when a
``now`` is passed, else the database server's clock, so hosts sharing one database agree
on lease expiry without synchronised clocks.
"""

from __future__ import annotations

import re

__all__ = ["MIGRATIONS", "Statements", "check_schema_name"]

# At most 48 characters: the NOTIFY channel "genapi_durable_<schema>" must stay under
# Postgres's 64-byte identifier limit.
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,47}")

#: One entry per schema version: the statements that bring version n-1 to n.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE {s}.durable_calls (
        id               text COLLATE "C" PRIMARY KEY,
        service          text NOT NULL,
        request_type     text NOT NULL,
        request_id       text NOT NULL,
        args             jsonb NOT NULL,
        version          text,
        user_id          text,
        user_roles       jsonb NOT NULL,
        device_id        text,
        idempotency_key  text,
        max_attempts     integer NOT NULL CHECK (max_attempts >= 1),
        backoff_base_s   float8 NOT NULL,
        backoff_max_s    float8 NOT NULL,
        backoff_jitter   text NOT NULL,
        state            text NOT NULL
            CHECK (state IN ('pending', 'running', 'succeeded', 'dead', 'cancelled')),
        attempts         integer NOT NULL DEFAULT 0,
        due_at           float8 NOT NULL,
        lease_owner      text,
        lease_expires_at float8,
        cancel_requested boolean NOT NULL DEFAULT false,
        last_error       text,
        result           jsonb,
        created_at       float8 NOT NULL,
        updated_at       float8 NOT NULL,
        started_at       float8,
        finished_at      float8,
        delivered_at     float8
    );
    CREATE UNIQUE INDEX durable_calls_key ON {s}.durable_calls (idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE INDEX durable_calls_ready ON {s}.durable_calls (due_at)
        WHERE state IN ('pending', 'running');
    CREATE INDEX durable_calls_undelivered ON {s}.durable_calls (user_id)
        WHERE finished_at IS NOT NULL AND delivered_at IS NULL;
    CREATE INDEX durable_calls_finished ON {s}.durable_calls (finished_at)
        WHERE finished_at IS NOT NULL;
    """,
)


def check_schema_name(schema: str) -> str:
    """``schema`` if it is a plain lower-case identifier, else ``ValueError``."""
    if not _IDENTIFIER.fullmatch(schema):
        raise ValueError(f"schema must match {_IDENTIFIER.pattern} (got {schema!r})")
    return schema


def _now(n: int) -> str:
    return f"coalesce(${n}::float8, extract(epoch from now()))"


_COLS = (
    "id, service, request_type, request_id, args, version, user_id, user_roles, device_id,"
    " idempotency_key, max_attempts, backoff_base_s, backoff_max_s, backoff_jitter, state,"
    " attempts, due_at, lease_owner, lease_expires_at, cancel_requested, last_error, result,"
    " created_at, updated_at, started_at, finished_at, delivered_at"
)


def _qualified(alias: str) -> str:
    return ", ".join(f"{alias}.{name.strip()}" for name in _COLS.split(","))


class Statements:
    """Every statement of the store, with the schema name filled in once."""

    def __init__(self, schema: str, channel: str) -> None:
        s = check_schema_name(schema)
        t = f"{s}.durable_calls"
        self.schema = s
        self.channel = channel
        self.create_schema = f"CREATE SCHEMA IF NOT EXISTS {s}"
        self.create_version_table = (
            f"CREATE TABLE IF NOT EXISTS {s}.durable_schema_version ("
            " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        # Serialises concurrent migrate() calls from several processes.
        self.migration_lock = "SELECT pg_advisory_xact_lock(hashtext($1))"
        self.current_version = f"SELECT coalesce(max(version), 0) FROM {s}.durable_schema_version"
        self.record_version = f"INSERT INTO {s}.durable_schema_version (version) VALUES ($1)"
        self.migrations = tuple(m.format(s=s) for m in MIGRATIONS)

        # $1..$15: arrays of the columns of rows.new_call_columns; $16: now; $17: channel.
        # ON CONFLICT DO NOTHING covers the idempotency key (also between two rows of the
        # same batch) and the id. Rows go in key order, so two batches racing over the same
        # keys wait for each other in one order and cannot deadlock. The notification is
        # sent once per batch, at commit, and only when a row was inserted (the scalar
        # subquery runs once, if at all).
        self.enqueue = f"""
            WITH ins AS (
                INSERT INTO {t} (id, service, request_type, request_id, args, version,
                    user_id, user_roles, device_id, idempotency_key, max_attempts,
                    backoff_base_s, backoff_max_s, backoff_jitter, state, attempts, due_at,
                    cancel_requested, created_at, updated_at)
                SELECT u.id, u.service, u.request_type, u.request_id, u.args::jsonb,
                    u.version, u.user_id, u.user_roles::jsonb, u.device_id, u.key,
                    u.max_attempts, u.base_s, u.max_s, u.jitter, 'pending', 0,
                    coalesce(u.due_at, n.now), false, n.now, n.now
                FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                            $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                            $11::int[], $12::float8[], $13::float8[], $14::text[],
                            $15::float8[])
                     AS u(id, service, request_type, request_id, args, version, user_id,
                          user_roles, device_id, key, max_attempts, base_s, max_s, jitter,
                          due_at),
                     (SELECT {_now(16)} AS now) AS n
                ORDER BY u.key, u.id
                ON CONFLICT DO NOTHING
                RETURNING id, created_at, due_at
            )
            SELECT ins.id, ins.created_at, ins.due_at,
                   (SELECT pg_notify($17, '')) IS NULL AS notified
            FROM ins
        """
        self.get_by_ids = f"SELECT {_COLS} FROM {t} WHERE id = ANY($1::text[])"
        self.get_by_keys = f"SELECT {_COLS} FROM {t} WHERE idempotency_key = ANY($1::text[])"
        self.get = f"SELECT {_COLS} FROM {t} WHERE id = $1"
        self.get_for_update = f"SELECT {_COLS} FROM {t} WHERE id = $1 FOR UPDATE"
        self.get_by_key = f"SELECT {_COLS} FROM {t} WHERE idempotency_key = $1"

        # $1 worker, $2 limit, $3 lease seconds, $4 now. A cancel-requested call whose
        # lease expired ends cancelled; a running call whose lease expired on its last
        # attempt ends dead: both are returned with their terminal state and filtered out
        # by the store, the rest become running under the new lease.
        self.claim = f"""
            WITH n AS (SELECT {_now(4)} AS now),
            picked AS MATERIALIZED (
                SELECT c.id,
                    CASE WHEN c.cancel_requested THEN 'cancelled'
                         WHEN c.state = 'running' AND c.attempts >= c.max_attempts THEN 'dead'
                         ELSE 'running' END AS next
                FROM {t} c
                WHERE c.state IN ('pending', 'running') AND c.due_at <= (SELECT now FROM n)
                ORDER BY c.due_at
                LIMIT $2
                FOR UPDATE OF c SKIP LOCKED
            )
            UPDATE {t} c SET
                state = p.next,
                attempts = c.attempts + (p.next = 'running')::int,
                lease_owner = CASE WHEN p.next = 'running' THEN $1 ELSE c.lease_owner END,
                lease_expires_at = CASE WHEN p.next = 'running' THEN n.now + $3 END,
                due_at = CASE WHEN p.next = 'running' THEN n.now + $3 ELSE c.due_at END,
                started_at = CASE WHEN p.next = 'running' THEN n.now ELSE c.started_at END,
                finished_at = CASE WHEN p.next = 'running' THEN NULL ELSE n.now END,
                last_error = CASE WHEN p.next = 'dead'
                    THEN 'lease expired on the last attempt (worker lost)'
                    ELSE c.last_error END,
                updated_at = n.now
            FROM picked p, n
            WHERE c.id = p.id
            RETURNING {_qualified('c')}
        """
        # $1 ids, $2 workers, $3 attempts, $4 results (JSON text), $5 now.
        self.complete = f"""
            UPDATE {t} c SET state = 'succeeded', result = u.result::jsonb,
                lease_expires_at = NULL, finished_at = n.now, updated_at = n.now
            FROM unnest($1::text[], $2::text[], $3::int[], $4::text[])
                     AS u(id, worker, attempt, result),
                 (SELECT {_now(5)} AS now) AS n
            WHERE c.id = u.id AND c.lease_owner = u.worker AND c.attempts = u.attempt
                AND c.state = 'running'
            RETURNING c.id
        """
        # $1 id, $2 worker, $3 attempt, $4 error, $5 retry_at (NULL: dead), $6 now.
        self.fail = f"""
            UPDATE {t} c SET
                state = CASE WHEN c.cancel_requested THEN 'cancelled'
                             WHEN $5::float8 IS NULL THEN 'dead' ELSE 'pending' END,
                due_at = coalesce($5::float8, c.due_at),
                last_error = $4, lease_expires_at = NULL,
                finished_at = CASE WHEN c.cancel_requested OR $5::float8 IS NULL
                                   THEN n.now END,
                updated_at = n.now
            FROM (SELECT {_now(6)} AS now) AS n
            WHERE c.id = $1 AND c.lease_owner = $2 AND c.attempts = $3
                AND c.state = 'running'
            RETURNING c.id
        """
        self.exists = f"SELECT id FROM {t} WHERE id = ANY($1::text[])"
        # $1 ids, $2 workers, $3 attempts, $4 lease seconds, $5 now.
        self.renew = f"""
            UPDATE {t} c SET lease_expires_at = n.now + $4, due_at = n.now + $4,
                updated_at = n.now
            FROM unnest($1::text[], $2::text[], $3::int[]) AS u(id, worker, attempt),
                 (SELECT {_now(5)} AS now) AS n
            WHERE c.id = u.id AND c.lease_owner = u.worker AND c.attempts = u.attempt
                AND c.state = 'running'
            RETURNING c.id, c.cancel_requested
        """
        # Operator moves ($1 id, $2 now), applied after get_for_update and the decision.
        self.to_pending = f"""
            UPDATE {t} SET state = 'pending', attempts = 0, due_at = {_now(2)},
                result = NULL, cancel_requested = false, lease_expires_at = NULL,
                finished_at = NULL, delivered_at = NULL, updated_at = {_now(2)}
            WHERE id = $1
            RETURNING {_COLS}
        """
        self.to_cancelled = f"""
            UPDATE {t} SET state = 'cancelled', finished_at = {_now(2)},
                updated_at = {_now(2)}
            WHERE id = $1
            RETURNING {_COLS}
        """
        self.request_cancel = f"""
            UPDATE {t} SET cancel_requested = true, updated_at = {_now(2)}
            WHERE id = $1
            RETURNING {_COLS}
        """
        self.notify = "SELECT pg_notify($1, '')"
        self.purge = f"""
            DELETE FROM {t}
            WHERE finished_at IS NOT NULL AND finished_at < $1
                AND state IN ('succeeded', 'dead', 'cancelled')
        """
        self.count_states = f"""
            SELECT state, count(*), count(*) FILTER (WHERE attempts > 0)
            FROM {t} GROUP BY state
        """
        self.oldest_due = f"""
            SELECT {_now(1)} - min(due_at) FROM {t}
            WHERE state = 'pending' AND due_at <= {_now(1)}
        """
        # $1 user id, $2 limit.
        self.undelivered = f"""
            SELECT {_COLS} FROM {t}
            WHERE user_id = $1 AND finished_at IS NOT NULL AND delivered_at IS NULL
            ORDER BY id LIMIT $2
        """
        self.mark_delivered = f"""
            UPDATE {t} SET delivered_at = {_now(2)}
            WHERE id = ANY($1::text[]) AND finished_at IS NOT NULL AND delivered_at IS NULL
        """

    def listing(self, *, state: bool, service: bool, user_id: bool, after: bool) -> str:
        """A page of calls by id, newest first; filters present take ``$1…`` in order,
        then the cursor (the last id of the previous page) and the limit."""
        conditions: list[str] = []
        n = 0
        for column, wanted in (
            ("state", state), ("service", service), ("user_id", user_id), ("id", after)
        ):
            if wanted:
                n += 1
                op = "<" if column == "id" else "="
                conditions.append(f"{column} {op} ${n}")
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        return (
            f"SELECT {_COLS} FROM {self.schema}.durable_calls {where}"
            f" ORDER BY id DESC LIMIT ${n + 1}"
        )
