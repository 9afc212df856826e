"""Moving a loop on: settle its current step from its job, start the next step, apply the
stop rule while waiting for labels.

`advance(session, loop_id)` runs under the loop row's lock (FOR UPDATE SKIP LOCKED: a second
advancer passes the loop by) and writes in the caller's transaction: the finished step's
record, the next step's row and that step's job commit together or not at all. A step row is
unique per (loop, iteration, step), so however often advance runs, or whichever worker dies
in between, a step starts once. Nothing here waits: the worker's sweeper calls `advance_all`
every tick (app/loops/jobs.py ADVANCE), and the loop page shows what it waits for.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import session_scope
from app.errors import DomainError
from app.jobs.models import Job, JobStatus
from app.loops import steps
from app.loops.models import (
    ACTIVE,
    STEPS,
    Loop,
    LoopIteration,
    LoopStatus,
    LoopStep,
    StepName,
    StepStatus,
)

log = logging.getLogger(__name__)
DONE = (StepStatus.succeeded, StepStatus.skipped)


def current_step(session: Session, loop_id: int) -> LoopStep | None:
    return session.scalars(
        select(LoopStep).where(LoopStep.loop_id == loop_id).order_by(LoopStep.id.desc()).limit(1)
    ).one_or_none()


def _end(loop: Loop, status: LoopStatus, reason: str | None) -> None:
    loop.status = status
    loop.reason = reason
    loop.finished_at = func.now()
    loop.updated_at = func.now()


def _next(loop: Loop, row: LoopStep) -> tuple[int, StepName] | None:
    i = STEPS.index(row.step)
    if i + 1 < len(STEPS):
        return row.iteration, STEPS[i + 1]
    if row.iteration < int(loop.config["iterations"]):
        return row.iteration + 1, StepName.generate
    return None


def begin_iteration(session: Session, loop: Loop, n: int) -> None:
    """Iteration n's row: it samples with the policy the previous iteration made."""
    if n == 1:
        policy = int(loop.config["policy_model_id"])
    else:
        prev = session.scalars(
            select(LoopIteration).where(
                LoopIteration.loop_id == loop.id, LoopIteration.iteration == n - 1
            )
        ).one()
        policy = prev.new_policy_model_id or prev.policy_model_id
    session.add(LoopIteration(loop_id=loop.id, iteration=n, policy_model_id=policy))
    session.flush()


def start_step(session: Session, loop: Loop, n: int, step: StepName) -> LoopStep:
    """The step's row and its job, in this transaction (a DomainError leaves neither)."""
    with session.begin_nested():
        if step is StepName.generate:
            begin_iteration(session, loop, n)
        started = steps.start(session, loop, n, step)
        row = LoopStep(
            loop_id=loop.id,
            iteration=n,
            step=step,
            status=started.status,
            job_id=started.job_id,
            links=started.links or {},
            detail=started.detail,
        )
        if started.status in DONE:
            row.finished_at = func.now()
        session.add(row)
        session.flush()
    loop.updated_at = func.now()
    return row


def _settle(session: Session, loop: Loop, row: LoopStep) -> None:
    """A running step whose job ended: record it, or end the loop."""
    job = session.get(Job, row.job_id) if row.job_id is not None else None
    if job is None:
        row.status = StepStatus.failed
        row.error = "its job no longer exists"
        _end(loop, LoopStatus.failed, f"iteration {row.iteration} {row.step.value}: {row.error}")
        return
    if job.status in (JobStatus.queued.value, JobStatus.running.value):
        return
    row.finished_at = func.now()
    if job.status == JobStatus.succeeded.value:
        try:
            with session.begin_nested():
                links = steps.finished(session, loop, row, job)
        except steps.LoopStop as stop:
            row.status = StepStatus.stopped
            row.error = str(stop)
            _end(loop, LoopStatus.stopped, str(stop))
            return
        except DomainError as err:  # what the job made is gone or unusable (a deleted run)
            row.status = StepStatus.failed
            row.error = err.message
            _end(
                loop,
                LoopStatus.failed,
                f"iteration {row.iteration} {row.step.value}: {err.message}",
            )
            return
        row.links = {**row.links, **links}
        row.detail = {"result": job.result}
        row.status = StepStatus.succeeded
        return
    cancelled = job.status == JobStatus.cancelled.value
    row.status = StepStatus.cancelled if cancelled else StepStatus.failed
    row.error = "its job was cancelled" if cancelled else (job.error or "its job failed")
    _end(
        loop,
        LoopStatus.failed,
        f"iteration {row.iteration} {row.step.value}: {row.error} (job {job.id})",
    )


def _check_labels(session: Session, loop: Loop, row: LoopStep) -> None:
    """The labels step: done when every item has its labels; at the deadline, the stop rule."""
    it = session.scalars(
        select(LoopIteration).where(
            LoopIteration.loop_id == loop.id, LoopIteration.iteration == row.iteration
        )
    ).one()
    counts = steps.label_counts(session, loop, row.iteration)
    rules = loop.config["stop"]
    minimum = int(rules["min_labels"])
    row.detail = {**counts.as_dict(), "min_labels": minimum}
    now = session.execute(select(func.now())).scalar_one()
    past = it.label_deadline is not None and now >= it.label_deadline
    if counts.complete and counts.labelled >= minimum:
        row.status = StepStatus.succeeded
        row.finished_at = func.now()
        return
    if not counts.complete and not past:
        return
    n, of = counts.labelled, counts.items
    if counts.complete:  # every item is settled, but too few have labels
        reason = f"iteration {row.iteration}: only {n} of {of} items got labels (minimum {minimum})"
    elif rules["at_deadline"] == "proceed" and n >= minimum:
        row.status = StepStatus.succeeded
        row.finished_at = func.now()
        row.detail = {**row.detail, "note": f"deadline passed: went on with {n} of {of} labelled"}
        return
    elif rules["at_deadline"] == "proceed":
        reason = (
            f"iteration {row.iteration}: at the label deadline only {n} of {of} items were"
            f" labelled (minimum {minimum})"
        )
    else:
        reason = (
            f"iteration {row.iteration}: the label deadline passed with {n} of {of} items"
            " labelled (stop rule: stop)"
        )
    row.status = StepStatus.stopped
    row.error = reason
    row.finished_at = func.now()
    _end(loop, LoopStatus.stopped, reason)


def advance(session: Session, loop_id: int) -> LoopStep | None:
    """Move the loop on as far as it can go now; returns its current step."""
    loop = session.scalars(
        select(Loop).where(Loop.id == loop_id).with_for_update(skip_locked=True)
    ).one_or_none()
    if loop is None or loop.status not in ACTIVE:
        return None
    row = current_step(session, loop.id)
    for _ in range(len(STEPS) + 1):  # skipped and instant steps chain within one call
        if row is None:
            nxt: tuple[int, StepName] | None = (1, StepName.generate)
        elif row.status is StepStatus.running:
            _settle(session, loop, row)
            if row.status is StepStatus.running or loop.status not in ACTIVE:
                return row
            continue
        elif row.status is StepStatus.waiting:
            if loop.status is not LoopStatus.running:
                return row
            _check_labels(session, loop, row)
            if row.status is StepStatus.waiting or loop.status not in ACTIVE:
                return row
            continue
        elif row.status in DONE:
            nxt = _next(loop, row)
        else:  # failed, cancelled or stopped: the loop has ended with it
            return row
        if loop.status is not LoopStatus.running:
            return row  # paused: the next step waits for resume
        if nxt is None:
            _end(loop, LoopStatus.succeeded, None)
            return row
        try:
            row = start_step(session, loop, *nxt)
        except DomainError as err:
            _end(loop, LoopStatus.failed, f"iteration {nxt[0]} {nxt[1].value}: {err.message}")
            return row
    return row


def advance_all() -> dict[str, Any]:
    """Advance every active loop, each in its own transaction (one loop's trouble is logged and
    leaves the others moving)."""
    with session_scope() as session:
        ids = list(
            session.scalars(select(Loop.id).where(Loop.status.in_(ACTIVE)).order_by(Loop.id))
        )
    moved = 0
    for loop_id in ids:
        try:
            with session_scope() as session:
                advance(session, loop_id)
            moved += 1
        except Exception:
            log.exception("loop %s: advance failed; the next tick retries", loop_id)
    return {"loops": len(ids), "advanced": moved}
