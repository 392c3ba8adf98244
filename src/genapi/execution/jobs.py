"""In-flight async and stream work, so it can be found again to cancel or stop.

Every async, fire-and-forget or stream call runs as a *job* in a worker pool. A job is
keyed by its request id and knows its *owner* (the connection that asked; any object).
``cancel`` ends a job with the terminal error ``Cancelled``; ``stop`` ends a stream
normally (a stream end). When a connection goes away its jobs are cancelled, except those
whose function config sets ``keep_running_on_disconnect``.
"""

from __future__ import annotations

import asyncio
from enum import Enum
from typing import Any

__all__ = ["Job", "JobEnd", "Jobs"]


class JobEnd(Enum):
    """Why a job was asked to end early."""

    CANCEL = "cancel"  # the client (or server) cancelled: terminal error "Cancelled"
    STOP = "stop"  # the server stopped a stream: normal stream end


class Job:
    """One running (or queued) async or stream call."""

    __slots__ = ("end", "future", "keep_running", "owner", "request_id", "started")

    def __init__(self, request_id: str, owner: Any, keep_running: bool) -> None:
        self.request_id = request_id
        self.owner = owner
        self.keep_running = keep_running
        self.future: asyncio.Future[Any] | None = None
        self.started = False
        self.end: JobEnd | None = None

    def request_end(self, how: JobEnd) -> bool:
        """Ask the job to end; False if it already finished."""
        future = self.future
        if future is None or future.done():
            return False
        self.end = how
        return future.cancel()


class Jobs:
    """The registry of jobs, by request id."""

    def __init__(self) -> None:
        self._by_id: dict[str, set[Job]] = {}
        self._by_owner: dict[Any, set[Job]] = {}

    def __len__(self) -> int:
        return sum(len(jobs) for jobs in self._by_id.values())

    def add(self, job: Job) -> None:
        """Register a job."""
        self._by_id.setdefault(job.request_id, set()).add(job)
        if job.owner is not None:
            self._by_owner.setdefault(job.owner, set()).add(job)

    def discard(self, job: Job) -> None:
        """Forget a finished job."""
        jobs = self._by_id.get(job.request_id)
        if jobs is not None:
            jobs.discard(job)
            if not jobs:
                del self._by_id[job.request_id]
        owned = self._by_owner.get(job.owner)
        if owned is not None:
            owned.discard(job)
            if not owned:
                del self._by_owner[job.owner]

    def end(self, request_id: str, how: JobEnd, owner: Any = None) -> int:
        """End the jobs with ``request_id`` (only ``owner``'s when given); how many ended."""
        jobs = [j for j in self._by_id.get(request_id, ()) if owner is None or j.owner is owner]
        return sum(1 for job in jobs if job.request_end(how))

    def cancel_owned(self, owner: Any) -> int:
        """Cancel every job of ``owner`` that does not keep running; how many ended."""
        jobs = [j for j in self._by_owner.get(owner, ()) if not j.keep_running]
        return sum(1 for job in jobs if job.request_end(JobEnd.CANCEL))
