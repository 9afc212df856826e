"""What the job machinery costs: a handler's progress() and fenced transaction, a whole no-op job
(claim, heartbeat thread, finish), and one sweeper pass over a large backlog.

Self-contained: it creates a scratch database on a PostgreSQL server (dropped afterwards) and
uses one Redis database for the sweeper's reads (its keys are removed afterwards). Runs in this
process, through the same code a worker runs; no Celery worker is involved.

    .venv/bin/python bench/jobs.py                       # local PostgreSQL and Redis db 15
    .venv/bin/python bench/jobs.py --calls 1000 --backlog 50000 --redis redis://host:6379/3
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def line(name: str, ms: list[float]) -> None:
    q = statistics.quantiles(ms, n=20)
    print(f"{name:<44} median {statistics.median(ms):7.2f} ms   p95 {q[18]:7.2f} ms   n={len(ms)}")


def run(calls: int, backlog: int) -> None:
    import redis
    from sqlalchemy import text

    from app.db import session_scope
    from app.jobs import claims, queues, registry, runner, sweeper
    from app.jobs.attempt import Attempt
    from app.jobs.service import enqueue
    from app.jobs.specs import JobSpec, Mode
    from app.migrate import upgrade_head

    upgrade_head()
    client = redis.Redis.from_url(os.environ["TANDEM_REDIS_URL"])

    def noop(ctx: Any) -> dict[str, Any]:
        return {}

    spec = JobSpec("bench.noop", Mode.external, noop, queues.DEFAULT)
    registry.load()[spec.kind] = spec  # type: ignore[index]

    def new_job() -> int:
        with session_scope() as s:
            job = enqueue(s, spec, {})
            s.info.clear()  # measure the database side only: no broker message
            return job.id

    with session_scope() as s:
        s.execute(text("CREATE TABLE bench_effects (job_id bigint, step int)"))
    job_id = new_job()
    with session_scope() as s:
        job = claims.claim(s, job_id)
    assert job is not None
    ctx = Attempt(job)
    step = iter(range(10**9))

    def effect() -> None:
        n = next(step)
        with ctx.transaction() as s:
            s.execute(text("INSERT INTO bench_effects VALUES (:j, :n)"), {"j": job_id, "n": n})
            ctx.checkpoint({"next": n + 1})

    print(f"PostgreSQL {os.environ['TANDEM_DATABASE_URL'].split('@')[-1]}, {calls} calls each")
    line("ctx.progress(fraction, detail)", timed(lambda: ctx.progress(0.5, {"step": 1}), calls))
    line("ctx.transaction(): insert + checkpoint", timed(effect, calls))
    line("ctx.cancelled() (asks at most every 0.5 s)", timed(ctx.cancelled, calls))

    ids = [new_job() for _ in range(calls // 5)]
    t = time.perf_counter()
    outcomes = [runner.run_job(i) for i in ids]
    per_job = (time.perf_counter() - t) / len(ids)
    assert set(outcomes) == {"done"}, set(outcomes)
    print(
        f"{'no-op external job: claim, run, finish':<44} {per_job * 1000:7.2f} ms a job"
        f" ({1 / per_job:.0f} jobs/s, one process)"
    )

    with session_scope() as s:
        s.execute(
            text(
                "INSERT INTO jobs (kind, queue, due_at) SELECT 'bench.noop', 'default',"
                " now() - interval '1 hour' FROM generate_series(1, :n)"
            ),
            {"n": backlog},
        )
        s.execute(text("ANALYZE jobs"))
    client.rpush("default", b"a message that makes the queue a backlog")
    try:
        ms = timed(lambda: sweeper.sweep(client), 20)
    finally:
        client.delete("default")
    line(f"sweeper pass, {backlog:,} queued (a backlog)", ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--pg",
        default=os.environ.get("TANDEM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--backlog", type=int, default=10_000)
    args = parser.parse_args()
    db = f"tandem_bench_jobs_{secrets.token_hex(3)}"
    os.environ.update(
        TANDEM_DATABASE_URL=args.pg.rsplit("/", 1)[0] + "/" + db,
        TANDEM_REDIS_URL=args.redis,
        TANDEM_DATA_DIR=f"/tmp/{db}",
        TANDEM_SECRET_KEY=secrets.token_urlsafe(48),
    )
    with psycopg.connect(args.pg, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    try:
        run(args.calls, args.backlog)
    finally:
        from app.db import get_engine

        get_engine().dispose()
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


if __name__ == "__main__":
    main()
