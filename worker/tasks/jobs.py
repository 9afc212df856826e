"""The one task: run a job by id. Importing this loads every job kind (the domains' job modules)."""

from __future__ import annotations

from app.jobs import registry, runner
from worker.celery_app import celery_app

registry.load()  # a broken job module stops the worker at start, not at its first job


@celery_app.task(name="tandem.run_job")
def run_job(job_id: int) -> str:
    return runner.run_job(job_id)
