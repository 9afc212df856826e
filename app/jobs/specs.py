"""Job kinds as typed specs: handler, queue, attempts, time limit, mode and who may see them.

A domain declares its kinds in `app/<domain>/jobs.py` as module-level `JobSpec`s; the registry
finds them there. Those modules stay cheap to import (the web process imports them to enqueue):
heavy libraries are imported inside the handlers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from app.auth.models import Role
from app.jobs.queues import QUEUES

if TYPE_CHECKING:
    from app.jobs.context import JobContext
    from app.jobs.models import Job

Progress = Callable[[float], None]
# transactional: (session of the job's one transaction, the job row, progress) -> result
TransactionalHandler = Callable[[Session, "Job", Progress], dict[str, Any]]
# external: (the job's context) -> result
ExternalHandler = Callable[["JobContext"], dict[str, Any]]
QueueResolver = Callable[[Mapping[str, Any]], str]


class Mode(StrEnum):
    # The handler runs inside one transaction that also marks the job succeeded: all or nothing.
    # For work of seconds to minutes that writes only to the database (imports).
    transactional = "transactional"
    # No transaction is held while the handler runs; it gets a JobContext and writes its effects
    # in short fenced transactions, checkpointing as it goes. For long work (exports, judging,
    # training) and anything that writes files or calls out to models.
    external = "external"


@dataclass(frozen=True, slots=True)
class JobSpec:
    kind: str
    mode: Mode
    handler: TransactionalHandler | ExternalHandler
    # A queue name, or a function of the job's params that picks one (e.g. queues.gpu_else).
    queue: str | QueueResolver
    max_attempts: int = 3
    # Per attempt. Past it, progress() raises TimeLimitExceeded, the claim is no longer renewed,
    # and the job fails; Celery kills a pool process that is still running it 5 minutes later.
    time_limit: timedelta = timedelta(hours=1)
    # Retried attempts wait retry_backoff * 2^(attempt - 1), at most 15 minutes.
    retry_backoff: timedelta = timedelta(seconds=15)
    # The least role a member of the job's project needs to see jobs of this kind (their
    # creator and admins always do). Usually the role needed to start one.
    visible_to: Role = Role.researcher

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"{self.kind}: max_attempts must be at least 1")
        if self.time_limit <= timedelta(0):
            raise ValueError(f"{self.kind}: time_limit must be positive")
        if isinstance(self.queue, str) and self.queue not in QUEUES:
            raise ValueError(f"{self.kind}: unknown queue {self.queue!r} (queues: {QUEUES})")

    def queue_for(self, params: Mapping[str, Any]) -> str:
        queue = self.queue if isinstance(self.queue, str) else self.queue(params)
        if queue not in QUEUES:
            raise ValueError(f"{self.kind}: the resolver chose an unknown queue {queue!r}")
        return queue

    def backoff_seconds(self, attempt: int) -> float:
        seconds = self.retry_backoff.total_seconds() * 2 ** max(attempt - 1, 0)
        return float(min(seconds, MAX_BACKOFF_SECONDS))


MAX_BACKOFF_SECONDS = 15 * 60


@dataclass(frozen=True, slots=True)
class PeriodicSpec:
    """Work a domain needs done every so often (a loop waiting for labels or for its step's
    job to end). Declared like JobSpecs, in the domain's job module; the worker holding the
    sweeper lock runs it from the sweeper tick (so once, not once per worker), at most every
    `every` (and never more often than the sweeper ticks). It must be short, idempotent and
    do its writes in its own transactions; an exception is logged and the next tick retries."""

    name: str
    run: Callable[[], object]
    every: timedelta = timedelta(0)
