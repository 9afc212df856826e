"""Celery settings that the at-least-once design depends on."""

from __future__ import annotations

from worker.celery_app import celery_app


def test_delivery_is_at_least_once_with_prefetch_one() -> None:
    conf = celery_app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1


def test_each_queue_has_its_own_routing_key() -> None:
    queues = {q.name: q.routing_key for q in celery_app.amqp.queues.values()}
    assert queues == {"default": "default", "gpu": "gpu", "cpu-train": "cpu-train"}


def test_no_beat_schedule_recovery_runs_in_every_worker() -> None:
    assert not celery_app.conf.beat_schedule
    assert any(step.__name__ == "SweeperStep" for step in celery_app.steps["worker"])
