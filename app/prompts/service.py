"""Prompt-set rules, shared by the JSON routes, the page and generation.

A set is written once (name, prompts, their sha256) and never changed; it can be deleted only
while no generation job names it, so a job re-delivered later reads the same prompts it was
queued with. Access is the project's: its researchers (and admins).
"""

from __future__ import annotations

import hashlib
import random

import orjson
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from app.audit.service import record
from app.auth.models import Role
from app.auth.service import Principal, require_role
from app.errors import AlreadyExists, Conflict, Invalid, NotFound
from app.jobs.models import Job
from app.pagination import Keyset
from app.projects.service import get_project
from app.prompts.models import PromptSet, PromptSource
from app.prompts.schemas import Name, PromptSetOut

NAME: TypeAdapter[str] = TypeAdapter(Name)
GENERATION_KIND = "generation.run"  # app.generation.jobs.GENERATE.kind (no import cycle)


class PromptSetInUse(Conflict):
    """A generation job names the set: deleting it would change what the job reads."""

    code = "prompt_set_in_use"


def digest(prompts: list[str]) -> str:
    return hashlib.sha256(orjson.dumps(prompts)).hexdigest()


def create_prompt_set(
    session: Session,
    principal: Principal,
    project_id: int,
    name: str,
    prompts: list[str],
    source: PromptSource,
) -> PromptSet:
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    try:
        name = NAME.validate_python(name)
    except ValidationError as exc:
        raise Invalid(f"name: {exc.errors()[0]['msg']}.", field="name") from None
    taken = session.scalar(
        select(PromptSet.id).where(PromptSet.project_id == project.id, PromptSet.name == name)
    )
    if taken is not None:
        raise AlreadyExists(
            f"This project already has a prompt set named {name!r} (id {taken}).",
            prompt_set_id=taken,
        )
    prompt_set = PromptSet(
        project_id=project.id,
        name=name,
        source=source,
        count=len(prompts),
        sha256=digest(prompts),
        prompts=prompts,
        created_by=principal.id,
    )
    session.add(prompt_set)
    session.flush()
    record(
        session,
        principal.id,
        "prompt_set.create",
        "project",
        project.id,
        prompt_set_id=prompt_set.id,
        prompts=len(prompts),
    )
    return prompt_set


def get_prompt_set(
    session: Session, principal: Principal, project_id: int, prompt_set_id: int, *, text: bool
) -> PromptSet:
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    query = select(PromptSet).where(
        PromptSet.id == prompt_set_id, PromptSet.project_id == project.id
    )
    if text:
        query = query.options(undefer(PromptSet.prompts))
    prompt_set = session.scalar(query)
    if prompt_set is None:
        raise NotFound(f"Prompt set {prompt_set_id} does not exist in project {project.id}.")
    return prompt_set


def list_prompt_sets(
    session: Session, principal: Principal, project_id: int, page: Keyset
) -> list[PromptSet]:
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    query = select(PromptSet).where(PromptSet.project_id == project.id)
    if page.after_id is not None:
        query = query.where(PromptSet.id > page.after_id)
    return list(session.scalars(query.order_by(PromptSet.id).limit(page.limit + 1)))


def jobs_naming(session: Session, prompt_set_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Job.id)
            .where(
                Job.kind == GENERATION_KIND,
                Job.params["prompt_set_id"].as_integer() == prompt_set_id,
            )
            .order_by(Job.id)
            .limit(10)
        )
    )


def delete_prompt_set(
    session: Session, principal: Principal, project_id: int, prompt_set_id: int
) -> None:
    prompt_set = get_prompt_set(session, principal, project_id, prompt_set_id, text=False)
    # Lock it, so that a generation request cannot name it between this check and the delete.
    session.execute(select(PromptSet.id).where(PromptSet.id == prompt_set.id).with_for_update())
    jobs = jobs_naming(session, prompt_set.id)
    if jobs:
        raise PromptSetInUse(
            f"Prompt set {prompt_set.id} is used by generation job(s)"
            f" {', '.join(map(str, jobs))}; it is kept so that their items stay traceable.",
            jobs=jobs,
        )
    record(
        session,
        principal.id,
        "prompt_set.delete",
        "project",
        prompt_set.project_id,
        prompt_set_id=prompt_set.id,
    )
    session.delete(prompt_set)
    session.flush()


def choose(count: int, sample: int | None, seed: int) -> list[int] | None:
    """Which prompts of a set a generation uses: all (None), or `sample` of them drawn with
    `seed`, in the set's order (the same seed draws the same prompts)."""
    if sample is None:
        return None
    if sample > count:
        raise Invalid(
            f"prompt_sample: {sample} is more than the set's {count} prompts.",
            field="prompt_sample",
        )
    return sorted(random.Random(seed).sample(range(count), sample))


def prompts_for(session: Session, prompt_set_id: int, indices: list[int] | None) -> list[str]:
    """The prompts a generation job samples (worker side: no access check, the request did)."""
    prompts = session.scalar(select(PromptSet.prompts).where(PromptSet.id == prompt_set_id))
    if prompts is None:
        raise NotFound(f"Prompt set {prompt_set_id} no longer exists.")
    return prompts if indices is None else [prompts[i] for i in indices]


def to_out(prompt_set: PromptSet, *, text: bool = False) -> PromptSetOut:
    return PromptSetOut(
        id=prompt_set.id,
        project_id=prompt_set.project_id,
        name=prompt_set.name,
        source=prompt_set.source,
        count=prompt_set.count,
        sha256=prompt_set.sha256,
        created_by=prompt_set.created_by,
        created_at=prompt_set.created_at,
        prompts=list(prompt_set.prompts) if text else None,
    )
