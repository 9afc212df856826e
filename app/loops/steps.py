"""What each step of an iteration starts, and what it records once its job succeeded.

Every step goes through the domain's own service (generation, routing, judges, exports,
training runs): a loop does nothing a researcher could not do by hand, and its jobs, runs,
snapshots and models are the ordinary ones, on their ordinary pages. Services are called as
the loop's creator, so their permission rules hold for loops too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.auth.models import ROLE_RANK, Role, User
from app.auth.service import Principal
from app.errors import Forbidden
from app.exports.models import Export
from app.exports.schemas import ONLY_FOR, ExportOptions, Schema, Style
from app.exports.service import request_snapshot
from app.generation.schemas import GenerateRequest
from app.generation.service import request_generation
from app.jobs import service as jobs
from app.jobs.models import Job
from app.loops.jobs import EVALUATE
from app.loops.models import Loop, LoopIteration, LoopStep, StepName, StepStatus
from app.projects.models import Project
from app.routing.models import ProjectRouting
from app.routing.schemas import RouteRequest
from app.routing.service import request_route
from app.training.runs.kinds import DEFAULT_SCHEMA, RunKind
from app.training.runs.models import TrainingRun
from app.training.runs.schemas import RunCreate
from app.training.runs.service import create_run


class LoopStop(Exception):
    """A stop rule ended the loop (not a failure): the loop ends `stopped` with this reason."""


@dataclass(frozen=True, slots=True)
class Started:
    status: StepStatus
    job_id: int | None = None
    links: dict[str, Any] | None = None
    detail: dict[str, Any] | None = None


def creator(session: Session, loop: Loop) -> Principal:
    """The loop's creator as the services see a caller (their rules apply to every step)."""
    user = session.get(User, loop.created_by) if loop.created_by is not None else None
    if user is None or getattr(user, "disabled", False):
        raise Forbidden(f"Loop {loop.id}'s creator no longer exists or is disabled.")
    role = Role(user.role)
    if ROLE_RANK[role] < ROLE_RANK[Role.researcher]:
        raise Forbidden(f"Loop {loop.id}'s creator is no longer a researcher.")
    return Principal(id=user.id, email=user.email, role=role, token="")


def prompt_seed(loop_id: int, iteration: int) -> int:
    """The seed of iteration i's sample of a prompt set (a different sample each iteration)."""
    return (loop_id * 1009 + iteration) % 2**32


def iteration_prompts(config: dict[str, Any], iteration: int) -> list[str]:
    """Iteration i's prompts: the next `prompts_per_iteration` of the list, wrapping around."""
    prompts: list[str] = config["prompts"]
    k = int(config["prompts_per_iteration"])
    start = ((iteration - 1) * k) % len(prompts)
    return [prompts[(start + j) % len(prompts)] for j in range(k)]


def item_tag(loop_id: int, iteration: int) -> dict[str, int]:
    """The metadata every item of an iteration carries; snapshots select on `loop_id`."""
    return {"loop_id": loop_id, "loop_iteration": iteration}


def _schema(config: dict[str, Any], kind: RunKind, project: Project) -> str | None:
    del config
    schema = DEFAULT_SCHEMA[kind].get(project.kind)
    return None if schema is None else schema.value


def _snapshot_options(schema: str | None, loop_id: int) -> dict[str, Any]:
    """The loop's snapshot options. Conversational rows where the schema has a style: the
    loop's policy samples its items and its evaluation through its chat template, so the
    updates (DPO, expert iteration's sampling) and the reward model must see the same
    template; standard rows would train on bare `prompt + response` text instead."""
    options: dict[str, Any] = {"schema": schema, "metadata": {"loop_id": loop_id}}
    if schema is not None and Schema(schema) in ONLY_FOR["style"]:
        options["style"] = Style.conversational.value
    return options


def _iteration(session: Session, loop: Loop, n: int) -> LoopIteration:
    return session.scalars(
        select(LoopIteration).where(LoopIteration.loop_id == loop.id, LoopIteration.iteration == n)
    ).one()


def _step_links(session: Session, loop: Loop, n: int, step: StepName) -> dict[str, Any]:
    row = session.scalars(
        select(LoopStep).where(
            LoopStep.loop_id == loop.id, LoopStep.iteration == n, LoopStep.step == step
        )
    ).one_or_none()
    return dict(row.links) if row is not None else {}


# -- starting a step --------------------------------------------------------------------------


def start(session: Session, loop: Loop, n: int, step: StepName) -> Started:
    """Start `step` of iteration `n` (its job is enqueued in the caller's transaction)."""
    cfg = loop.config
    project = session.get_one(Project, loop.project_id)
    it = _iteration(session, loop, n)
    if step is StepName.generate:
        sampling = cfg["sampling"]
        if cfg.get("prompt_set_id") is not None:
            source: dict[str, Any] = {
                "prompt_set_id": cfg["prompt_set_id"],
                "prompt_sample": cfg["prompts_per_iteration"],
                "prompt_seed": prompt_seed(loop.id, n),
            }
        else:
            source = {"prompts": iteration_prompts(cfg, n)}
        body = GenerateRequest(
            model_id=it.policy_model_id,
            **source,
            n=sampling["n"],
            responses_per_item=sampling.get("responses_per_item"),
            sampling=sampling["params"],
            backend=sampling["backend"],
            backend_params=sampling["backend_params"],
        )
        job = request_generation(session, creator(session, loop), project.id, body)
        return Started(StepStatus.running, job.id, {"prompts": cfg["prompts_per_iteration"]})
    if step is StepName.route:
        if session.get(ProjectRouting, project.id) is not None:
            job = request_route(session, creator(session, loop), project.id, RouteRequest())
            return Started(StepStatus.running, job.id)
        judge_ids = list(cfg.get("judge_ids") or [])
        if not judge_ids:
            return Started(StepStatus.skipped, detail={"note": "no routing and no judges"})
        from app.routing.judging import start_runs

        items = iteration_items(session, loop, n)
        started = start_runs(
            session, project.id, project.kind.value, judge_ids, items, loop.created_by
        )
        return Started(StepStatus.succeeded, links={"judge_jobs": started})
    if step is StepName.labels:
        seconds = int(cfg["stop"]["label_deadline_seconds"])
        now = session.execute(select(func.now())).scalar_one()
        it.label_deadline = now + timedelta(seconds=seconds)
        return Started(StepStatus.waiting)
    if step is StepName.snapshot:
        schema = _schema(cfg, RunKind.reward_model, project)
        options = ExportOptions.model_validate(_snapshot_options(schema, loop.id))
        export, job = request_snapshot(session, creator(session, loop), project.id, options)
        return Started(StepStatus.running, job.id, {"export_id": export.id})
    if step is StepName.reward_model:
        export_id = int(_step_links(session, loop, n, StepName.snapshot)["export_id"])
        run, job = create_run(
            session,
            creator(session, loop),
            RunCreate(
                kind=RunKind.reward_model,
                export_id=export_id,
                base_model_id=cfg["reward_model"]["base_model_id"],
                config=cfg["reward_model"]["config"],
            ),
        )
        return Started(StepStatus.running, job.id, {"training_run_id": run.id})
    if step is StepName.update:
        kind = RunKind(cfg["update"]["kind"])
        export_id = int(_step_links(session, loop, n, StepName.snapshot)["export_id"])
        rm_schema = _schema(cfg, RunKind.reward_model, project)
        run_body: dict[str, Any] = {
            "kind": kind,
            "base_model_id": it.policy_model_id,
            "reward_model_id": it.reward_model_id,
            "config": cfg["update"]["config"],
        }
        if _schema(cfg, kind, project) == rm_schema:
            run_body["export_id"] = export_id
        else:  # e.g. DPO on a ranking project: its own (preference) snapshot of the loop's items
            own = _snapshot_options(_schema(cfg, kind, project), loop.id)
            own.pop("schema")
            run_body |= {"project_id": project.id, "export": own}
        run, job = create_run(session, creator(session, loop), RunCreate.model_validate(run_body))
        return Started(StepStatus.running, job.id, {"training_run_id": run.id})
    assert step is StepName.evaluate
    job = jobs.enqueue(
        session,
        EVALUATE,
        {"loop_id": loop.id, "iteration": n},
        project_id=project.id,
        created_by=loop.created_by,
    )
    return Started(StepStatus.running, job.id)


# -- a step's job succeeded -------------------------------------------------------------------


def finished(session: Session, loop: Loop, row: LoopStep, job: Job) -> dict[str, Any]:
    """Record what the succeeded job made; returns links to add. Raises LoopStop when there is
    nothing to go on with (no items, no rows)."""
    result = dict(job.result or {})
    it = _iteration(session, loop, row.iteration)
    if row.step is StepName.generate:
        created = int(result.get("items_created", 0))
        # Tag the iteration's items (the generation job's ones) for the labels step and for
        # the loop's snapshots.
        session.execute(
            text(
                "UPDATE items SET metadata = metadata || CAST(:tag AS jsonb)"
                " WHERE project_id = :pid AND metadata @> CAST(:job AS jsonb)"
            ),
            {
                "tag": orjson.dumps(item_tag(loop.id, row.iteration)).decode(),
                "pid": loop.project_id,
                "job": orjson.dumps({"job_id": job.id}).decode(),
            },
        )
        if created == 0:
            raise LoopStop(f"iteration {row.iteration}: the policy's samples made no items")
        return {"items": created, "skipped_empty": result.get("skipped_empty", 0)}
    if row.step is StepName.route:
        return {
            "judge_jobs": list(result.get("judge_jobs") or []),
            "routed": result.get("routed"),
            "counts": result.get("counts"),
        }
    if row.step is StepName.snapshot:
        export = session.get_one(Export, int(row.links["export_id"]))
        if not export.rows:
            raise LoopStop(
                f"iteration {row.iteration}: snapshot {export.id} has no rows to train on"
            )
        return {"rows": export.rows, "sha256": export.sha256}
    if row.step in (StepName.reward_model, StepName.update):
        run = session.get_one(TrainingRun, int(row.links["training_run_id"]))
        metrics = run.metrics or {}
        if row.step is StepName.reward_model:
            it.reward_model_id = run.model_version_id
            accuracy = metrics.get("heldout_accuracy")
            return {"model_id": run.model_version_id, "accuracy": accuracy}
        # best_of_n keeps its samples only: the policy's weights stay what they were.
        it.new_policy_model_id = run.model_version_id or it.policy_model_id
        return {"model_id": run.model_version_id, "export_id": run.export_id}
    assert row.step is StepName.evaluate
    it.finished_at = func.now()
    return {}


# -- the labels step --------------------------------------------------------------------------


def iteration_items(session: Session, loop: Loop, n: int) -> list[int]:
    return list(
        session.scalars(
            text(
                "SELECT id FROM items WHERE project_id = :pid"
                " AND metadata @> CAST(:tag AS jsonb) ORDER BY id"
            ),
            {"pid": loop.project_id, "tag": orjson.dumps(item_tag(loop.id, n)).decode()},
        )
    )


_LABEL_COUNTS = text(
    """
    SELECT count(*) AS items,
           count(*) FILTER (WHERE EXISTS (
               SELECT 1 FROM annotations a WHERE a.item_id = i.id AND NOT a.over_quota)
           ) AS labelled,
           count(*) FILTER (WHERE (i.routing IS NULL OR i.routing <> 'ai') AND (
               i.routing = 'held' OR i.remaining > 0 OR EXISTS (
                   SELECT 1 FROM assignments s WHERE s.item_id = i.id AND s.status = 'leased')
           )) AS waiting_human
    FROM items i
    WHERE i.project_id = :pid AND i.metadata @> CAST(:tag AS jsonb)
    """
)


@dataclass(frozen=True, slots=True)
class LabelCounts:
    items: int
    labelled: int
    waiting_human: int
    waiting_judges: int

    @property
    def complete(self) -> bool:
        return self.waiting_human == 0 and self.waiting_judges == 0

    def as_dict(self) -> dict[str, int]:
        return {
            "items": self.items,
            "labelled": self.labelled,
            "waiting_human": self.waiting_human,
            "waiting_judges": self.waiting_judges,
        }


# Judge runs of the project still to finish that cover some of the iteration's items: the
# route step's own, and any other (a route job the import started, a researcher's run).
_JUDGES_PENDING = text(
    """
    SELECT count(*) FROM judge_runs r JOIN jobs j ON j.id = r.job_id
    WHERE r.project_id = :pid AND j.status IN ('queued', 'running')
      AND (jsonb_typeof(r.items) IS DISTINCT FROM 'array' OR EXISTS (
          SELECT 1 FROM jsonb_array_elements_text(r.items) e
          WHERE CAST(e AS bigint) = ANY(CAST(:ids AS bigint[]))))
    """
)


def label_counts(session: Session, loop: Loop, n: int) -> LabelCounts:
    tag = orjson.dumps(item_tag(loop.id, n)).decode()
    row = session.execute(_LABEL_COUNTS, {"pid": loop.project_id, "tag": tag}).one()
    ids = iteration_items(session, loop, n)
    waiting_judges = int(session.scalar(_JUDGES_PENDING, {"pid": loop.project_id, "ids": ids}) or 0)
    return LabelCounts(int(row[0]), int(row[1]), int(row[2]), waiting_judges)
