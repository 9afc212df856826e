"""Tasks: run a job by id; re-send jobs whose message was lost."""

from __future__ import annotations

import redis

from app.config import get_settings
from app.db import session_scope
from app.jobs import runner, service
from worker.celery_app import celery_app

# A stale job is re-sent at most this often, so a long backlog does not pile up duplicates.
RESEND_EVERY_SECONDS = 300


@celery_app.task(name="tandem.run_job")
def run_job(job_id: int) -> str:
    return runner.run_job(job_id)


@celery_app.task(name="tandem.resend_stale_jobs")
def resend_stale_jobs() -> int:
    """Re-send stale jobs; returns how many were sent this time."""
    with session_scope() as session:
        stale = service.stale_jobs(session)
    marks = redis.Redis.from_url(get_settings().require_redis_url())
    sent = 0
    for job_id, queue in stale:
        if marks.set(f"tandem:job-resent:{job_id}", 1, nx=True, ex=RESEND_EVERY_SECONDS):
            service.send(job_id, queue)
            sent += 1
    return sent
