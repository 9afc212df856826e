"""Jobs: large imports handed to a real Celery worker, claims, redelivery and the sweeper."""

from __future__ import annotations

import base64
import io
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis

from app.config import get_settings
from app.jobs import runner
from tests.helpers import Actor, make_items, sql

ProjectFactory = Callable[..., dict[str, Any]]
ASYNC_BYTES = 1000


def item_count(project_id: int) -> int:
    n: int = sql("SELECT count(*) FROM items WHERE project_id = %s", project_id)[0][0]
    return n


def jsonl(rows: list[Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def job_row(job_id: int) -> dict[str, Any]:
    cols = ("status", "progress", "params", "result", "error", "attempts", "kind", "project_id")
    row = sql(f"SELECT {', '.join(cols)} FROM jobs WHERE id = %s", job_id)[0]
    return dict(zip(cols, row, strict=True))


def broker() -> redis.Redis:
    return redis.Redis.from_url(os.environ["TANDEM_REDIS_URL"])


def queued_job_ids(queue: str = "default") -> list[int]:
    """Job ids of the tandem.run_job messages waiting in a Celery queue on Redis."""
    ids = []
    for raw in broker().lrange(queue, 0, -1):
        message = json.loads(raw)
        assert message["headers"]["task"] == "tandem.run_job"
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        ids += args
    return sorted(ids)


@pytest.fixture(autouse=True)
def small_async_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "async_import_bytes", ASYNC_BYTES)


def start_worker_now() -> Any:
    """A real Celery worker, in this process, consuming the Redis broker conftest configured."""
    from celery.contrib.testing.worker import start_worker

    import worker.tasks.jobs  # noqa: F401  (registers the tasks)
    from worker.celery_app import celery_app

    return start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10)


@pytest.fixture
def celery_worker() -> Iterator[None]:
    with start_worker_now():
        yield


def wait_for(actor: Actor, job_id: int, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = actor.client.get(f"/api/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        job: dict[str, Any] = r.json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def post_file(actor: Actor, project: dict[str, Any], body: bytes, **kw: Any) -> int:
    assert len(body) > ASYNC_BYTES
    r = actor.client.post(f"/api/v1/projects/{project['id']}/items", content=body, **kw)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "queued"
    job_id: int = r.json()["job_id"]
    return job_id


def test_large_upload_is_imported_by_a_worker(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory(items=0)
    body = jsonl(make_items("pairwise", 50))
    job_id = post_file(researcher, p, body)

    # Before any worker runs: the job is queued, its file stored, its message on the broker.
    job = job_row(job_id)
    assert job["status"] == "queued"
    assert job["kind"] == "items.import"
    assert job["project_id"] == p["id"]
    assert job["params"] == {"format": "jsonl", "bytes": len(body)}
    blob = sql("SELECT data FROM job_blobs WHERE job_id = %s ORDER BY seq", job_id)
    assert b"".join(r[0] for r in blob) == body
    assert queued_job_ids() == [job_id]
    assert item_count(p["id"]) == 0
    r = researcher.client.get(f"/api/v1/jobs/{job_id}")
    assert (r.json()["status"], r.json()["progress"]) == ("queued", 0.0)
    assert sql("SELECT actor_id FROM audit_log WHERE action = 'items.import_queued'") == [
        (researcher.id,)
    ]

    with start_worker_now():
        done = wait_for(researcher, job_id)
    assert done["status"] == "succeeded", done
    assert done["result"] == {"created": 50, "skipped": 0}
    assert done["progress"] == 1.0
    assert done["error"] is None
    assert done["attempts"] == 1
    assert done["started_at"] is not None and done["finished_at"] is not None
    assert item_count(p["id"]) == 50
    # The stored file is dropped once imported.
    assert sql("SELECT count(*) FROM job_blobs WHERE job_id = %s", job_id) == [(0,)]


def test_reimporting_a_large_file_as_a_job_skips_everything(
    researcher: Actor, project_factory: ProjectFactory, celery_worker: None
) -> None:
    p = project_factory("critique", items=0)
    body = jsonl(make_items("critique", 40))
    first = wait_for(researcher, post_file(researcher, p, body))
    second = wait_for(researcher, post_file(researcher, p, body))
    assert first["result"] == {"created": 40, "skipped": 0}, first["error"]
    assert second["result"] == {"created": 0, "skipped": 40}
    assert item_count(p["id"]) == 40


def test_multipart_parquet_upload_as_a_job(
    researcher: Actor, project_factory: ProjectFactory, celery_worker: None
) -> None:
    p = project_factory("ranking", items=0)
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(make_items("ranking", 30)), buf)
    r = researcher.client.post(
        f"/api/v1/projects/{p['id']}/items",
        files={"file": ("items.parquet", buf.getvalue(), "application/octet-stream")},
    )
    assert r.status_code == 202, r.text
    job = wait_for(researcher, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert job["result"] == {"created": 30, "skipped": 0}
    assert job_row(job["id"])["params"]["format"] == "parquet"
    assert item_count(p["id"]) == 30


def test_a_bad_file_job_fails_with_the_row_and_imports_nothing(
    researcher: Actor, project_factory: ProjectFactory, celery_worker: None
) -> None:
    p = project_factory(items=0)
    rows = make_items("pairwise", 40)
    rows[29]["responses"] = []
    job = wait_for(researcher, post_file(researcher, p, jsonl(rows)))
    assert job["status"] == "failed"
    assert "row 30" in job["error"]
    assert job["result"] is None
    assert item_count(p["id"]) == 0


def test_a_queued_upload_is_checked_for_format_and_membership_first(
    researcher: Actor, project_factory: ProjectFactory, make_user: Callable[..., Actor]
) -> None:
    p = project_factory(items=0)
    big = jsonl(make_items("pairwise", 20))
    outsider = make_user("researcher")
    r = outsider.client.post(f"/api/v1/projects/{p['id']}/items", content=big)
    assert r.status_code == 404
    r = researcher.client.post(f"/api/v1/projects/{p['id']}/items", content=b"?" * 2000)
    assert r.status_code == 422
    assert sql("SELECT count(*) FROM jobs") == [(0,)]
    assert sql("SELECT count(*) FROM job_blobs") == [(0,)]
    assert queued_job_ids() == []


def test_an_import_job_is_visible_to_researchers_of_its_project(
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    admin: Actor,
) -> None:
    annotator = make_user("annotator")
    colleague = make_user("researcher")
    p = project_factory(items=0, members=(annotator, colleague))
    job_id = post_file(researcher, p, jsonl(make_items("pairwise", 20)))
    # Imports are researcher work: an annotator member sees them no more than an outsider.
    for other in (make_user("researcher"), make_user("annotator"), annotator):
        r = other.client.get(f"/api/v1/jobs/{job_id}")
        assert r.status_code == 404
        assert str(job_id) in r.json()["detail"]
    for allowed in (researcher, colleague, admin):
        assert allowed.client.get(f"/api/v1/jobs/{job_id}").status_code == 200
    assert researcher.client.get("/api/v1/jobs/987654").status_code == 404


def test_running_the_same_job_twice_imports_once(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory(items=0)
    rows = [{"prompt": f"p{i}", "responses": [{"text": "a"}, {"text": "b"}]} for i in range(30)]
    job_id = post_file(researcher, p, jsonl(rows))
    assert runner.run_job(job_id) == "done"
    assert runner.run_job(job_id) == "skipped"
    assert item_count(p["id"]) == 30
    job = job_row(job_id)
    assert (job["status"], job["attempts"]) == ("succeeded", 1)
    assert job["result"] == {"created": 30, "skipped": 0}


def test_unknown_job_id_is_skipped() -> None:
    assert runner.run_job(424242) == "skipped"


def test_a_job_whose_lock_lapsed_is_claimed_again(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p = project_factory(items=0)
    job_id = post_file(researcher, p, jsonl(make_items("pairwise", 20)))
    # A worker claimed it and is still within its lock: nobody else may run it.
    sql(
        "UPDATE jobs SET status = 'running', attempts = 1,"
        " locked_until = now() + interval '5 minutes' WHERE id = %s",
        job_id,
    )
    assert runner.run_job(job_id) == "skipped"
    assert item_count(p["id"]) == 0
    # That worker died: once its lock lapses the job is claimed and run again.
    sql("UPDATE jobs SET locked_until = now() - interval '1 second' WHERE id = %s", job_id)
    assert runner.run_job(job_id) == "done"
    job = job_row(job_id)
    assert (job["status"], job["attempts"], job["progress"]) == ("succeeded", 2, 1.0)
    assert item_count(p["id"]) == 20


def test_a_run_that_lost_its_claim_rolls_back(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    """Two runs of one job (the first's lock lapsed while it waited): the effect counts once."""
    p = project_factory(items=0)
    rows = [{"prompt": f"p{i}", "responses": [{"text": "a"}, {"text": "b"}]} for i in range(25)]
    job_id = post_file(researcher, p, jsonl(rows))
    results: list[str] = []

    def run() -> None:
        results.append(runner.run_job(job_id))

    def wait_until(query: str, expected: object) -> None:
        deadline = time.monotonic() + 10
        while sql(query, job_id)[0][0] != expected:
            assert time.monotonic() < deadline, query
            time.sleep(0.02)

    # Hold the project's import lock so that both runs claim the job and then wait inside it.
    with psycopg.connect(os.environ["TANDEM_DATABASE_URL"], autocommit=True) as holder:
        holder.execute(
            "SELECT pg_advisory_lock(hashtextextended('tandem-import:' || %s::text, 0))",
            (p["id"],),
        )
        first = threading.Thread(target=run)
        first.start()
        wait_until("SELECT attempts FROM jobs WHERE id = %s", 1)
        sql("UPDATE jobs SET locked_until = now() - interval '1 second' WHERE id = %s", job_id)
        second = threading.Thread(target=run)
        second.start()
        wait_until("SELECT attempts FROM jobs WHERE id = %s", 2)
    first.join(20)
    second.join(20)
    assert sorted(results) == ["done", "skipped"]
    assert item_count(p["id"]) == 25
    job = job_row(job_id)
    assert (job["status"], job["result"]) == ("succeeded", {"created": 25, "skipped": 0})


def test_progress_is_reported_and_renews_the_lock(
    researcher: Actor, project_factory: ProjectFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import text

    from app.items import importer
    from app.jobs import claims

    monkeypatch.setattr(importer, "BATCH_ROWS", 10)
    seen: list[tuple[float, float, str, float]] = []
    original = claims.renew

    def spy(session: Any, job_id: int, attempt: int, **kw: Any) -> Any:
        """Records each progress report as the job row then reads (in the reporter's session)."""
        renewal = original(session, job_id, attempt, **kw)
        if kw.get("progress") is not None:
            row = session.execute(
                text(
                    "SELECT progress, status, extract(epoch FROM locked_until - now())"
                    " FROM jobs WHERE id = :id"
                ),
                {"id": job_id},
            ).one()
            seen.append((kw["progress"], row[0], row[1], float(row[2])))
        return renewal

    monkeypatch.setattr(claims, "renew", spy)
    p = project_factory(items=0)
    job_id = post_file(researcher, p, jsonl(make_items("pairwise", 50)))
    assert runner.run_job(job_id) == "done"
    fractions = [s[0] for s in seen]
    assert len(fractions) == 5  # one report per batch of 10 rows
    assert fractions == sorted(fractions)
    assert all(0 < f < 1 for f in fractions)
    assert [s[1] for s in seen] == pytest.approx(fractions)
    assert {s[2] for s in seen} == {"running"}
    # Each report pushes the claim a full lease ahead.
    lease = get_settings().job_lease_seconds
    assert all(lease - 5 < s[3] <= lease for s in seen)
    assert job_row(job_id)["progress"] == 1.0


def test_unknown_job_kind_fails_cleanly(researcher: Actor) -> None:
    job_id = sql(
        "INSERT INTO jobs (kind, created_by) VALUES ('no.such.kind', %s) RETURNING id",
        researcher.id,
    )[0][0]
    assert runner.run_job(job_id) == "failed"
    job = job_row(job_id)
    assert job["status"] == "failed"
    assert "no.such.kind" in job["error"]


def test_sweeper_resends_jobs_whose_message_was_lost(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    from app.jobs.sweeper import sweep

    def sweep_once() -> int:
        report = sweep(broker())
        return len(report.resent) + len(report.settled)

    p = project_factory(items=0)
    old = post_file(researcher, p, jsonl(make_items("pairwise", 20, prefix="old")))
    fresh = post_file(researcher, p, jsonl(make_items("pairwise", 20, prefix="fresh")))
    lapsed = post_file(researcher, p, jsonl(make_items("pairwise", 20, prefix="lapsed")))
    running = post_file(researcher, p, jsonl(make_items("pairwise", 20, prefix="running")))
    assert queued_job_ids() == sorted([old, fresh, lapsed, running])
    broker().delete("default")  # the messages are lost
    sql(
        "UPDATE jobs SET created_at = now() - interval '2 minutes',"
        " due_at = now() - interval '2 minutes' WHERE id <> %s",
        fresh,
    )
    sql(
        "UPDATE jobs SET status = 'running', attempts = 1,"
        " locked_until = now() - interval '1 second' WHERE id = %s",
        lapsed,
    )
    sql(
        "UPDATE jobs SET status = 'running', attempts = 1,"
        " locked_until = now() + interval '5 minutes' WHERE id = %s",
        running,
    )

    # Queued for over a minute, or running with a lapsed lock: re-sent. The rest: left alone.
    assert sweep_once() == 2
    assert queued_job_ids() == sorted([old, lapsed])
    # Swept again soon after: not sent a second time.
    assert sweep_once() == 0
    assert queued_job_ids() == sorted([old, lapsed])

    with start_worker_now():
        assert wait_for(researcher, old)["status"] == "succeeded"
        assert wait_for(researcher, lapsed)["status"] == "succeeded"
    assert job_row(lapsed)["attempts"] == 2
    assert job_row(fresh)["status"] == "queued"
    assert job_row(running)["status"] == "running"
    assert item_count(p["id"]) == 40
