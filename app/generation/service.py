"""Generation rules: check the request whole (model, sampling, backend, project kind), then
enqueue the job in the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.service import record
from app.auth.models import Role
from app.auth.service import Principal, require_role
from app.errors import Invalid, NotFound
from app.generation.jobs import GENERATE
from app.generation.schemas import GenerateRequest
from app.inference import registry as backends
from app.jobs import service as jobs
from app.jobs.models import Job
from app.projects.rules import TaskKind
from app.projects.service import get_project
from app.prompts import service as prompt_sets
from app.prompts.models import PromptSet
from app.registry import service as models
from app.registry.models import ModelKind

RESPONSES = {TaskKind.pairwise: 2, TaskKind.span: 1, TaskKind.critique: 1}
MAX_SAMPLES = 100_000  # prompts x items x responses of one request


def request_generation(
    session: Session, principal: Principal, project_id: int, body: GenerateRequest
) -> Job:
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    try:
        version = models.get_version(session, principal, body.model_id)
    except NotFound:
        raise Invalid(
            f"model_id: model {body.model_id} does not exist or is not yours to see.",
            field="model_id",
        ) from None
    if version.kind is ModelKind.reward_model:
        raise Invalid(
            f"model_id: model {version.id} is a reward model; generate with a base model or"
            " a policy.",
            field="model_id",
        )
    if project.kind is TaskKind.ranking:
        k = body.responses_per_item or 4
    elif body.responses_per_item is not None:
        raise Invalid(
            f"responses_per_item applies to ranking projects; a {project.kind.value} item"
            f" has {RESPONSES[project.kind]}.",
            field="responses_per_item",
        )
    else:
        k = RESPONSES[project.kind]
    if "n" in body.sampling:
        raise Invalid("sampling.n is set by the project's kind and `n`; leave it out.")
    sampling = backends.sampling_params(body.sampling)  # 422 naming the bad parameter
    backends.validate_params(body.backend, body.backend_params)
    prompt_count, source = _prompt_source(session, principal, project.id, body)
    if prompt_count * body.n * k > MAX_SAMPLES:
        raise Invalid(
            f"At most {MAX_SAMPLES} samples per request (prompts times n times responses per item)."
        )
    params: dict[str, Any] = {
        "project_id": project.id,
        "model_version_id": version.id,
        **source,
        "n": body.n,
        "responses_per_item": k,
        "sampling": {**body.sampling, "seed": sampling.seed},
        "backend": body.backend,
        "backend_params": body.backend_params,
    }
    job = jobs.enqueue(session, GENERATE, params, project_id=project.id, created_by=principal.id)
    record(
        session,
        principal.id,
        "generation.create",
        "project",
        project.id,
        job_id=job.id,
        model_version_id=version.id,
        prompts=prompt_count,
        prompt_set_id=body.prompt_set_id,
    )
    return job


def _prompt_source(
    session: Session, principal: Principal, project_id: int, body: GenerateRequest
) -> tuple[int, dict[str, Any]]:
    """How many prompts the job samples, and the params that name them: the list itself, or
    the prompt set and the indices of its sample (the set never changes, and cannot be deleted
    while this job names it, so a re-delivered job reads the same prompts)."""
    if body.prompts is not None:
        return len(body.prompts), {"prompts": body.prompts}
    assert body.prompt_set_id is not None  # the schema asks for exactly one
    try:
        found = prompt_sets.get_prompt_set(
            session, principal, project_id, body.prompt_set_id, text=False
        )
    except NotFound:
        raise Invalid(
            f"prompt_set_id: prompt set {body.prompt_set_id} is not in project {project_id}.",
            field="prompt_set_id",
        ) from None
    # Lock the set's row against a concurrent delete until this job is committed.
    session.execute(select(PromptSet.id).where(PromptSet.id == found.id).with_for_update())
    indices = prompt_sets.choose(found.count, body.prompt_sample, body.prompt_seed)
    count = found.count if indices is None else len(indices)
    return count, {
        "prompt_set_id": found.id,
        "prompt_set_sha256": found.sha256,
        "prompt_indices": indices,
        "prompt_count": count,
        "prompt_seed": body.prompt_seed,
    }


def prompt_count(params: dict[str, Any]) -> int:
    """How many prompts a generation job's params name."""
    if "prompts" in params:
        return len(params["prompts"])
    indices = params.get("prompt_indices")
    return len(indices) if indices is not None else int(params["prompt_count"])
