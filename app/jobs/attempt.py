"""One claimed attempt of a job: the JobContext that handlers get, and the heartbeat of its claim.

While the handler runs, a thread renews the claim every third of the lease, so a handler busy in
one long step (a training epoch) keeps its job; the kind's time limit bounds that: past it the
claim is no longer renewed, and progress() raises TimeLimitExceeded. A cancel request stops
renewals too once the handler has ignored it for a full lease, so the sweeper can end the job.
Each write opens its own short transaction; none is held while the handler works.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.orm import Session

from app import storage
from app.config import get_settings
from app.db import session_scope
from app.jobs import claims
from app.jobs.context import JobCancelled, LostClaim, TimeLimitExceeded
from app.jobs.models import Job

log = logging.getLogger(__name__)
# cancelled() asks the database at most this often; progress() always does.
CANCEL_POLL_SECONDS = 0.5
# Progress and heartbeats need not survive a database crash (the next one rewrites them):
# their commits skip the WAL flush, which is most of their cost.
_NO_FSYNC = text("SET LOCAL synchronous_commit = off")
T = TypeVar("T")


def _json_safe(value: Any) -> Any:
    """A progress detail as JSON can hold it: a NaN or infinite loss is reported as a string
    ("nan", "inf") instead of failing the write."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


class Attempt:
    """Implements app.jobs.context.JobContext for one claim of one job."""

    def __init__(self, job: Job) -> None:
        self._job_id = job.id
        self._attempt = job.attempts
        self._params: Mapping[str, Any] = dict(job.params)
        self._state: dict[str, Any] | None = job.checkpoint
        self._time_limit = float(job.time_limit_s)
        self._started = time.monotonic()
        self._cancel_seen_at: float | None = None
        self._cancel_polled = 0.0
        self._lost = False
        self.completed: dict[str, Any] | None = None
        # Set once complete() starts: a beat blocked on its row lock then finds the job
        # finished, which is no lost claim (the fenced commit itself proves the claim held).
        self._finishing = False
        self._local = threading.local()  # the session of an open transaction(), per thread
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- JobContext --------------------------------------------------------------------------

    @property
    def job_id(self) -> int:
        return self._job_id

    @property
    def attempt(self) -> int:
        return self._attempt

    @property
    def params(self) -> Mapping[str, Any]:
        return self._params

    @property
    def work_dir(self) -> Path:
        return storage.work_dir(self._job_id)

    def progress(self, fraction: float, detail: Mapping[str, Any] | None = None) -> None:
        self._check_time()
        renewal = self._write(
            lambda s: claims.renew(
                s,
                self._job_id,
                self._attempt,
                progress=fraction,
                detail=None if detail is None else _json_safe(detail),
                extend=self._may_renew(),
            ),
            durable=False,
        )
        self._note_cancel(renewal.cancel_requested)
        if renewal.cancel_requested:
            raise JobCancelled(f"job {self._job_id} was cancelled")

    def heartbeat(self) -> None:
        self._check_time()
        renewal = self._write(
            lambda s: claims.renew(s, self._job_id, self._attempt, extend=self._may_renew()),
            durable=False,
        )
        self._note_cancel(renewal.cancel_requested)

    def cancelled(self) -> bool:
        if self._cancel_seen_at is not None:
            return True
        now = time.monotonic()
        if now - self._cancel_polled >= CANCEL_POLL_SECONDS:
            self._cancel_polled = now
            with session_scope() as s:
                self._note_cancel(claims.cancel_requested(s, self._job_id))
        return self._cancel_seen_at is not None

    def checkpoint(self, state: Mapping[str, Any]) -> None:
        saved = dict(state)
        self._write(lambda s: claims.save_checkpoint(s, self._job_id, self._attempt, saved))
        self._state = saved

    def resume_state(self) -> dict[str, Any] | None:
        return None if self._state is None else dict(self._state)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self._fenced() as session:
            yield session

    @contextmanager
    def complete(self, result: Mapping[str, Any]) -> Iterator[Session]:
        if self.completed is not None:
            raise RuntimeError(f"job {self._job_id} was already completed")
        final = dict(result)
        self._finishing = True
        try:
            with self._fenced() as session:
                yield session
                session.flush()
                claims.finish(session, self._job_id, self._attempt, final)
        except BaseException:
            self._finishing = False
            raise
        self.completed = final

    # -- for the runner ----------------------------------------------------------------------

    def check_time(self) -> None:
        self._check_time()

    def start_heartbeat(self) -> None:
        self._thread = threading.Thread(
            target=self._beat, name=f"job-{self._job_id}-heartbeat", daemon=True
        )
        self._thread.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    # -- internals ---------------------------------------------------------------------------

    def _fenced_session(self) -> Session | None:
        session: Session | None = getattr(self._local, "session", None)
        return session

    @contextmanager
    def _fenced(self) -> Iterator[Session]:
        if self._fenced_session() is not None:
            raise RuntimeError("job transactions do not nest")
        if self._lost:
            raise LostClaim(f"job {self._job_id} is no longer held by attempt {self._attempt}")
        with session_scope() as session:
            claims.lock_current(session, self._job_id, self._attempt)
            self._local.session = session
            try:
                yield session
            finally:
                self._local.session = None

    def _write(self, fn: Callable[[Session], T], *, durable: bool = True) -> T:
        """Run one write inside the open transaction() of this thread (its row lock is ours:
        a separate transaction would wait on it), else in a transaction of its own."""
        if self._lost:
            raise LostClaim(f"job {self._job_id} is no longer held by attempt {self._attempt}")
        session = self._fenced_session()
        if session is not None:
            return fn(session)
        try:
            with session_scope() as s:
                if not durable:
                    s.execute(_NO_FSYNC)
                return fn(s)
        except LostClaim:
            self._lost = True
            raise

    def _elapsed(self) -> float:
        return time.monotonic() - self._started

    def _check_time(self) -> None:
        if self._elapsed() > self._time_limit:
            raise TimeLimitExceeded(
                f"attempt {self._attempt} ran past the time limit of "
                f"{claims.duration(self._time_limit)}"
            )

    def _note_cancel(self, requested: bool) -> None:
        if requested and self._cancel_seen_at is None:
            self._cancel_seen_at = time.monotonic()

    def _may_renew(self) -> bool:
        """Renew the claim unless past the time limit or ignoring a cancel for a whole lease."""
        if self._elapsed() > self._time_limit:
            return False
        seen = self._cancel_seen_at
        return seen is None or time.monotonic() - seen < get_settings().job_lease_seconds

    def _beat(self) -> None:
        every = get_settings().job_lease_seconds / 3
        while not self._stop.wait(every):
            try:
                with session_scope() as s:
                    s.execute(_NO_FSYNC)
                    renewal = claims.renew(s, self._job_id, self._attempt, extend=self._may_renew())
                self._note_cancel(renewal.cancel_requested)
            except LostClaim:
                if self._finishing:
                    continue  # finished meanwhile (or, if its commit failed, it says so)
                log.warning("job %s: attempt %s lost its claim", self._job_id, self._attempt)
                self._lost = True
                return
            except Exception:
                # The database may be back by the next beat; the lease covers two misses.
                log.exception("job %s: heartbeat failed", self._job_id)
