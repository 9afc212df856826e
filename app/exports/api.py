"""JSON routes for exports: stream one now, or ask for a frozen snapshot and download its files."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import ValidationError

from app.auth.deps import DbSession, Researcher
from app.errors import ValidationFailed
from app.exports import service
from app.exports.schemas import (
    ExportOptions,
    ExportOut,
    ExportPreview,
    ExportQuery,
    ExportQueued,
    Format,
)
from app.exports.writers import MEDIA_TYPES
from app.pagination import Cursor, Keyset, Limit, Page
from app.validation import PathId

router = APIRouter(prefix="/api/v1/projects/{project_id}", tags=["exports"])
# Set on a streamed export with no rows: why (the snapshot's manifest says it as `empty_reason`).
EMPTY_REASON_HEADER = "X-Tandem-Empty-Reason"


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {m: {} for m in MEDIA_TYPES.values()}}},
)
def export_now(
    project_id: PathId,
    principal: Researcher,
    session: DbSession,
    query: Annotated[ExportQuery, Query()],
) -> StreamingResponse:
    """Stream an export read from one consistent snapshot. Item metadata filters are
    `metadata=key=value` (repeat for several keys); unknown parameters are a 422."""
    try:
        options = query.to_options()
    except ValidationError as err:
        raise ValidationFailed.from_pydantic(err, prefix="query") from None
    streamed = service.stream_export(session, principal, project_id, options)
    name = f"project-{project_id}-{service.file_name(options)}"
    headers = _attachment(name)
    if streamed.empty_reason is not None:
        headers[EMPTY_REASON_HEADER] = streamed.empty_reason
    return StreamingResponse(
        streamed.chunks, media_type=MEDIA_TYPES[options.format], headers=headers
    )


@router.get("/export/preview", response_model=ExportPreview)
def preview(
    project_id: PathId,
    principal: Researcher,
    session: DbSession,
    query: Annotated[ExportQuery, Query()],
) -> ExportPreview:
    """The rows an export with these options (the same as `GET /export`) would hold now, and
    why it would be empty; nothing is written. Costs one export's reading."""
    try:
        options = query.to_options()
    except ValidationError as err:
        raise ValidationFailed.from_pydantic(err, prefix="query") from None
    return ExportPreview(**asdict(service.preview_export(session, principal, project_id, options)))


@router.post("/exports", status_code=status.HTTP_202_ACCEPTED, response_model=ExportQueued)
def create_export(
    project_id: PathId, body: ExportOptions, principal: Researcher, session: DbSession
) -> ExportQueued:
    """A frozen snapshot written by a job: data file, manifest.json and a dataset card."""
    export, job = service.request_snapshot(session, principal, project_id, body)
    return ExportQueued(job_id=job.id, export_id=export.id)


@router.get("/exports", response_model=Page)
def list_exports(
    project_id: PathId,
    principal: Researcher,
    session: DbSession,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Page:
    page = Keyset.parse(limit, cursor)
    rows = service.list_exports(session, principal, project_id, page)
    return page.page(rows)


@router.get("/exports/{export_id}", response_model=ExportOut)
def get_export(
    project_id: PathId, export_id: PathId, principal: Researcher, session: DbSession
) -> ExportOut:
    return service.get_export(session, principal, project_id, export_id)


@router.get("/exports/{export_id}/download", response_class=FileResponse)
def download(
    project_id: PathId, export_id: PathId, principal: Researcher, session: DbSession
) -> FileResponse:
    path = service.export_file(session, principal, project_id, export_id, "data")
    fmt = Format(path.suffix.lstrip("."))
    return FileResponse(
        path,
        media_type=MEDIA_TYPES[fmt],
        filename=f"project-{project_id}-export-{export_id}-{path.name}",
    )


@router.get("/exports/{export_id}/manifest", response_class=FileResponse)
def manifest(
    project_id: PathId, export_id: PathId, principal: Researcher, session: DbSession
) -> FileResponse:
    path = service.export_file(session, principal, project_id, export_id, "manifest")
    return FileResponse(path, media_type="application/json")


@router.get("/exports/{export_id}/card", response_class=FileResponse)
def dataset_card(
    project_id: PathId, export_id: PathId, principal: Researcher, session: DbSession
) -> FileResponse:
    path = service.export_file(session, principal, project_id, export_id, "card")
    return FileResponse(path, media_type="text/markdown; charset=utf-8")


@router.delete("/exports/{export_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_export(
    project_id: PathId, export_id: PathId, principal: Researcher, session: DbSession
) -> None:
    """Delete a snapshot and its files; 409 `jobs_running` while its job is queued or running."""
    service.delete_export(session, principal, project_id, export_id)
