"""Job kinds for the tests only, registered through TANDEM_JOB_MODULES (the plugin hook).

`test.steps` (external) works through `steps` steps; each step's effect is a row in
test_job_effects, committed together with the checkpoint that records it, then progress is
reported. Parameters make it sleep per step, kill its own process (SIGKILL) or raise at a step.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.auth.models import Role
from app.jobs import queues
from app.jobs.context import JobContext
from app.jobs.models import Job
from app.jobs.specs import JobSpec, Mode, Progress

EFFECTS_DDL = (
    "CREATE TABLE IF NOT EXISTS test_job_effects ("
    " job_id bigint NOT NULL, step int NOT NULL, attempt int NOT NULL,"
    " at timestamptz NOT NULL DEFAULT clock_timestamp())"
)
_INSERT = text("INSERT INTO test_job_effects (job_id, step, attempt) VALUES (:j, :s, :a)")


def _misbehave(params: dict[str, Any], step: int, attempt: int) -> None:
    if step == params.get("die_at") and attempt in params.get("die_on", [1]):
        os.kill(os.getpid(), signal.SIGKILL)
    if step == params.get("raise_at"):
        raise RuntimeError(f"boom at step {step}")


def run_steps(ctx: JobContext) -> dict[str, Any]:
    params = dict(ctx.params)
    steps = int(params["steps"])
    found = sorted(p.name for p in ctx.work_dir.iterdir())  # what earlier attempts left
    (ctx.work_dir / f"attempt-{ctx.attempt}").write_text("scratch")
    start = (ctx.resume_state() or {"next": 0})["next"]
    for step in range(start, steps):
        _misbehave(params, step, ctx.attempt)
        time.sleep(float(params.get("sleep", 0)))
        with ctx.transaction() as session:
            session.execute(_INSERT, {"j": ctx.job_id, "s": step, "a": ctx.attempt})
            ctx.checkpoint({"next": step + 1})
        ctx.progress((step + 1) / steps, {"step": step + 1, "of": steps})
    return {"steps": steps, "resumed_at": start, "work_dir_had": found}


def run_steps_in_one_transaction(session: Session, job: Job, progress: Progress) -> dict[str, Any]:
    params = dict(job.params)
    steps = int(params["steps"])
    for step in range(steps):
        _misbehave(params, step, job.attempts)
        time.sleep(float(params.get("sleep", 0)))
        session.execute(_INSERT, {"j": job.id, "s": step, "a": job.attempts})
        progress((step + 1) / steps)
    return {"steps": steps}


STEPS = JobSpec(
    kind="test.steps",
    mode=Mode.external,
    handler=run_steps,
    queue=queues.DEFAULT,
    max_attempts=3,
    time_limit=timedelta(minutes=10),
    retry_backoff=timedelta(seconds=0.2),
    visible_to=Role.annotator,
)

STEPS_IN_ONE_TRANSACTION = JobSpec(
    kind="test.steps_tx",
    mode=Mode.transactional,
    handler=run_steps_in_one_transaction,
    queue=queues.DEFAULT,
    max_attempts=2,
    retry_backoff=timedelta(seconds=0.2),
)

# Seen only by its creator and admins, whatever the role of other members.
ADMIN_ONLY = JobSpec(
    kind="test.admin_only",
    mode=Mode.external,
    handler=run_steps,
    queue=queues.DEFAULT,
    visible_to=Role.admin,
)

# Prefers the GPU worker, else trains on CPU.
GPU_OR_CPU = JobSpec(
    kind="test.gpu_or_cpu",
    mode=Mode.external,
    handler=run_steps,
    queue=queues.gpu_else(queues.CPU_TRAIN),
)
