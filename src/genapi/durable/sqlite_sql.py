"""The SQLite schema, its migrations and the statements of :class:`SqliteStore`.

The same table, columns and indexes as the Postgres backend (see
:mod:`genapi.durable.postgres_sql`), in SQLite's types: JSON as ``TEXT``, booleans as
``INTEGER``, times as ``REAL`` Unix seconds. Statements use ``?`` placeholders.
"""

from __future__ import annotations

from .rows import SELECT_LIST

__all__ = [
    "CLAIM",
    "COMPLETE",
    "FAIL",
    "INSERT",
    "INSERT_PLAIN",
    "MIGRATIONS",
    "RENEW",
    "VERSION_TABLE",
]

VERSION_TABLE = """
    CREATE TABLE IF NOT EXISTS durable_schema_version (
        version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)
"""

#: One entry per schema version, each a list of statements.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE durable_calls (
            id               TEXT PRIMARY KEY,
            service          TEXT NOT NULL,
            request_type     TEXT NOT NULL,
            request_id       TEXT NOT NULL,
            args             TEXT NOT NULL,
            version          TEXT,
            user_id          TEXT,
            user_roles       TEXT NOT NULL,
            device_id        TEXT,
            idempotency_key  TEXT,
            max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
            backoff_base_s   REAL NOT NULL,
            backoff_max_s    REAL NOT NULL,
            backoff_jitter   TEXT NOT NULL,
            state            TEXT NOT NULL
                CHECK (state IN ('pending', 'running', 'succeeded', 'dead', 'cancelled')),
            attempts         INTEGER NOT NULL DEFAULT 0,
            due_at           REAL NOT NULL,
            lease_owner      TEXT,
            lease_expires_at REAL,
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            last_error       TEXT,
            result           TEXT,
            created_at       REAL NOT NULL,
            updated_at       REAL NOT NULL,
            started_at       REAL,
            finished_at      REAL,
            delivered_at     REAL
        )
        """,
        """
        CREATE UNIQUE INDEX durable_calls_key ON durable_calls (idempotency_key)
            WHERE idempotency_key IS NOT NULL
        """,
        """
        CREATE INDEX durable_calls_ready ON durable_calls (due_at)
            WHERE state IN ('pending', 'running')
        """,
        """
        CREATE INDEX durable_calls_undelivered ON durable_calls (user_id)
            WHERE finished_at IS NOT NULL AND delivered_at IS NULL
        """,
        """
        CREATE INDEX durable_calls_finished ON durable_calls (finished_at)
            WHERE finished_at IS NOT NULL
        """,
    ),
)

# The 15 values of rows.new_call_columns (due_at last, NULL: now), then now.
INSERT = """
    INSERT INTO durable_calls (id, service, request_type, request_id, args, version, user_id,
        user_roles, device_id, idempotency_key, max_attempts, backoff_base_s, backoff_max_s,
        backoff_jitter, due_at, state, attempts, cancel_requested, created_at, updated_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, coalesce(?15, ?16),
        'pending', 0, 0, ?16, ?16)
    ON CONFLICT DO NOTHING
    RETURNING id, created_at, due_at
"""

# INSERT without RETURNING, for executemany (which cannot return rows).
INSERT_PLAIN = INSERT.replace("RETURNING id, created_at, due_at", "")

# ?1 worker, ?2 limit, ?3 lease seconds, ?4 now. Same moves as the Postgres claim; the
# caller holds the write lock (BEGIN IMMEDIATE), so no other writer can take these rows.
CLAIM = f"""
    UPDATE durable_calls SET
        state = p.next,
        attempts = attempts + (p.next = 'running'),
        lease_owner = CASE WHEN p.next = 'running' THEN ?1 ELSE lease_owner END,
        lease_expires_at = CASE WHEN p.next = 'running' THEN ?4 + ?3 END,
        due_at = CASE WHEN p.next = 'running' THEN ?4 + ?3 ELSE due_at END,
        started_at = CASE WHEN p.next = 'running' THEN ?4 ELSE started_at END,
        finished_at = CASE WHEN p.next = 'running' THEN NULL ELSE ?4 END,
        last_error = CASE WHEN p.next = 'dead'
            THEN 'lease expired on the last attempt (worker lost)' ELSE last_error END,
        updated_at = ?4
    FROM (
        SELECT id AS pid,
            CASE WHEN cancel_requested THEN 'cancelled'
                 WHEN state = 'running' AND attempts >= max_attempts THEN 'dead'
                 ELSE 'running' END AS next
        FROM durable_calls
        WHERE state IN ('pending', 'running') AND due_at <= ?4
        ORDER BY due_at
        LIMIT ?2
    ) AS p
    WHERE durable_calls.id = p.pid
    RETURNING {SELECT_LIST}
"""

# ?1 id, ?2 worker, ?3 attempt, ?4 result JSON, ?5 now.
COMPLETE = """
    UPDATE durable_calls SET state = 'succeeded', result = ?4, lease_expires_at = NULL,
        finished_at = ?5, updated_at = ?5
    WHERE id = ?1 AND lease_owner = ?2 AND attempts = ?3 AND state = 'running'
"""

# ?1 id, ?2 worker, ?3 attempt, ?4 error, ?5 retry_at (NULL: dead), ?6 now.
FAIL = """
    UPDATE durable_calls SET
        state = CASE WHEN cancel_requested THEN 'cancelled'
                     WHEN ?5 IS NULL THEN 'dead' ELSE 'pending' END,
        due_at = coalesce(?5, due_at),
        last_error = ?4, lease_expires_at = NULL,
        finished_at = CASE WHEN cancel_requested OR ?5 IS NULL THEN ?6 END,
        updated_at = ?6
    WHERE id = ?1 AND lease_owner = ?2 AND attempts = ?3 AND state = 'running'
"""

# ?1 id, ?2 worker, ?3 attempt, ?4 lease seconds, ?5 now.
RENEW = """
    UPDATE durable_calls SET lease_expires_at = ?5 + ?4, due_at = ?5 + ?4, updated_at = ?5
    WHERE id = ?1 AND lease_owner = ?2 AND attempts = ?3 AND state = 'running'
    RETURNING id, cancel_requested
"""

GET = f"SELECT {SELECT_LIST} FROM durable_calls WHERE id = ?"
GET_BY_KEY = f"SELECT {SELECT_LIST} FROM durable_calls WHERE idempotency_key = ?"
EXISTS = "SELECT 1 FROM durable_calls WHERE id = ?"

# Operator moves: ?1 id, ?2 now.
TO_PENDING = f"""
    UPDATE durable_calls SET state = 'pending', attempts = 0, due_at = ?2, result = NULL,
        cancel_requested = 0, lease_expires_at = NULL, finished_at = NULL,
        delivered_at = NULL, updated_at = ?2
    WHERE id = ?1
    RETURNING {SELECT_LIST}
"""
TO_CANCELLED = f"""
    UPDATE durable_calls SET state = 'cancelled', finished_at = ?2, updated_at = ?2
    WHERE id = ?1
    RETURNING {SELECT_LIST}
"""
REQUEST_CANCEL = f"""
    UPDATE durable_calls SET cancel_requested = 1, updated_at = ?2
    WHERE id = ?1
    RETURNING {SELECT_LIST}
"""

PURGE = """
    DELETE FROM durable_calls
    WHERE finished_at IS NOT NULL AND finished_at < ?
        AND state IN ('succeeded', 'dead', 'cancelled')
"""
COUNT_STATES = """
    SELECT state, count(*), sum(attempts > 0) FROM durable_calls GROUP BY state
"""
OLDEST_DUE = """
    SELECT ?1 - min(due_at) FROM durable_calls WHERE state = 'pending' AND due_at <= ?1
"""
UNDELIVERED = f"""
    SELECT {SELECT_LIST} FROM durable_calls
    WHERE user_id = ? AND finished_at IS NOT NULL AND delivered_at IS NULL
    ORDER BY id LIMIT ?
"""
MARK_DELIVERED = """
    UPDATE durable_calls SET delivered_at = ?2
    WHERE id = ?1 AND finished_at IS NOT NULL AND delivered_at IS NULL
"""


def listing(*, state: bool, service: bool, user_id: bool, before: bool) -> str:
    """A page of calls by id, newest first; parameters in the order of the flags, then
    the limit."""
    conditions = [
        clause
        for clause, wanted in (
            ("state = ?", state),
            ("service = ?", service),
            ("user_id = ?", user_id),
            ("id < ?", before),
        )
        if wanted
    ]
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"SELECT {SELECT_LIST} FROM durable_calls {where} ORDER BY id DESC LIMIT ?"
