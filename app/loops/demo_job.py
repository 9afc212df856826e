"""The demo project's button: the closed-loop demo as a job (app/loops/demo.py does the work).

The job runs the same code as `tandem demo loop`: it drives the loop's steps itself and serves
the simulated annotators from a local web server in the worker process, so it finishes on a
worker with a single slot too. A re-delivered job goes on with the loop its first attempt
started (checkpointed), never starts a second one.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.service import record
from app.auth.models import Role
from app.auth.service import Principal, require_role
from app.demo.seed import LOOP_PROJECT
from app.errors import Invalid
from app.jobs import queues
from app.jobs import service as jobs
from app.jobs.models import UNFINISHED, Job
from app.jobs.specs import JobSpec, Mode
from app.projects.service import get_project

if TYPE_CHECKING:
    from app.jobs.context import JobContext


class DemoLoopStart(BaseModel):
    """What the button's form may change; the rest is the demo's recipe."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, ge=0, le=2**31 - 1)
    iterations: int = Field(2, ge=1, le=3)


def run_demo_job(ctx: JobContext) -> dict[str, Any]:
    from app.loops.demo import DemoSettings, run_demo

    body = DemoLoopStart.model_validate(ctx.params)
    state = ctx.resume_state() or {}
    settings = DemoSettings(seed=body.seed, iterations=body.iterations)

    def out(line: str) -> None:
        ctx.progress(0.5, {"line": line[:300]})

    result = run_demo(
        settings,
        out=out,
        loop_id=state.get("loop_id"),
        on_start=lambda loop_id: ctx.checkpoint({"loop_id": loop_id}),
    )
    return result.as_dict()


DEMO_LOOP = JobSpec(
    kind="loops.demo",
    mode=Mode.external,
    handler=run_demo_job,
    queue=queues.gpu_else(queues.CPU_TRAIN),
    max_attempts=2,
    time_limit=timedelta(hours=2),
    visible_to=Role.researcher,
)


def request_demo_loop(
    session: Session, principal: Principal, project_id: int, body: DemoLoopStart
) -> Job:
    """Queue the demo in the demo loop project (researchers who are its members)."""
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    if project.name != LOOP_PROJECT:
        raise Invalid(
            f"The closed-loop demo runs in the project {LOOP_PROJECT!r} (`tandem demo` creates"
            " it), not in this one."
        )
    from app.loops.demo import refuse_if_busy

    session.refresh(project, with_for_update=True)  # two clicks at once: one queues
    queued = session.scalar(
        select(Job.id)
        .where(
            Job.project_id == project.id,
            Job.kind == DEMO_LOOP.kind,
            Job.status.in_([s.value for s in UNFINISHED]),
        )
        .limit(1)
    )
    refuse_if_busy(session, project.id, queued_demo_job=queued)
    job = jobs.enqueue(
        session, DEMO_LOOP, body.model_dump(), project_id=project.id, created_by=principal.id
    )
    record(session, principal.id, "loops.demo", "project", project.id, job_id=job.id)
    return job
