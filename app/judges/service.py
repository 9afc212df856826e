"""Judge rules: judges and templates (admin), starting and reading judge runs, judge outputs.

Stable entry points for other domains (routing): `start_run(...)` enqueues a run and
`item_judgements(...)` reads a judge's per-item results on a project (probability, swap
consistency, status), both in the caller's session and transaction.

A judge's `params` are its backend's parameters (checked by the backend's own model, so an
unknown key or a bad value is a 422 naming it) plus two of the judge's own: `sampling`
(temperature, top_p, max_tokens, seed, top_logprobs, stop) and `chunk_size` (items per backend
call). An API key is never a parameter: `api_key_env` names the worker's environment variable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.audit.service import record
from app.auth.models import Role
from app.auth.service import Principal, require_role
from app.errors import AlreadyExists, Conflict, Invalid, NotFound
from app.inference import registry
from app.jobs import service as jobs
from app.jobs.models import Job
from app.judges import templates
from app.judges.config import judge_config
from app.judges.jobs import RUN
from app.judges.models import Judge, JudgeOutput, JudgeRun, JudgeTemplate
from app.judges.schemas import (
    JudgeCreate,
    JudgePatch,
    JudgeRunCreate,
    JudgeRunOut,
    TemplateCreate,
    TemplatePatch,
)
from app.pagination import Keyset
from app.projects.models import Project
from app.projects.rules import TaskKind
from app.projects.service import get_project


class JudgeDisabled(Conflict):
    code = "judge_disabled"


# -- judges -------------------------------------------------------------------------------------


def create_judge(session: Session, principal: Principal, body: JudgeCreate) -> Judge:
    require_role(principal, Role.admin)
    registry.spec(body.backend)  # an unknown backend: 422 unknown_backend
    judge_config(body.backend, body.params)
    judge_id = session.execute(
        insert(Judge)
        .values(
            name=body.name,
            backend=body.backend,
            model=body.model,
            params=body.params,
            costs=body.costs.model_dump(),
            enabled=body.enabled,
            created_by=principal.id,
        )
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(Judge.id)
    ).scalar_one_or_none()
    if judge_id is None:
        raise AlreadyExists(f"A judge named {body.name!r} exists already.", field="name")
    record(session, principal.id, "judge.create", "judge", judge_id, name=body.name)
    return session.get_one(Judge, judge_id)


def list_judges(session: Session, principal: Principal, page: Keyset) -> list[Judge]:
    require_role(principal, Role.researcher)
    stmt = select(Judge).order_by(Judge.id).limit(page.limit + 1)
    if page.after_id is not None:
        stmt = stmt.where(Judge.id > page.after_id)
    return list(session.scalars(stmt))


def get_judge(session: Session, principal: Principal, judge_id: int) -> Judge:
    require_role(principal, Role.researcher)
    judge = session.get(Judge, judge_id)
    if judge is None:
        raise NotFound(f"Judge {judge_id} does not exist.")
    return judge


def update_judge(session: Session, principal: Principal, judge_id: int, body: JudgePatch) -> Judge:
    require_role(principal, Role.admin)
    judge = session.scalars(select(Judge).where(Judge.id == judge_id).with_for_update()).first()
    if judge is None:
        raise NotFound(f"Judge {judge_id} does not exist.")
    changes = body.model_dump(exclude_unset=True)
    if changes.get("params") is not None:
        judge_config(judge.backend, changes["params"])
    if changes.get("name") not in (None, judge.name):
        taken = session.scalar(select(Judge.id).where(Judge.name == changes["name"]))
        if taken is not None:
            raise AlreadyExists(f"A judge named {changes['name']!r} exists already.", field="name")
    for key, value in changes.items():
        if value is None:
            continue  # null means "leave as it is"
        setattr(judge, key, body.costs.model_dump() if key == "costs" and body.costs else value)
    record(session, principal.id, "judge.update", "judge", judge_id, fields=sorted(changes))
    session.flush()
    return judge


# -- templates ----------------------------------------------------------------------------------


def ensure_defaults(session: Session) -> None:
    """Version 1 of each kind's template is the shipped default (written on first need)."""
    for kind, (system, user) in templates.DEFAULTS.items():
        session.execute(
            insert(JudgeTemplate)
            .values(kind=kind, version=1, system=system, user=user)
            .on_conflict_do_nothing(index_elements=["kind", "version"])
        )


def list_templates(
    session: Session, principal: Principal, page: Keyset, kind: TaskKind | None = None
) -> list[JudgeTemplate]:
    require_role(principal, Role.researcher)
    ensure_defaults(session)
    stmt = select(JudgeTemplate).order_by(JudgeTemplate.id).limit(page.limit + 1)
    if kind is not None:
        stmt = stmt.where(JudgeTemplate.kind == kind.value)
    if page.after_id is not None:
        stmt = stmt.where(JudgeTemplate.id > page.after_id)
    return list(session.scalars(stmt))


def get_template(session: Session, principal: Principal, template_id: int) -> JudgeTemplate:
    require_role(principal, Role.researcher)
    found = session.get(JudgeTemplate, template_id)
    if found is None:
        raise NotFound(f"Template {template_id} does not exist.")
    return found


def _new_version(
    session: Session, actor: int, kind: str, system: str, user: str, inconsistent: str
) -> JudgeTemplate:
    templates.check(kind, system, user, inconsistent)
    ensure_defaults(session)
    # Versions of a kind are numbered one after another: writers of one kind take turns.
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"judge-tpl:{kind}"})
    version = (
        session.scalar(select(func.max(JudgeTemplate.version)).where(JudgeTemplate.kind == kind))
        or 0
    ) + 1
    row = JudgeTemplate(
        kind=kind,
        version=version,
        system=system,
        user=user,
        inconsistent=inconsistent,
        created_by=actor,
    )
    session.add(row)
    session.flush()
    return row


def create_template(session: Session, principal: Principal, body: TemplateCreate) -> JudgeTemplate:
    require_role(principal, Role.admin)
    row = _new_version(
        session, principal.id, body.kind.value, body.system, body.user, body.inconsistent
    )
    record(session, principal.id, "judge_template.create", "judge_template", row.id)
    return row


def update_template(
    session: Session, principal: Principal, template_id: int, body: TemplatePatch
) -> JudgeTemplate:
    """Edit a version no run has used; a used one is immutable, so the edit is a new version."""
    require_role(principal, Role.admin)
    row = session.scalars(
        select(JudgeTemplate).where(JudgeTemplate.id == template_id).with_for_update()
    ).first()
    if row is None:
        raise NotFound(f"Template {template_id} does not exist.")
    system = row.system if body.system is None else body.system
    user = row.user if body.user is None else body.user
    inconsistent = row.inconsistent if body.inconsistent is None else body.inconsistent
    if row.used:
        new = _new_version(session, principal.id, row.kind, system, user, inconsistent)
        record(session, principal.id, "judge_template.edit", "judge_template", new.id, was=row.id)
        return new
    templates.check(row.kind, system, user, inconsistent)
    row.system, row.user, row.inconsistent = system, user, inconsistent
    record(session, principal.id, "judge_template.edit", "judge_template", row.id)
    session.flush()
    return row


def resolve_template(session: Session, kind: str, version: int | None) -> JudgeTemplate:
    ensure_defaults(session)
    stmt = select(JudgeTemplate).where(JudgeTemplate.kind == kind)
    if version is None:
        stmt = stmt.order_by(JudgeTemplate.version.desc()).limit(1)
    else:
        stmt = stmt.where(JudgeTemplate.version == version)
    found = session.scalars(stmt).first()
    if found is None:
        raise Invalid(f"There is no {kind} template version {version}.", field="template_version")
    return found


# -- runs ---------------------------------------------------------------------------------------


def _enabled_judge(session: Session, judge_id: int) -> Judge:
    judge = session.get(Judge, judge_id)
    if judge is None:
        raise Invalid(f"Judge {judge_id} does not exist.", field="judge_id")
    if not judge.enabled:
        raise JudgeDisabled(f"Judge {judge.name!r} is disabled; enable it to run it.")
    return judge


def start_run(
    session: Session,
    principal: Principal,
    project_id: int,
    body: JudgeRunCreate,
) -> tuple[JudgeRun, Job]:
    """Record a judge run on the project and enqueue its job, in the caller's transaction.

    The caller must be an admin or a researcher member of the project. `items` is "unjudged"
    (items with no output of this judge and template version), "all" (the same, since an item
    is judged once per judge and version: re-running adds nothing), or a list of item ids of
    the project (422 naming those that are not).
    """
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    judge = _enabled_judge(session, body.judge_id)
    template = resolve_template(session, project.kind, body.template_version)
    if isinstance(body.items, list):
        ids = sorted(set(body.items))
        found = set(
            session.scalars(
                text("SELECT id FROM items WHERE project_id = :p AND id = ANY(:ids)"),
                {"p": project.id, "ids": ids},
            )
        )
        missing = [i for i in ids if i not in found]
        if missing:
            shown = ", ".join(str(i) for i in missing[:10]) + (" ..." if len(missing) > 10 else "")
            raise Invalid(f"These items are not in project {project.id}: {shown}.", field="items")
        items: Any = ids
    else:
        items = body.items
    template.used = True
    run = JudgeRun(
        project_id=project.id,
        judge_id=judge.id,
        template_id=template.id,
        created_by=principal.id,
        items=items,
    )
    session.add(run)
    session.flush()
    job = jobs.enqueue(
        session,
        RUN,
        {"run_id": run.id, "backend": judge.backend},
        project_id=project.id,
        created_by=principal.id,
    )
    run.job_id = job.id
    record(
        session,
        principal.id,
        "judge_run.start",
        "project",
        project.id,
        run_id=run.id,
        judge_id=judge.id,
        template_id=template.id,
    )
    session.flush()
    return run, job


def run_out(session: Session, run: JudgeRun) -> JudgeRunOut:
    job = session.get(Job, run.job_id) if run.job_id is not None else None
    version = session.get_one(JudgeTemplate, run.template_id).version
    return JudgeRunOut(
        id=run.id,
        project_id=run.project_id,
        judge_id=run.judge_id,
        template_id=run.template_id,
        template_version=version,
        job_id=run.job_id,
        status=job.status if job is not None else "cancelled",
        progress=job.progress if job is not None else 0.0,
        items=run.items,
        total=run.total,
        done=run.done,
        unparsed=run.unparsed,
        inconsistent=run.inconsistent,
        failed=run.failed,
        skipped=run.skipped,
        tokens_in=run.tokens_in,
        tokens_out=run.tokens_out,
        cost=run.cost,
        error=run.error or (job.error if job is not None and job.status == "failed" else None),
        created_at=run.created_at,
        finished_at=run.finished_at,
    )


def get_run(session: Session, principal: Principal, project_id: int, run_id: int) -> JudgeRun:
    require_role(principal, Role.researcher)
    get_project(session, principal, project_id)
    run = session.get(JudgeRun, run_id)
    if run is None or run.project_id != project_id:
        raise NotFound(f"Judge run {run_id} does not exist in project {project_id}.")
    return run


def list_runs(
    session: Session, principal: Principal, project_id: int, page: Keyset
) -> list[JudgeRun]:
    require_role(principal, Role.researcher)
    get_project(session, principal, project_id)
    stmt = (
        select(JudgeRun)
        .where(JudgeRun.project_id == project_id)
        .order_by(JudgeRun.id.desc())
        .limit(page.limit + 1)
    )
    if page.after_id is not None:
        stmt = stmt.where(JudgeRun.id < page.after_id)
    return list(session.scalars(stmt))


# -- outputs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemJudgement:
    """A judge's result on one item (the latest template version it judged the item with)."""

    item_id: int
    status: str  # parsed | unparsed | inconsistent
    probability: float | None  # pairwise: P(first imported response is better)
    consistent: bool | None  # pairwise: the two orders agreed
    annotation_id: int | None
    template_id: int
    cost: float
    latency_s: float


def item_judgements(
    session: Session, project_id: int, judge_id: int, item_ids: Sequence[int] | None = None
) -> list[ItemJudgement]:
    """Per item, the judge's latest output on the project (no access check: callers check)."""
    stmt = (
        select(JudgeOutput)
        .where(JudgeOutput.project_id == project_id, JudgeOutput.judge_id == judge_id)
        .order_by(JudgeOutput.item_id, JudgeOutput.template_id.desc())
        .distinct(JudgeOutput.item_id)
    )
    if item_ids is not None:
        stmt = stmt.where(JudgeOutput.item_id.in_(list(item_ids)))
    return [
        ItemJudgement(
            o.item_id,
            o.status.value,
            o.probability,
            o.consistent,
            o.annotation_id,
            o.template_id,
            o.cost,
            o.latency_s,
        )
        for o in session.scalars(stmt)
    ]


def project_kind(session: Session, project_id: int) -> str:
    return session.get_one(Project, project_id).kind
