"""Tasks: run a job by id; re-send jobs whose message was lost."""

from __future__ import annotations

from app.db import session_scope
from app.jobs import runner, service
from worker.celery_app import celery_app


@celery_app.task(name="tandem.run_job")
def run_job(job_id: int) -> str:
    return runner.run_job(job_id)


@celery_app.task(name="tandem.resend_stale_jobs")
def resend_stale_jobs() -> int:
    with session_scope() as session:
        stale = service.stale_jobs(session)
    for job_id, queue in stale:
        service.send(job_id, queue)
    return len(stale)
