"""Loop rules: validate a loop whole before anything is written, record it and start its first
step in the caller's transaction; read, list, pause, resume, cancel.

Who may: researchers (and admins) who can see the project. Pause, resume and cancel: the
loop's creator or an admin (the rule of its jobs, which the loop's creator owns).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.service import record
from app.auth.models import Role
from app.auth.service import Principal, require_role
from app.errors import Conflict, Forbidden, Invalid, NotFound, ValidationFailed
from app.generation.service import RESPONSES
from app.inference import registry as backends
from app.jobs import service as jobs
from app.jobs.models import Job
from app.loops import advance as advancer
from app.loops import steps
from app.loops.jobs import human_eval_module
from app.loops.models import (
    ACTIVE,
    Loop,
    LoopIteration,
    LoopStatus,
    LoopStep,
    StepName,
    StepStatus,
)
from app.loops.schemas import (
    IterationOut,
    LoopCreate,
    LoopOut,
    LoopSummary,
    Pending,
    StepOut,
)
from app.pagination import Keyset
from app.projects.models import Project
from app.projects.rules import TaskKind
from app.projects.service import get_project
from app.projects.service import visible_to as project_visible
from app.registry import service as registry
from app.registry.models import ModelKind, ModelVersion
from app.routing.models import ProjectRouting, RoutingPolicyVersion
from app.routing.schemas import RoutingSet
from app.routing.service import set_routing
from app.simulate.rewards import get_reward
from app.training.runs.kinds import DEFAULT_SCHEMA, RunKind
from app.training.runs.service import CONFIGS, PATH_KEYS, build_config


def _model(session: Session, principal: Principal, model_id: int, field: str) -> ModelVersion:
    try:
        return registry.get_version(session, principal, model_id)
    except NotFound:
        raise Invalid(
            f"{field}: model {model_id} does not exist or is not yours to see.", field=field
        ) from None


def _run_config(kind: RunKind, config: dict[str, Any], field: str) -> None:
    """A training run's config as POST /training-runs would check it (errors name `field`)."""
    if "kind" in config:
        raise Invalid(f"{field}.kind: the loop sets the run's kind.", field=f"{field}.kind")
    for key, instead in PATH_KEYS.items():
        if key in config:
            raise Invalid(
                f"{field}.{key} names a model file; the loop takes registered models ({instead}).",
                field=f"{field}.{key}",
            )
    model: type[BaseModel] = CONFIGS[kind]
    try:
        model.model_validate(build_config(kind, config, "registry:base", "registry:reward"))
    except ValidationError as err:
        raise ValidationFailed.from_pydantic(err, prefix=field) from None


def _check_kind(project: Project, kind: RunKind, field: str) -> None:
    if DEFAULT_SCHEMA[kind].get(project.kind) is None:
        raise Invalid(
            f"{field}: {kind.value} cannot train on a {project.kind.value} project's labels.",
            field=field,
        )


def _routing(session: Session, principal: Principal, project: Project, body: LoopCreate) -> None:
    routing = session.get(ProjectRouting, project.id)
    if body.routing_policy_id is None:
        if routing is not None and body.judge_ids:
            raise Invalid(
                f"judge_ids: project {project.id} routes with its routing policy's judges; give"
                " routing_policy_id to set the judges with it.",
                field="judge_ids",
            )
        if body.judge_ids:
            from app.routing.service import _check_judges

            _check_judges(session, sorted(set(body.judge_ids)))
        return
    if routing is not None:
        version = session.get_one(RoutingPolicyVersion, routing.policy_version_id)
        same_judges = not body.judge_ids or sorted(set(body.judge_ids)) == routing.judge_ids
        if version.policy_id == body.routing_policy_id and same_judges:
            return
    if not principal.is_admin:
        raise Forbidden(
            f"Attaching routing policy {body.routing_policy_id} to project {project.id} needs the"
            " admin role; leave routing_policy_id out to use the project's routing as it is."
        )
    set_routing(
        session,
        principal,
        project.id,
        RoutingSet(policy_id=body.routing_policy_id, judge_ids=body.judge_ids),
    )


def _evaluation(session: Session, project: Project, body: LoopCreate) -> None:
    ev = body.evaluation
    if ev.gold_reward is not None:
        try:
            get_reward(ev.gold_reward)
        except Invalid as err:
            raise Invalid(
                f"evaluation.gold_reward: {err.message}", field="evaluation.gold_reward"
            ) from None
    if ev.judge_id is not None:
        from app.judges.models import Judge

        judge = session.get(Judge, ev.judge_id)
        if judge is None or not judge.enabled:
            raise Invalid(
                f"evaluation.judge_id: judge {ev.judge_id} does not exist or is disabled.",
                field="evaluation.judge_id",
            )
    if ev.human_sample and project.kind is not TaskKind.pairwise:
        raise Invalid(
            "evaluation.human_sample: humans compare two policies' responses, which needs a"
            f" pairwise project; project {project.id} is {project.kind.value}.",
            field="evaluation.human_sample",
        )


def _sampling(project: Project, body: LoopCreate) -> None:
    s = body.sampling
    if project.kind is not TaskKind.ranking and s.responses_per_item is not None:
        raise Invalid(
            f"sampling.responses_per_item applies to ranking projects; a {project.kind.value}"
            f" item has {RESPONSES[project.kind]}.",
            field="sampling.responses_per_item",
        )
    if "n" in s.params:
        raise Invalid(
            "sampling.params.n is set by the project's kind and sampling.n; leave it out.",
            field="sampling.params.n",
        )
    backends.sampling_params(s.params)
    backends.validate_params(s.backend, s.backend_params)


def _prompt_set(session: Session, principal: Principal, project: Project, body: LoopCreate) -> None:
    if body.prompt_set_id is None:
        return
    from app.prompts.service import get_prompt_set

    try:
        found = get_prompt_set(session, principal, project.id, body.prompt_set_id, text=False)
    except NotFound:
        raise Invalid(
            f"prompt_set_id: prompt set {body.prompt_set_id} is not in project {project.id}.",
            field="prompt_set_id",
        ) from None
    if body.prompts_per_iteration > found.count:
        raise Invalid(
            f"prompts_per_iteration ({body.prompts_per_iteration}) is more than the"
            f" {found.count} prompts of prompt set {found.id}.",
            field="prompts_per_iteration",
        )


def create_loop(session: Session, principal: Principal, body: LoopCreate) -> tuple[Loop, Job]:
    """Check everything, then record the loop and start iteration 1's generation."""
    require_role(principal, Role.researcher)
    project = get_project(session, principal, body.project_id)
    policy = _model(session, principal, body.policy_model_id, "policy_model_id")
    if policy.kind is ModelKind.reward_model:
        raise Invalid(
            f"policy_model_id: model {policy.id} is a reward model; a loop starts from a base"
            " model or a policy.",
            field="policy_model_id",
        )
    _model(session, principal, body.reward_model.base_model_id, "reward_model.base_model_id")
    _check_kind(project, RunKind.reward_model, "reward_model")
    update = RunKind(body.update.kind.value)
    _check_kind(project, update, "update.kind")
    _run_config(RunKind.reward_model, body.reward_model.config, "reward_model.config")
    _run_config(update, body.update.config, "update.config")
    _sampling(project, body)
    _prompt_set(session, principal, project, body)
    _evaluation(session, project, body)
    _routing(session, principal, project, body)
    config = body.model_dump(mode="json")
    name = body.name or f"loop on {project.name}"
    loop = Loop(
        project_id=project.id,
        name=name,
        config=config,
        status=LoopStatus.running,
        created_by=principal.id,
    )
    session.add(loop)
    session.flush()
    # A service refusing the first step (its 4xx) leaves nothing: this transaction rolls back.
    first = advancer.start_step(session, loop, 1, StepName.generate)
    assert first.job_id is not None
    job = session.get_one(Job, first.job_id)
    record(session, principal.id, "loops.create", "project", project.id, loop_id=loop.id)
    return loop, job


def get_loop(
    session: Session, principal: Principal, loop_id: int, *, for_update: bool = False
) -> Loop:
    require_role(principal, Role.researcher)
    stmt = (
        select(Loop)
        .join(Project, Project.id == Loop.project_id)
        .where(Loop.id == loop_id, project_visible(principal))
    )
    if for_update:
        stmt = stmt.with_for_update(of=Loop)
    loop = session.scalars(stmt).one_or_none()
    if loop is None:
        raise NotFound(f"Loop {loop_id} does not exist or is not yours to see.")
    return loop


def list_loops(
    session: Session, principal: Principal, page: Keyset, project_id: int | None = None
) -> list[Loop]:
    """Newest first; the cursor is the last id of the previous page."""
    require_role(principal, Role.researcher)
    stmt = (
        select(Loop)
        .join(Project, Project.id == Loop.project_id)
        .where(project_visible(principal))
        .order_by(Loop.id.desc())
        .limit(page.limit + 1)
    )
    if page.after_id is not None:
        stmt = stmt.where(Loop.id < page.after_id)
    if project_id is not None:
        stmt = stmt.where(Loop.project_id == project_id)
    return list(session.scalars(stmt))


def _owner(principal: Principal, loop: Loop, action: str) -> None:
    if not principal.is_admin and loop.created_by != principal.id:
        raise Forbidden(f"Only the creator of loop {loop.id} or an admin may {action} it.")


def pause_loop(session: Session, principal: Principal, loop_id: int) -> Loop:
    """The running step finishes; the next one starts only after resume."""
    loop = get_loop(session, principal, loop_id, for_update=True)
    _owner(principal, loop, "pause")
    if loop.status is LoopStatus.paused:
        return loop
    if loop.status is not LoopStatus.running:
        raise Conflict(f"Loop {loop.id} is {loop.status.value}; only a running loop can pause.")
    loop.status = LoopStatus.paused
    loop.updated_at = func.now()
    record(session, principal.id, "loops.pause", "loop", loop.id)
    session.flush()
    return loop


def resume_loop(session: Session, principal: Principal, loop_id: int) -> Loop:
    loop = get_loop(session, principal, loop_id, for_update=True)
    _owner(principal, loop, "resume")
    if loop.status is LoopStatus.running:
        return loop
    if loop.status is not LoopStatus.paused:
        raise Conflict(f"Loop {loop.id} is {loop.status.value}; only a paused loop can resume.")
    loop.status = LoopStatus.running
    loop.updated_at = func.now()
    record(session, principal.id, "loops.resume", "loop", loop.id)
    session.flush()
    # The next step starts now (not at the next sweep) when the paused one had finished.
    advancer.advance(session, loop.id)
    return loop


def cancel_loop(session: Session, principal: Principal, loop_id: int) -> Loop:
    """End the loop and cancel its running step's job. Cancelling a cancelled loop is a no-op;
    a loop that ended otherwise is a 409."""
    loop = get_loop(session, principal, loop_id, for_update=True)
    _owner(principal, loop, "cancel")
    if loop.status is LoopStatus.cancelled:
        return loop
    if loop.status not in ACTIVE:
        raise Conflict(f"Loop {loop.id} already {loop.status.value}; there is nothing to cancel.")
    row = advancer.current_step(session, loop.id)
    if row is not None and row.status in (StepStatus.running, StepStatus.waiting):
        if row.job_id is not None:
            job = session.get(Job, row.job_id)
            if job is not None and job.status in ("queued", "running"):
                jobs.cancel_job(session, principal, row.job_id)
        row.status = StepStatus.cancelled
        row.finished_at = func.now()
    loop.status = LoopStatus.cancelled
    loop.reason = f"cancelled by {principal.email}"
    loop.finished_at = func.now()
    loop.updated_at = func.now()
    record(session, principal.id, "loops.cancel", "loop", loop.id)
    session.flush()
    return loop


# -- output -----------------------------------------------------------------------------------


def _human(session: Session, it: LoopIteration) -> dict[str, Any] | None:
    """Humans' win rate of the iteration's policy against iteration 0 on the evaluation items
    the evaluate step made (app/loops/human_eval.py), as far as they are labelled."""
    item_ids = ((it.metrics or {}).get("human") or {}).get("item_ids")
    module = human_eval_module()
    if not item_ids or module is None:
        return None
    labelled = None
    if hasattr(module, "human_evaluation"):  # counts too, where the module offers them
        labelled = module.human_evaluation(session, list(item_ids)).labelled
    found = module.human_win_rate(session, list(item_ids))
    out: dict[str, Any] = {"items": len(item_ids), "labelled": labelled}
    if found is not None:
        out |= {"win_rate_vs_iteration_0": found.rate, "low": found.low, "high": found.high}
    return out


def _step_out(row: LoopStep, job: Job | None) -> StepOut:
    return StepOut(
        iteration=row.iteration,
        step=row.step,
        status=row.status,
        job_id=row.job_id,
        job_status=job.status if job is not None else None,
        progress=job.progress if job is not None else None,
        links=row.links,
        detail=row.detail,
        error=row.error,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


def to_out(session: Session, loop: Loop) -> LoopOut:
    iterations = list(
        session.scalars(
            select(LoopIteration)
            .where(LoopIteration.loop_id == loop.id)
            .order_by(LoopIteration.iteration)
        )
    )
    rows = list(
        session.scalars(select(LoopStep).where(LoopStep.loop_id == loop.id).order_by(LoopStep.id))
    )
    job_ids = [r.job_id for r in rows if r.job_id is not None]
    found = (
        {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(job_ids)))}
        if job_ids
        else {}
    )
    by_iteration: dict[int, list[StepOut]] = {}
    for r in rows:
        by_iteration.setdefault(r.iteration, []).append(
            _step_out(r, found.get(r.job_id) if r.job_id is not None else None)
        )
    current = rows[-1] if rows else None
    pending = None
    if (
        current is not None
        and current.step is StepName.labels
        and current.status is StepStatus.waiting
    ):
        it = next(i for i in iterations if i.iteration == current.iteration)
        counts = steps.label_counts(session, loop, current.iteration)
        pending = Pending(
            iteration=current.iteration,
            items=counts.items,
            labelled=counts.labelled,
            waiting_human=counts.waiting_human,
            waiting_judges=counts.waiting_judges,
            min_labels=int(loop.config["stop"]["min_labels"]),
            deadline=it.label_deadline,
        )
    out_iterations = []
    for it in iterations:
        metrics = dict(it.metrics) if it.metrics is not None else None
        human = _human(session, it)
        if metrics is not None and human is not None:
            metrics["by_humans"] = human
        out_iterations.append(
            IterationOut(
                iteration=it.iteration,
                policy_model_id=it.policy_model_id,
                reward_model_id=it.reward_model_id,
                new_policy_model_id=it.new_policy_model_id,
                label_deadline=it.label_deadline,
                metrics=metrics,
                steps=by_iteration.get(it.iteration, []),
                finished_at=it.finished_at,
            )
        )
    return LoopOut(
        id=loop.id,
        project_id=loop.project_id,
        name=loop.name,
        status=loop.status,
        reason=loop.reason,
        config=loop.config,
        current_iteration=current.iteration if current is not None else 0,
        current_step=current.step if current is not None else None,
        pending=pending,
        iterations=out_iterations,
        created_by=loop.created_by,
        created_at=loop.created_at,
        updated_at=loop.updated_at,
        finished_at=loop.finished_at,
    )


def summary(session: Session, loop: Loop) -> LoopSummary:
    current = advancer.current_step(session, loop.id)
    return LoopSummary(
        id=loop.id,
        project_id=loop.project_id,
        name=loop.name,
        status=loop.status,
        reason=loop.reason,
        iterations=int(loop.config["iterations"]),
        current_iteration=current.iteration if current is not None else 0,
        current_step=current.step if current is not None else None,
        created_at=loop.created_at,
        finished_at=loop.finished_at,
    )
