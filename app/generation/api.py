"""JSON route of generation: a registered model's samples become new items of a project."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.auth.deps import DbSession, Researcher
from app.generation import service
from app.generation.schemas import GenerateQueued, GenerateRequest
from app.validation import PathId

router = APIRouter(prefix="/api/v1/projects/{project_id}", tags=["generation"])


@router.post("/generate", status_code=status.HTTP_202_ACCEPTED, response_model=GenerateQueued)
def generate(
    project_id: PathId, body: GenerateRequest, principal: Researcher, session: DbSession
) -> GenerateQueued:
    """Queue a job that samples `n` items per prompt (2 responses each for pairwise, k for
    ranking, 1 for span and critique); every response records the model version."""
    job = service.request_generation(session, principal, project_id, body)
    return GenerateQueued(job_id=job.id, prompts=service.prompt_count(job.params))
