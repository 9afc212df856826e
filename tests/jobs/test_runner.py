"""The runner and the job context in this process: fencing, checkpoints, retries, time limits,
cancel in the transactional mode, settling lapsed claims, queues and the registry."""

from __future__ import annotations

import base64
import json
import os
import threading
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from app.config import get_settings
from app.db import session_scope
from app.jobs import claims, queues, registry, runner
from app.jobs.attempt import Attempt
from app.jobs.context import JobCancelled, LostClaim
from app.jobs.specs import JobSpec, Mode
from app.jobs.sweeper import sweep
from tests.conftest import Actor
from tests.jobs import kinds
from tests.jobs.helpers import (
    broker,
    effects,
    enqueue,
    job_row,
    reset_effects,
    sql,
    wait_until,
)


@pytest.fixture(autouse=True)
def _effects() -> None:
    reset_effects()


def claim(job_id: int) -> Attempt:
    with session_scope() as session:
        job = claims.claim(session, job_id)
    assert job is not None
    return Attempt(job)


def lapse(job_id: int) -> None:
    sql("UPDATE jobs SET locked_until = now() - interval '1 second' WHERE id = %s", job_id)


def sql_url() -> str:
    return os.environ["TANDEM_DATABASE_URL"]


def messages(queue: str = "default") -> list[dict[str, Any]]:
    """The tandem.run_job messages waiting in a queue: job id and Celery headers."""
    out = []
    for raw in broker().lrange(queue, 0, -1):
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        out.append({"job_id": args[0], **message["headers"]})
    return out


def test_a_stale_attempt_can_no_longer_write_once_the_job_was_claimed_again() -> None:
    job_id = enqueue(kinds.STEPS, {"steps": 3})
    first = claim(job_id)
    first.checkpoint({"next": 1})
    lapse(job_id)  # its worker stalled past the lease
    second = claim(job_id)
    assert (second.attempt, second.resume_state()) == (2, {"next": 1})
    with pytest.raises(LostClaim), first.transaction() as session:
        session.execute(text("INSERT INTO test_job_effects VALUES (:j, 0, 1)"), {"j": job_id})
    for write in (lambda: first.progress(0.5), lambda: first.checkpoint({"next": 2})):
        with pytest.raises(LostClaim):
            write()
    assert effects(job_id) == []
    assert job_row(job_id)["checkpoint"] == {"next": 1}
    assert (job_row(job_id)["attempts"], job_row(job_id)["lost_attempts"]) == (2, 1)


def test_a_job_transaction_locks_the_row_so_a_reclaim_waits_for_it() -> None:
    job_id = enqueue(kinds.STEPS, {"steps": 3})
    ctx = claim(job_id)
    with ctx.transaction(), psycopg.connect(sql_url(), autocommit=True) as other:
        other.execute("SET lock_timeout = '200ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            other.execute("UPDATE jobs SET attempts = attempts + 1 WHERE id = %s", (job_id,))
        # The sweeper skips a row in use instead of waiting on it.
        lapse_in = "UPDATE jobs SET locked_until = now() - interval '1 s' WHERE id = %s"
        with pytest.raises(psycopg.errors.LockNotAvailable):
            other.execute(lapse_in, (job_id,))
        with session_scope() as session:
            assert claims.settle_lapsed(session) == []


def test_a_checkpoint_inside_a_transaction_commits_with_its_effect_or_not_at_all() -> None:
    job_id = enqueue(kinds.STEPS, {"steps": 3})
    ctx = claim(job_id)
    with pytest.raises(RuntimeError), ctx.transaction() as session:
        session.execute(text("INSERT INTO test_job_effects VALUES (:j, 0, 1)"), {"j": job_id})
        ctx.checkpoint({"next": 1})
        ctx.progress(0.3, {"step": 1})
        raise RuntimeError("the disk is full")
    assert effects(job_id) == [] and job_row(job_id)["checkpoint"] is None
    assert job_row(job_id)["progress"] == 0.0
    with ctx.transaction() as session:
        session.execute(text("INSERT INTO test_job_effects VALUES (:j, 0, 1)"), {"j": job_id})
        ctx.checkpoint({"next": 1})
    assert effects(job_id) == [(0, 1)] and job_row(job_id)["checkpoint"] == {"next": 1}


def test_an_unexpected_error_is_retried_after_a_backoff_then_fails() -> None:
    job_id = enqueue(kinds.STEPS, {"steps": 3, "raise_at": 0})
    broker().delete("default")
    assert runner.run_job(job_id) == "retrying"
    job = job_row(job_id)
    assert job["status"] == "queued" and job["attempts"] == 1
    assert job["error"] == (
        "attempt 1 of 3 failed: RuntimeError: boom at step 0; retrying in 0.2 s"
    )
    (message,) = messages()
    assert message["job_id"] == job_id and message["eta"] is not None  # sent with a countdown
    assert runner.run_job(job_id) == "retrying"
    # Backoff doubles per attempt.
    assert job_row(job_id)["error"].endswith("retrying in 0.4 s")
    etas = sorted(m["eta"] for m in messages())
    assert len(etas) == 2 and etas[0] == message["eta"] and etas[1] > etas[0]
    assert runner.run_job(job_id) == "failed"
    job = job_row(job_id)
    assert job["error"] == "RuntimeError: boom at step 0 (attempt 3 of 3)"
    assert runner.run_job(job_id) == "skipped"


def test_a_domain_error_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.errors import Invalid

    def invalid(session: Any, job: Any, progress: Any) -> Any:
        raise Invalid("row 3: prompt is empty.")

    spec = JobSpec("test.invalid", Mode.transactional, invalid, queues.DEFAULT)
    monkeypatch.setitem(registry.load(), spec.kind, spec)  # type: ignore[index]
    job_id = enqueue(spec, {})
    assert runner.run_job(job_id) == "failed"
    assert (job_row(job_id)["error"], job_row(job_id)["attempts"]) == ("row 3: prompt is empty.", 1)


def test_an_attempt_past_its_time_limit_fails_without_retry() -> None:
    job_id = enqueue(kinds.STEPS, {"steps": 10, "sleep": 0.5})
    sql("UPDATE jobs SET time_limit_s = 1 WHERE id = %s", job_id)
    assert runner.run_job(job_id) == "failed"
    job = job_row(job_id)
    assert job["error"] == "attempt 1 ran past the time limit of 1 s"
    assert job["attempts"] == 1 and 1 <= len(effects(job_id)) <= 3


def test_cancel_rolls_back_a_transactional_job(researcher: Actor) -> None:
    job_id = enqueue(
        kinds.STEPS_IN_ONE_TRANSACTION, {"steps": 20, "sleep": 0.1}, created_by=researcher.id
    )
    outcome: list[str] = []
    worker = threading.Thread(target=lambda: outcome.append(runner.run_job(job_id)))
    worker.start()
    wait_until(lambda: job_row(job_id)["progress"] >= 0.1, timeout=20)
    assert researcher.client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 200
    worker.join(20)
    assert outcome == ["cancelled"]
    assert job_row(job_id)["status"] == "cancelled"
    assert effects(job_id) == []  # its one transaction rolled back


def test_a_handler_that_finishes_after_cancel_was_asked_ends_cancelled(researcher: Actor) -> None:
    job_id = enqueue(kinds.STEPS, {"steps": 2}, created_by=researcher.id)
    ctx = claim(job_id)
    researcher.client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert ctx.cancelled() is True
    with pytest.raises(JobCancelled), ctx.complete({"steps": 2}):
        pass
    with pytest.raises(JobCancelled):
        ctx.progress(0.5)


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ("attempts = 1", "queued", "attempt 1: the worker stopped at 40%; retrying"),
        ("attempts = 3, lost_attempts = 2", "failed", "the worker stopped 3 times; last at 40%"),
        ("attempts = 1, max_attempts = 1", "failed", "the worker stopped once; last at 40%"),
        (
            "attempts = 3, lost_attempts = 1",
            "failed",
            "gave up after 3 attempts; the worker of the last one stopped at 40%",
        ),
        (
            "attempts = 1, started_at = now() - interval '2 hours'",
            "failed",
            "attempt 1 ran past the time limit of 10 min (stopped at 40%)",
        ),
        ("attempts = 1, cancel_requested_at = now()", "cancelled", None),
    ],
)
def test_the_sweeper_settles_a_job_whose_worker_stopped(
    change: str, status: str, error: str | None
) -> None:
    job_id = enqueue(kinds.STEPS, {"steps": 5})
    fresh = enqueue(kinds.STEPS, {"steps": 5})
    sql(
        "UPDATE jobs SET status = 'running', progress = 0.4, started_at = now(),"
        " locked_until = now() - interval '1 second' WHERE id = %s",
        job_id,
    )
    sql(f"UPDATE jobs SET {change} WHERE id = %s", job_id)
    broker().delete("default")
    report = sweep(broker())
    assert [(s.job_id, s.status.value, s.error) for s in report.settled] == [
        (job_id, status, error)
    ]
    job = job_row(job_id)
    assert (job["status"], job["error"]) == (status, error)
    # Requeued jobs are sent again at once; the others, and the fresh job, are left alone.
    assert [m["job_id"] for m in messages()] == ([job_id] if status == "queued" else [])
    assert job_row(fresh)["status"] == "queued"


def test_the_queue_follows_the_spec_and_its_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    for q in queues.QUEUES:
        broker().delete(q)
    plain = enqueue(kinds.STEPS, {"steps": 1})
    no_gpu = enqueue(kinds.GPU_OR_CPU, {"steps": 1})
    queues.announce(broker(), "gpu-worker@host:1:x", [queues.GPU], ttl_seconds=30)
    with_gpu = enqueue(kinds.GPU_OR_CPU, {"steps": 1})
    assert queues.live_queues(broker()) == {queues.GPU}
    assert [job_row(j)["queue"] for j in (plain, no_gpu, with_gpu)] == [
        "default",
        "cpu-train",
        "gpu",
    ]
    assert [m["job_id"] for m in messages("default")] == [plain]
    assert [m["job_id"] for m in messages("cpu-train")] == [no_gpu]
    assert [m["job_id"] for m in messages("gpu")] == [with_gpu]
    # The hard time limit travels with the message: the kind's limit plus a grace period.
    assert messages("default")[0]["timelimit"] == [600 + 300, None]
    queues.withdraw(broker(), "gpu-worker@host:1:x", [queues.GPU])
    assert queues.live_queues(broker()) == set()


def test_specs_refuse_unknown_queues_and_bad_policies() -> None:
    def handler(ctx: Any) -> dict[str, Any]:
        return {}

    with pytest.raises(ValueError, match="unknown queue"):
        JobSpec("x", Mode.external, handler, "gpus")
    with pytest.raises(ValueError, match="max_attempts"):
        JobSpec("x", Mode.external, handler, queues.DEFAULT, max_attempts=0)
    bad = JobSpec("x", Mode.external, handler, lambda params: "elsewhere")
    with pytest.raises(ValueError, match="unknown queue"):
        bad.queue_for({})


def test_the_registry_finds_the_domains_kinds_and_plugins() -> None:
    specs = registry.load()
    assert {"items.import", "exports.snapshot", "test.steps"} <= set(specs)
    assert registry.get("exports.snapshot").mode is Mode.external
    assert registry.get("items.import").mode is Mode.transactional
    with pytest.raises(registry.UnknownJobKind, match=r"tests\.jobs\.kinds"):
        registry.get("nope")
    from app.auth.models import Role

    assert registry.kinds_visible_to(Role.annotator) == ["test.steps"]
    assert "test.admin_only" not in registry.kinds_visible_to(Role.researcher)
    assert get_settings().job_modules == "tests.jobs.kinds"


def test_the_status_check_follows_the_enum() -> None:
    from app.jobs.models import JobStatus

    (definition,) = sql(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'ck_jobs_status'"
    )[0]
    for status in JobStatus:
        assert f"'{status.value}'" in definition
    job_id = enqueue(kinds.STEPS, {"steps": 1})
    with pytest.raises(psycopg.errors.CheckViolation):
        sql("UPDATE jobs SET status = 'paused' WHERE id = %s", job_id)


def test_an_overdue_job_is_not_sent_again_while_its_queue_has_a_backlog() -> None:
    lost = enqueue(kinds.STEPS, {"steps": 1})
    broker().delete("default")  # its message is lost
    waiting = enqueue(kinds.STEPS, {"steps": 1})  # a backlog: this one's message waits
    sql("UPDATE jobs SET due_at = now() - interval '2 minutes'")
    assert sweep(broker()).resent == []
    assert [m["job_id"] for m in messages()] == [waiting]
    broker().delete("default")  # the queue drained (say a worker took the message)
    sql("UPDATE jobs SET status = 'running' WHERE id = %s", waiting)
    assert sweep(broker()).resent == [lost]
    assert [m["job_id"] for m in messages()] == [lost]
    assert sweep(broker()).resent == []  # at most every RESEND_EVERY_SECONDS


def test_a_nan_loss_in_a_progress_detail_is_reported_as_text() -> None:
    job_id = enqueue(kinds.STEPS, {"steps": 1})
    ctx = claim(job_id)
    ctx.progress(0.25, {"loss": float("nan"), "norms": [float("inf"), 1.5], "step": 3})
    job = job_row(job_id)
    assert job["progress"] == 0.25
    assert job["progress_detail"] == {"loss": "nan", "norms": ["inf", 1.5], "step": 3}
