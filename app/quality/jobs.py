"""Job kinds of the quality domain: refreshing a project's cached statistics."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from app.jobs import queues
from app.jobs.specs import JobSpec, Mode

if TYPE_CHECKING:
    from app.jobs.context import JobContext


def run_refresh(ctx: JobContext) -> dict[str, Any]:
    """Compute every statistic in one REPEATABLE READ snapshot (no job transaction held
    meanwhile), then store it and apply the gold policy's pauses in one fenced commit."""
    import time

    from sqlalchemy import text

    from app.db import get_engine
    from app.quality import service
    from app.quality.compute import compute

    project_id = int(ctx.params["project_id"])
    with ctx.transaction() as session:
        policy = service.gold_policy(session, project_id)
    started = time.monotonic()
    with get_engine().connect() as conn, conn.begin():
        conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        payload = compute(conn, project_id, policy, lambda f, step: ctx.progress(f, {"step": step}))
    duration_ms = int((time.monotonic() - started) * 1000)
    ctx.progress(0.95)
    result = {"project_id": project_id, "duration_ms": duration_ms}
    with ctx.complete(result) as session:
        paused = service.store_snapshot(session, project_id, payload, duration_ms)
    return {**result, "paused": paused}


REFRESH = JobSpec(
    kind="stats.refresh",
    mode=Mode.external,
    handler=run_refresh,
    queue=queues.DEFAULT,
    max_attempts=2,
    time_limit=timedelta(minutes=30),
)
