"""The Celery application: Redis broker, at-least-once delivery, queues `default` and `gpu`."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from app.config import get_settings


def make_celery() -> Celery:
    url = get_settings().redis_url or "redis://127.0.0.1:6379/0"
    app = Celery("tandem", broker=url, include=["worker.tasks.jobs"])
    app.conf.update(
        # Acknowledge after the task ran and requeue if the worker dies: at-least-once.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="default",
        task_queues=(
            Queue("default", routing_key="default"),
            Queue("gpu", routing_key="gpu"),
        ),
        task_ignore_result=True,  # results live in the jobs table, not in Redis
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 3600},
        worker_hijack_root_logger=False,
        beat_schedule={
            "resend-stale-jobs": {"task": "tandem.resend_stale_jobs", "schedule": 30.0},
        },
    )
    return app


celery_app = make_celery()
