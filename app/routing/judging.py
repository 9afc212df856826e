"""The route job's judge step, through app/judges: a judge run per judge of the pool on the
items routing needs judged, and the pool's outputs read back as routing signals.

Runs are recorded and enqueued like any judge run (`judges.run` jobs, exactly once per item,
judge and template version). When routing must read the judgements before deciding
(uncertainty, learned) the route job runs those jobs itself, in-process, through the job
runner: the runner's claim makes a worker that receives the same message skip it, and a run
a worker already holds is waited for.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.jobs import service as jobs
from app.jobs.context import JobContext, JobFailed
from app.jobs.models import Job, JobStatus
from app.judges.jobs import RUN
from app.judges.models import Judge, JudgeRun
from app.judges.service import resolve_template

WAIT_POLL_S = 1.0


def start_runs(
    session: Session,
    project_id: int,
    kind: str,
    judge_ids: Sequence[int],
    item_ids: Sequence[int],
    created_by: int | None,
) -> list[int]:
    """Record and enqueue a judge run per enabled judge on these items; their job ids.

    The same as `app.judges.service.start_run` without its caller checks: the route job acts
    for whoever asked for routing (or for the import that triggered it)."""
    if not item_ids:
        return []
    job_ids = []
    template = resolve_template(session, kind, None)
    template.used = True
    for judge in session.scalars(select(Judge).where(Judge.id.in_(list(judge_ids)))):
        if not judge.enabled:
            continue
        run = JudgeRun(
            project_id=project_id,
            judge_id=judge.id,
            template_id=template.id,
            created_by=created_by,
            items=sorted(item_ids),
        )
        session.add(run)
        session.flush()
        job = jobs.enqueue(
            session,
            RUN,
            {"run_id": run.id, "backend": judge.backend},
            project_id=project_id,
            created_by=created_by,
        )
        run.job_id = job.id
        job_ids.append(job.id)
    session.flush()
    return job_ids


def run_and_wait(ctx: JobContext, job_ids: Sequence[int]) -> None:
    """Run the judge jobs here (or wait for the worker that took them); fail if one failed."""
    from app.db import session_scope
    from app.jobs import runner

    for job_id in job_ids:
        runner.run_job(job_id)
        while True:
            with session_scope() as s:
                job = s.get_one(Job, job_id)
                status, error = job.status, job.error
            if status == JobStatus.succeeded:
                break
            if status in (JobStatus.failed, JobStatus.cancelled):
                raise JobFailed(f"The judge run of job {job_id} {status}: {error or 'no reason'}.")
            ctx.heartbeat()
            if ctx.cancelled():
                return
            time.sleep(WAIT_POLL_S)


_UNJUDGED = text(
    """
    SELECT t.id FROM unnest(CAST(:ids AS bigint[])) AS t(id)
    WHERE EXISTS (
        SELECT 1 FROM unnest(CAST(:judges AS bigint[])) AS j(id)
        WHERE NOT EXISTS (
            SELECT 1 FROM judge_outputs o WHERE o.item_id = t.id AND o.judge_id = j.id
        )
    )
    ORDER BY t.id
    """
)


def unjudged(session: Session, judge_ids: Sequence[int], item_ids: Sequence[int]) -> list[int]:
    """Items that some judge of the pool has no output on yet (any template version)."""
    if not judge_ids or not item_ids:
        return []
    found = session.scalars(_UNJUDGED, {"ids": list(item_ids), "judges": list(judge_ids)})
    return list(found)
