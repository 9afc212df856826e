"""Runs the sweeper loop (app/jobs/sweeper.py) inside every worker process, as a worker bootstep."""

from __future__ import annotations

from typing import Any

from celery import bootsteps

from app.jobs.sweeper import SweeperLoop


class SweeperStep(bootsteps.StartStopStep):
    label = "tandem sweeper"
    # Started once the pool's processes are forked, so they inherit none of its connections.
    requires = ("celery.worker.components:Pool",)

    def create(self, worker: Any) -> SweeperLoop:  # type: ignore[override]
        consumed = sorted(worker.app.amqp.queues.consume_from or worker.app.amqp.queues)
        return SweeperLoop(node=worker.hostname, consumed=consumed)
