"""Send-only access to the broker: publish `tandem.run_job` messages without the worker's app.

The web process imports this, never `worker/`: it builds a bare Celery object (no tasks, no
worker settings) on first use, only to publish in Celery's message format.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from app.config import get_settings
from app.jobs.queues import QUEUES

if TYPE_CHECKING:
    from celery import Celery

RUN_JOB = "tandem.run_job"
# Celery kills a pool process still running a job this long after the kind's time limit (the
# runner itself stops renewing the claim at the limit, and the job fails).
HARD_KILL_GRACE_SECONDS = 300


@lru_cache
def _client() -> Celery:
    from celery import Celery
    from kombu import Queue

    app = Celery("tandem-send", broker=get_settings().require_redis_url(), set_as_current=False)
    app.conf.update(
        task_queues=tuple(Queue(q, routing_key=q) for q in QUEUES),
        # A down broker fails the send in about a second; the sweeper sends the job later.
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.4},
        broker_connection_retry_on_startup=True,
    )
    return app


def reset() -> None:
    """Forget the client (in a forked process: build one with connections of its own)."""
    _client.cache_clear()


def send_run_job(
    job_id: int, queue: str, *, countdown: float = 0.0, time_limit_s: int | None = None
) -> None:
    """Publish one job id to its queue (raises if the broker cannot take it)."""
    hard_limit = None if time_limit_s is None else time_limit_s + HARD_KILL_GRACE_SECONDS
    _client().send_task(
        RUN_JOB,
        args=[job_id],
        queue=queue,
        routing_key=queue,
        countdown=countdown or None,
        time_limit=hard_limit,
    )
