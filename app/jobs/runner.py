"""Run one job by id: claim an attempt, run its kind's handler in the kind's mode, settle the row.

Returns what happened: 'done', 'failed', 'cancelled', 'retrying' (put back with a backoff), or
'skipped' (claimed elsewhere, finished already, or this attempt lost its claim).
"""

from __future__ import annotations

import logging
from typing import cast

from app import storage
from app.db import session_scope
from app.errors import DomainError
from app.jobs import claims, registry
from app.jobs.attempt import Attempt
from app.jobs.context import JobCancelled, JobFailed, LostClaim, TimeLimitExceeded
from app.jobs.models import Job
from app.jobs.specs import ExternalHandler, JobSpec, Mode, TransactionalHandler

log = logging.getLogger(__name__)

# Raised by a handler, these end the job at once: running it again cannot help.
FINAL_ERRORS: tuple[type[BaseException], ...] = (DomainError, JobFailed, TimeLimitExceeded)


def run_job(job_id: int) -> str:
    with session_scope() as session:
        job = claims.claim(session, job_id)
    if job is None:
        return "skipped"
    attempt = job.attempts
    try:
        spec = registry.get(job.kind)
    except registry.UnknownJobKind as exc:
        return _end(job_id, attempt, "failed", str(exc))

    run = Attempt(job)
    run.start_heartbeat()
    try:
        _run_handler(spec, job, run)
    except Exception as exc:
        error: Exception | None = exc
    else:
        error = None
    finally:
        # Stopped before the row is settled, so no beat races the final write. On BaseException
        # (the worker is shutting down hard) the claim simply lapses and the sweeper requeues.
        run.stop_heartbeat()
    if error is None:
        storage.remove_work_dir(job_id)
        return "done"
    if isinstance(error, LostClaim):
        log.warning("job %s: attempt %s lost its claim to a newer one", job_id, attempt)
        return "skipped"
    if isinstance(error, JobCancelled):
        return _end(job_id, attempt, "cancelled")
    if isinstance(error, FINAL_ERRORS):
        message = error.message if isinstance(error, DomainError) else str(error)
        return _end(job_id, attempt, "failed", message or type(error).__name__)
    log.error("job %s (%s) attempt %s failed", job_id, job.kind, attempt, exc_info=error)
    return _retry_or_fail(spec, job, f"{type(error).__name__}: {error}")


def _run_handler(spec: JobSpec, job: Job, run: Attempt) -> None:
    if spec.mode is Mode.transactional:
        handler = cast(TransactionalHandler, spec.handler)

        def progress(fraction: float) -> None:
            run.progress(fraction)

        with session_scope() as session:
            row = session.get_one(Job, job.id)
            result = handler(session, row, progress)
            run.check_time()
            # The effect and the "succeeded" mark commit together: a redelivery finds it done,
            # and a run whose claim was taken over (or that was cancelled) rolls it back.
            claims.finish(session, job.id, job.attempts, result)
    else:
        result = cast(ExternalHandler, spec.handler)(run)
        if run.completed is None:
            with run.complete(result):
                pass


def _end(job_id: int, attempt: int, outcome: str, error: str | None = None) -> str:
    with session_scope() as session:
        if outcome == "cancelled":
            ended = claims.mark_cancelled(session, job_id, attempt)
        else:
            ended = claims.fail(session, job_id, attempt, error or "failed")
    if not ended:
        return "skipped"
    storage.remove_work_dir(job_id)
    return outcome


def _retry_or_fail(spec: JobSpec, job: Job, reason: str) -> str:
    attempt, last = job.attempts, job.max_attempts
    if attempt >= last:
        return _end(job.id, attempt, "failed", f"{reason} (attempt {attempt} of {last})")
    delay = spec.backoff_seconds(attempt)
    note = f"attempt {attempt} of {last} failed: {reason}; retrying in {delay:g} s"
    with session_scope() as session:
        if claims.retry_later(session, job.id, attempt, note, delay):
            return "retrying"
        cancelled = claims.cancel_requested(session, job.id)
    return _end(job.id, attempt, "cancelled") if cancelled else "skipped"
