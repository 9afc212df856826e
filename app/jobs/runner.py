"""Run one job by id: claim, work and finish in one transaction, or record the failure."""

from __future__ import annotations

import logging

from app.db import session_scope
from app.errors import DomainError
from app.jobs import service
from app.jobs.models import Job
from app.jobs.registry import handler_for

log = logging.getLogger(__name__)


def run_job(job_id: int) -> str:
    """Returns what happened: 'done', 'failed', or 'skipped' (claimed elsewhere or finished)."""
    with session_scope() as session:
        job = service.claim(session, job_id)
        if job is None:
            return "skipped"
        kind, attempt = job.kind, job.attempts

    def progress(fraction: float) -> None:
        with session_scope() as s:
            service.report_progress(s, job_id, attempt, fraction)

    try:
        with session_scope() as session:
            job = session.get_one(Job, job_id)
            result = handler_for(kind)(session, job, progress)
            # The effect and the "succeeded" mark commit together: a redelivery finds it done,
            # and a run whose claim was taken over rolls its effect back.
            service.finish(session, job_id, attempt, result)
    except service.LostClaim:
        log.warning(
            "job %s: attempt %s lost its claim to a newer one; rolled back", job_id, attempt
        )
        return "skipped"
    except DomainError as exc:
        with session_scope() as session:
            service.fail(session, job_id, attempt, exc.message)
        return "failed"
    except Exception as exc:
        log.exception("job %s (%s) failed", job_id, kind)
        with session_scope() as session:
            service.fail(session, job_id, attempt, f"{type(exc).__name__}: {exc}")
        return "failed"
    return "done"
