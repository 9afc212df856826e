"""Long jobs through real Celery worker processes: SIGKILL and resume, attempts, cancel, no idle
transactions, the sweeper inside every worker (one at a time), recovery without beat."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.config import get_settings
from app.jobs.sweeper import LAST_SWEEP_KEY, LOCK_KEY
from tests.conftest import Actor
from tests.jobs import kinds
from tests.jobs.helpers import (
    WorkerProcess,
    broker,
    effects,
    enqueue,
    job_row,
    reset_effects,
    sql,
    wait_for_status,
    wait_until,
    worker_processes,
)

StartWorker = Callable[..., WorkerProcess]


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[StartWorker]:
    reset_effects()
    with worker_processes(tmp_path) as start:
        yield start


def step_reached(job_id: int, step: int) -> bool:
    detail = job_row(job_id)["progress_detail"]
    return bool(detail and detail["step"] >= step)


def test_a_job_killed_mid_way_resumes_from_its_checkpoint_and_applies_each_step_once(
    workers: StartWorker,
) -> None:
    first = workers()
    first.wait_ready()
    job_id = enqueue(kinds.STEPS, {"steps": 8, "sleep": 0.3})
    wait_until(lambda: step_reached(job_id, 3), what="step 3")
    first.kill()  # SIGKILL, main process and pool child: nothing is cleaned up or acked
    done_before = len(effects(job_id))
    assert 3 <= done_before < 8
    assert job_row(job_id)["status"] == "running"

    second = workers()
    second.wait_ready()
    job = wait_for_status(job_id, "succeeded", "failed")
    assert job["status"] == "succeeded", job
    # Each step's effect exactly once: the first attempt's up to the kill, the rest resumed.
    assert [step for step, _ in effects(job_id)] == list(range(8))
    assert effects(job_id) == [(s, 1 if s < done_before else 2) for s in range(8)]
    # The second attempt found the first one's work dir as it was left.
    assert job["result"] == {"steps": 8, "resumed_at": done_before, "work_dir_had": ["attempt-1"]}
    assert (job["attempts"], job["lost_attempts"]) == (2, 1)
    assert job["error"] is None and job["progress"] == 1.0
    # The work dir, kept across the two attempts, is removed once the job ended.
    assert not (get_settings().data_dir / "jobs" / str(job_id)).exists()


def test_a_job_whose_worker_always_dies_fails_after_max_attempts_with_the_reason(
    workers: StartWorker,
) -> None:
    workers().wait_ready()
    # The pool process kills itself at step 2 (40%) on every attempt; the worker lives on.
    job_id = enqueue(kinds.STEPS, {"steps": 5, "die_at": 2, "die_on": [1, 2, 3]})
    job = wait_for_status(job_id, "succeeded", "failed", timeout=90)
    assert job["status"] == "failed"
    assert job["error"] == "the worker stopped 3 times; last at 40%"
    assert (job["attempts"], job["lost_attempts"], job["max_attempts"]) == (3, 3, 3)
    # Attempts 2 and 3 resumed at step 2: steps 0 and 1 happened once.
    assert effects(job_id) == [(0, 1), (1, 1)]


def test_a_job_that_always_raises_is_retried_then_fails_with_the_error(
    workers: StartWorker,
) -> None:
    workers().wait_ready()
    job_id = enqueue(kinds.STEPS, {"steps": 4, "raise_at": 1})
    job = wait_for_status(job_id, "succeeded", "failed", timeout=90)
    assert job["status"] == "failed"
    assert job["error"] == "RuntimeError: boom at step 1 (attempt 3 of 3)"
    assert (job["attempts"], job["lost_attempts"]) == (3, 0)
    assert effects(job_id) == [(0, 1)]


def test_cancel_stops_a_running_job_within_one_progress_step(
    workers: StartWorker, researcher: Actor
) -> None:
    workers().wait_ready()
    job_id = enqueue(kinds.STEPS, {"steps": 100, "sleep": 0.2}, created_by=researcher.id)
    wait_until(lambda: step_reached(job_id, 3), what="step 3")
    r = researcher.client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "running" and r.json()["cancel_requested"] is True
    steps_at_cancel = len(effects(job_id))
    job = wait_for_status(job_id, "cancelled", "succeeded", "failed", timeout=30)
    assert job["status"] == "cancelled" and job["error"] is None
    # At most the step in flight when cancel was asked commits; none after it.
    assert steps_at_cancel <= len(effects(job_id)) <= steps_at_cancel + 1
    assert job["finished_at"] is not None
    assert not (get_settings().data_dir / "jobs" / str(job_id)).exists()
    r = researcher.client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"


IDLE_IN_TRANSACTION = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND state LIKE 'idle in transaction%%' AND clock_timestamp() - xact_start > interval '1 second'
"""


def longest_idle_transactions_while(job_id: int) -> tuple[int, int]:
    """Poll pg_stat_activity until the job ends: (polls that saw a transaction idle for over a
    second, polls made while it ran)."""
    seen = polls = 0
    while job_row(job_id)["status"] in ("queued", "running"):
        if job_row(job_id)["status"] == "running":
            polls += 1
            seen += sql(IDLE_IN_TRANSACTION)[0][0] > 0
        time.sleep(0.05)
    return seen, polls


def test_no_connection_sits_idle_in_transaction_during_an_external_job(
    workers: StartWorker,
) -> None:
    workers().wait_ready()
    external = enqueue(kinds.STEPS, {"steps": 12, "sleep": 0.3})
    seen, polls = longest_idle_transactions_while(external)
    assert job_row(external)["status"] == "succeeded"
    assert polls > 20
    assert seen == 0
    # The probe does catch one: a transactional job holds its transaction while it works.
    transactional = enqueue(kinds.STEPS_IN_ONE_TRANSACTION, {"steps": 12, "sleep": 0.3})
    seen, polls = longest_idle_transactions_while(transactional)
    assert job_row(transactional)["status"] == "succeeded"
    assert seen > 0


def test_the_sweeper_resends_a_dead_job_within_a_minute_without_beat(
    workers: StartWorker,
) -> None:
    # `tandem worker` as documented, with the default lease and sweep interval.
    workers(fast=False, tandem_cli=True).wait_ready(timeout=90)
    job_id = enqueue(kinds.STEPS, {"steps": 4, "sleep": 0.5, "die_at": 2})
    last_heartbeat: dict[str, Any] = {}

    def resumed() -> bool:
        job = job_row(job_id)
        if job["attempts"] == 1:
            last_heartbeat["at"] = job["heartbeat_at"]
        return job["attempts"] >= 2 and job["status"] != "queued"

    wait_until(resumed, timeout=90, every=0.2, what="a second attempt")
    job = wait_for_status(job_id, "succeeded", "failed")
    assert job["status"] == "succeeded" and job["lost_attempts"] == 1
    waited = (job["started_at"] - last_heartbeat["at"]).total_seconds()
    print(f"dead job re-sent and started {waited:.1f} s after its last heartbeat")
    assert waited < 60, waited
    assert [s for s, _ in effects(job_id)] == [0, 1, 2, 3]


def test_only_one_sweeper_acts_with_two_workers(workers: StartWorker) -> None:
    a, b = workers(), workers()
    ids = {a.wait_ready(): a, b.wait_ready(): b}
    client = broker()
    wait_until(lambda: client.get(LOCK_KEY), what="a sweeper to take the lock")
    time.sleep(3)  # six sweeper ticks of each worker
    holder = client.get(LOCK_KEY).decode()
    assert holder in ids
    swept = {k.decode() for k in client.hkeys(LAST_SWEEP_KEY)}
    assert swept == {holder}, swept
    # Its holder dies: the other worker's sweeper takes over within the lock's TTL.
    ids[holder].kill()
    (other,) = set(ids) - {holder}
    wait_until(lambda: client.get(LOCK_KEY) == other.encode(), timeout=10, what="takeover")
    wait_until(lambda: other.encode() in client.hkeys(LAST_SWEEP_KEY), timeout=5)
