"""The Celery app: Redis broker, at-least-once delivery, queues `default`, `gpu`, `cpu-train`.

Every worker process also runs the sweeper loop (worker/sweeper.py): no beat process is needed.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_process_init
from kombu import Queue

import app.models  # noqa: F401  (every table, so that foreign keys resolve in this process)
from app.config import get_settings
from app.db import get_engine
from app.jobs import broker
from app.jobs.queues import QUEUES


def make_celery() -> Celery:
    # No fallback address: a worker without a configured broker must not guess one.
    url = get_settings().require_redis_url()
    app = Celery("tandem", broker=url, include=["worker.tasks.jobs"])
    app.conf.update(
        # Acknowledge after the task ran and requeue if the worker dies: at-least-once.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="default",
        task_queues=tuple(Queue(q, routing_key=q) for q in QUEUES),
        task_ignore_result=True,  # results live in the jobs table, not in Redis
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 3600},
        worker_hijack_root_logger=False,
    )
    from worker.sweeper import SweeperStep

    app.steps["worker"].add(SweeperStep)
    return app


@worker_process_init.connect
def _own_connections_in_pool_process(**kwargs: Any) -> None:
    """A forked pool process must not use the sockets its parent pooled (the sweeper's
    database and broker connections): it starts with empty pools of its own."""
    get_engine().dispose(close=False)
    broker.reset()


celery_app = make_celery()
