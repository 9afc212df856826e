"""Training-run rules: validate a request whole before anything is written, record the run (and
the snapshot it needs) and enqueue its job in the caller's transaction; read, list, cancel.

A run's model paths come from the registry, never from the request: a run can only train or
score models that are registered, so every result's lineage is complete.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.service import record
from app.auth.models import Role
from app.auth.service import Principal, require_role
from app.errors import Invalid, NotFound, ValidationFailed
from app.exports.build import check_options
from app.exports.errors import ExportNotReady
from app.exports.models import Export
from app.exports.schemas import ExportOptions, Schema
from app.exports.service import file_name
from app.jobs import service as jobs
from app.jobs.models import Job
from app.judges import service as judges
from app.judges.models import Judge
from app.pagination import Keyset
from app.projects.models import Project
from app.projects.service import get_project
from app.projects.service import visible_to as project_visible
from app.registry import service as registry
from app.registry.models import ModelKind, ModelVersion
from app.registry.schemas import LineageStep
from app.training.config import (
    BestOfNConfig,
    DpoConfig,
    ExpertIterationConfig,
    RewardModelConfig,
    SftConfig,
)
from app.training.runs.jobs import TRAIN
from app.training.runs.kinds import ACCEPTS, DEFAULT_SCHEMA, NEEDS_REWARD_MODEL, RunKind
from app.training.runs.models import TrainingRun
from app.training.runs.schemas import Artifact, RunCreate, RunLineage, RunOut

# Config keys that name model files: a run takes its models from the registry instead.
PATH_KEYS = {
    "base_model": "base_model_id",
    "policy": "base_model_id",
    "reward_model": "reward_model_id",
    "tokenizer": "base_model_id (its own tokenizer)",
    "reference_model": "base_model_id (DPO's reference is the base model)",
}

CONFIGS: dict[RunKind, type[BaseModel]] = {
    RunKind.reward_model: RewardModelConfig,
    RunKind.dpo: DpoConfig,
    RunKind.sft: SftConfig,
    RunKind.best_of_n: BestOfNConfig,
    RunKind.expert_iteration: ExpertIterationConfig,
}


def build_config(
    kind: RunKind,
    config: dict[str, Any],
    base_path: str,
    reward_path: str | None,
    judge: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The library's config for a run: the request's config plus the registry's paths (and
    the judge that `evaluation.judge_id` names, as the job read it)."""
    full = {k: v for k, v in config.items() if k != "kind"}
    if judge is not None:
        full["evaluation"] = {**full.get("evaluation", {}), "judge": judge}
    full["kind"] = kind.value
    if kind is RunKind.best_of_n:
        full["policy"] = base_path
    else:
        full["base_model"] = base_path
    if kind in NEEDS_REWARD_MODEL:
        full["reward_model"] = reward_path
    elif reward_path is not None and kind is not RunKind.reward_model:
        evaluation = full.get("evaluation")
        full["evaluation"] = {**(evaluation if isinstance(evaluation, dict) else {})}
        full["evaluation"]["reward_model"] = reward_path
    return full


def _check_config(kind: RunKind, config: dict[str, Any]) -> None:
    if "kind" in config and config["kind"] != kind.value:
        raise Invalid(f"config.kind is {config['kind']!r} but the run's kind is {kind.value}.")
    for key, instead in PATH_KEYS.items():
        if key in config:
            raise Invalid(
                f"config.{key} names a model file; runs take registered models: set {instead}.",
                field=f"config.{key}",
            )
    evaluation = config.get("evaluation")
    if isinstance(evaluation, dict) and "reward_model" in evaluation:
        raise Invalid(
            "config.evaluation.reward_model names a model file; set reward_model_id instead.",
            field="config.evaluation.reward_model",
        )
    if isinstance(evaluation, dict) and "judge" in evaluation:
        raise Invalid(
            "config.evaluation.judge is filled in from the registered judge: set"
            " config.evaluation.judge_id instead.",
            field="config.evaluation.judge",
        )
    try:
        # The kind's own model (not the tagged union), so that errors name `config.<field>`.
        CONFIGS[kind].model_validate(build_config(kind, config, "registry:base", "registry:reward"))
    except ValidationError as err:
        raise ValidationFailed.from_pydantic(err, prefix="config") from None


SAMPLE_SOURCES = (RunKind.best_of_n, RunKind.expert_iteration)


def _source_run(session: Session, principal: Principal, body: RunCreate) -> TrainingRun | None:
    """The run whose kept samples an SFT run on samples trains on (checked whole)."""
    on_samples = body.kind is RunKind.sft and body.config.get("source") == "samples"
    if not on_samples:
        if body.source_run_id is not None:
            raise Invalid(
                "source_run_id is for sft runs on samples (config.source: samples).",
                field="source_run_id",
            )
        return None
    if body.source_run_id is None:
        raise Invalid(
            "sft on samples trains on a best_of_n or expert_iteration run's kept samples:"
            " set source_run_id.",
            field="source_run_id",
        )
    if body.project_id is not None or body.export_id is not None:
        raise Invalid(
            "sft on samples takes its data from source_run_id; leave out project_id and export_id.",
            field="source_run_id",
        )
    try:
        source = get_run(session, principal, body.source_run_id)
    except NotFound:
        raise Invalid(
            f"source_run_id: training run {body.source_run_id} does not exist or is not yours"
            " to see.",
            field="source_run_id",
        ) from None
    if RunKind(source.kind) not in SAMPLE_SOURCES:
        raise Invalid(
            f"source_run_id: run {source.id} is a {source.kind} run; samples come from"
            " best_of_n and expert_iteration runs.",
            field="source_run_id",
        )
    if source.path is None:
        raise Invalid(
            f"source_run_id: run {source.id} has not succeeded, so it kept no samples yet.",
            field="source_run_id",
        )
    return source


def judge_id_of(config: dict[str, Any]) -> int | None:
    evaluation = config.get("evaluation")
    judge_id = evaluation.get("judge_id") if isinstance(evaluation, dict) else None
    return judge_id if isinstance(judge_id, int) else None


def _check_judge(session: Session, principal: Principal, config: dict[str, Any]) -> None:
    """A judge for the evaluation must exist, be visible to the caller and be enabled."""
    judge_id = judge_id_of(config)
    if judge_id is None:
        return
    try:
        judge = judges.get_judge(session, principal, judge_id)
    except NotFound:
        raise Invalid(
            f"config.evaluation.judge_id: judge {judge_id} does not exist.",
            field="config.evaluation.judge_id",
        ) from None
    if not judge.enabled:
        raise Invalid(
            f"config.evaluation.judge_id: judge {judge.name!r} is disabled.",
            field="config.evaluation.judge_id",
        )


def judge_spec(session: Session, judge_id: int, project_id: int) -> dict[str, Any]:
    """The judge as the worker calls it, with the latest pairwise template (worker side: the
    request checked access)."""
    judge = session.get_one(Judge, judge_id)
    template = judges.resolve_template(session, "pairwise", None)
    project = session.get_one(Project, project_id)
    return {
        "id": judge.id,
        "name": judge.name,
        "backend": judge.backend,
        "model": judge.model,
        "params": dict(judge.params),
        "template": {
            "id": template.id,
            "version": template.version,
            "system": template.system,
            "user": template.user,
            "inconsistent": template.inconsistent,
        },
        "guidelines": project.guidelines or "",
    }


def _model(session: Session, principal: Principal, model_id: int, field: str) -> ModelVersion:
    try:
        return registry.get_version(session, principal, model_id)
    except NotFound:
        raise Invalid(
            f"{field}: model {model_id} does not exist or is not yours to see.", field=field
        ) from None


def _models(
    session: Session, principal: Principal, body: RunCreate
) -> tuple[ModelVersion, ModelVersion | None]:
    base = _model(session, principal, body.base_model_id, "base_model_id")
    if body.kind is not RunKind.reward_model and base.kind is ModelKind.reward_model:
        raise Invalid(
            f"base_model_id: model {base.id} is a reward model; a {body.kind.value} run needs a"
            " base model or a policy.",
            field="base_model_id",
        )
    reward = None
    if body.reward_model_id is not None:
        if body.kind is RunKind.reward_model:
            raise Invalid(
                "reward_model_id does not apply to reward_model runs.", field="reward_model_id"
            )
        reward = _model(session, principal, body.reward_model_id, "reward_model_id")
        if reward.kind is not ModelKind.reward_model:
            raise Invalid(
                f"reward_model_id: model {reward.id} is a {reward.kind.value}, not a reward model.",
                field="reward_model_id",
            )
    elif body.kind in NEEDS_REWARD_MODEL:
        raise Invalid(
            f"{body.kind.value} scores samples with a reward model: set reward_model_id.",
            field="reward_model_id",
        )
    return base, reward


def _given_snapshot(
    session: Session, principal: Principal, body: RunCreate
) -> tuple[Project, Export]:
    assert body.export_id is not None
    if body.export is not None:
        raise Invalid(
            "export options apply when a snapshot is made from project_id; export_id names a"
            " snapshot that already exists.",
            field="export",
        )
    export = session.get(Export, body.export_id)
    if export is None:
        raise Invalid(f"export_id: export {body.export_id} does not exist.", field="export_id")
    try:
        project = get_project(session, principal, export.project_id)
    except NotFound:
        raise Invalid(
            f"export_id: export {body.export_id} does not exist.", field="export_id"
        ) from None
    if export.path is None:
        raise ExportNotReady(
            f"Export {export.id} is not finished yet; start the run once its job succeeded."
        )
    return project, export


def _options(body: RunCreate, project: Project) -> ExportOptions:
    raw = dict(body.export or {})
    if "schema" not in raw:
        schema = DEFAULT_SCHEMA[body.kind].get(project.kind)
        if schema is None:
            raise Invalid(
                f"{body.kind.value} cannot train on a {project.kind.value} project's labels.",
                field="kind",
            )
        raw["schema"] = schema.value
    try:
        options = ExportOptions.model_validate(raw)
    except ValidationError as err:
        raise ValidationFailed.from_pydantic(err, prefix="export") from None
    check_options(options, project.kind, project.aspects)
    return options


def create_run(session: Session, principal: Principal, body: RunCreate) -> tuple[TrainingRun, Job]:
    """Check everything, then record the run (and the export it will snapshot) and its job."""
    require_role(principal, Role.researcher)
    _check_config(body.kind, body.config)
    source = _source_run(session, principal, body)
    if source is None and (body.project_id is None) == (body.export_id is None):
        raise Invalid("Give either project_id (a snapshot is made) or export_id, not both.")
    _check_judge(session, principal, body.config)
    base, reward = _models(session, principal, body)
    export: Export | None = None
    if source is not None:
        # The samples came from the source run's snapshot: that is this run's data too.
        project = get_project(session, principal, source.project_id)
        export = session.get_one(Export, source.export_id)
        schema = Schema(export.options["schema"])
    elif body.export_id is not None:
        project, export = _given_snapshot(session, principal, body)
        schema = Schema(export.options["schema"])
    else:
        assert body.project_id is not None
        project = get_project(session, principal, body.project_id)
        require_role(principal, Role.researcher)
        options = _options(body, project)
        schema = options.row_schema
    if source is None and schema not in ACCEPTS[body.kind]:
        names = " or ".join(s.value for s in ACCEPTS[body.kind])
        raise Invalid(
            f"{body.kind.value} trains on a {names} snapshot; this one is {schema.value}.",
            field="export",
        )
    if export is None:
        export = Export(
            project_id=project.id,
            created_by=principal.id,
            options=options.stored(),
            file_name=file_name(options),
        )
        session.add(export)
        session.flush()
    run = TrainingRun(
        kind=body.kind.value,
        project_id=project.id,
        export_id=export.id,
        base_model_id=base.id,
        reward_model_id=reward.id if reward else None,
        source_run_id=source.id if source else None,
        config=body.config,
        created_by=principal.id,
    )
    session.add(run)
    session.flush()
    job = jobs.enqueue(
        session, TRAIN, {"run_id": run.id}, project_id=project.id, created_by=principal.id
    )
    run.job_id = job.id
    if export.path is None:
        export.job_id = job.id  # the run's job writes it; until then it is that job's folder
    record(
        session,
        principal.id,
        "training.create",
        "project",
        project.id,
        run_id=run.id,
        kind=body.kind.value,
    )
    session.flush()
    return run, job


def get_run(session: Session, principal: Principal, run_id: int) -> TrainingRun:
    require_role(principal, Role.researcher)
    run = session.scalars(
        select(TrainingRun)
        .join(Project, Project.id == TrainingRun.project_id)
        .where(TrainingRun.id == run_id, project_visible(principal))
    ).one_or_none()
    if run is None:
        raise NotFound(f"Training run {run_id} does not exist or is not yours to see.")
    return run


def list_runs(
    session: Session, principal: Principal, page: Keyset, project_id: int | None = None
) -> list[TrainingRun]:
    """Newest first; the cursor is the last id of the previous page."""
    require_role(principal, Role.researcher)
    stmt = (
        select(TrainingRun)
        .join(Project, Project.id == TrainingRun.project_id)
        .where(project_visible(principal))
        .order_by(TrainingRun.id.desc())
        .limit(page.limit + 1)
    )
    if page.after_id is not None:
        stmt = stmt.where(TrainingRun.id < page.after_id)
    if project_id is not None:
        stmt = stmt.where(TrainingRun.project_id == project_id)
    return list(session.scalars(stmt))


def cancel_run(session: Session, principal: Principal, run_id: int) -> TrainingRun:
    """Cancel the run's job (the rules of POST /jobs/{id}/cancel: its creator or an admin)."""
    run = get_run(session, principal, run_id)
    if run.job_id is None:
        raise NotFound(f"Training run {run_id} has no job any more.")
    jobs.cancel_job(session, principal, run.job_id)
    session.refresh(run)
    return run


def _step(session: Session, version: ModelVersion) -> LineageStep:
    return LineageStep(
        id=version.id,
        name=version.name,
        kind=version.kind,
        training_run_id=registry.run_of(session, version.id),
        snapshot=version.snapshot,
    )


def snapshot_record(export: Export) -> dict[str, Any]:
    """What lineage keeps of a snapshot (the manifest's identity, never its rows)."""
    manifest = export.manifest or {}
    snap = manifest.get("snapshot") or {}
    return {
        "export_id": export.id,
        "project_id": export.project_id,
        "sha256": export.sha256,
        "rows": export.rows,
        "schema": export.options.get("schema"),
        "options": export.options,
        "highest_annotation_id": snap.get("highest_annotation_id"),
        "taken_at": snap.get("taken_at"),
    }


def to_out(session: Session, run: TrainingRun) -> RunOut:
    job = session.get(Job, run.job_id) if run.job_id is not None else None
    export = session.get_one(Export, run.export_id)
    base = session.get_one(ModelVersion, run.base_model_id)
    reward = session.get(ModelVersion, run.reward_model_id) if run.reward_model_id else None
    artifact = None
    if run.path is not None and run.artifact_sha256 is not None:
        artifact = Artifact(path=run.path, sha256=run.artifact_sha256, files=run.files or {})
    status = job.status if job is not None else "succeeded" if run.path is not None else "failed"
    return RunOut(
        id=run.id,
        kind=RunKind(run.kind),
        status=status,
        project_id=run.project_id,
        export_id=run.export_id,
        job_id=run.job_id,
        base_model_id=run.base_model_id,
        reward_model_id=run.reward_model_id,
        source_run_id=run.source_run_id,
        config=run.config,
        progress=job.progress if job else (1.0 if run.path else 0.0),
        progress_detail=job.progress_detail if job else None,
        error=job.error if job else None,
        queue=job.queue if job else None,
        attempts=job.attempts if job else 0,
        metrics=run.metrics,
        artifact=artifact,
        model_version_id=run.model_version_id,
        lineage=RunLineage(
            snapshot=snapshot_record(export),
            base_model=_step(session, base),
            reward_model=_step(session, reward) if reward else None,
            model_version_id=run.model_version_id,
            base_lineage=registry.lineage(session, base),
        ),
        created_by=run.created_by,
        created_at=run.created_at,
        finished_at=run.finished_at,
    )
