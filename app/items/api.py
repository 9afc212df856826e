"""JSON routes for items: import (JSON array, JSONL or Parquet; inline or as a job) and listing."""

from __future__ import annotations

import tempfile
from typing import IO, Literal

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from app.auth.deps import DbSession, Researcher
from app.config import get_settings
from app.errors import Invalid
from app.items import importer, service
from app.items.readers import Format
from app.items.schemas import ImportQueued, ImportResult
from app.pagination import Cursor, Keyset, Limit, Page
from app.validation import PathId

router = APIRouter(prefix="/api/v1/projects/{project_id}/items", tags=["items"])

SPOOL_IN_MEMORY = 1024 * 1024


async def _spool(request: Request) -> tuple[IO[bytes], int]:
    """Copy the upload to a temp file (kept in memory while small); the file part for multipart."""
    content_type = request.headers.get("content-type", "")
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=5)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise Invalid("The multipart upload needs a file field named 'file'.")
        while chunk := await upload.read(SPOOL_IN_MEMORY):
            spool.write(chunk)
        await upload.close()
    else:
        async for chunk in request.stream():
            spool.write(chunk)
    size = spool.tell()
    spool.seek(0)
    return spool, size


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ImportResult,
    responses={202: {"model": ImportQueued, "description": "Large file: imported by a job."}},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                "application/x-ndjson": {"schema": {"type": "string"}},
                "application/vnd.apache.parquet": {
                    "schema": {"type": "string", "format": "binary"}
                },
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                },
            }
        }
    },
)
async def import_items(
    project_id: PathId,
    request: Request,
    principal: Researcher,
    session: DbSession,
    format: Literal["json", "jsonl", "parquet"] | None = None,
) -> ImportResult | JSONResponse:
    """Rows: `{external_id?, prompt, responses: [{id?, text, model?}], metadata?, priority?,
    is_gold?, gold_answer?}`. The format is sniffed from the content unless `format` is given."""
    spool, size = await _spool(request)
    fmt: Format | None = format
    try:
        if size > get_settings().async_import_bytes:
            job = await run_in_threadpool(
                importer.queue_import, session, principal, project_id, spool, fmt
            )
            return JSONResponse(
                ImportQueued(job_id=job.id).model_dump(), status_code=status.HTTP_202_ACCEPTED
            )
        return await run_in_threadpool(
            importer.import_file, session, principal, project_id, spool, fmt
        )
    finally:
        spool.close()


@router.get("", response_model=Page)
def list_items(
    project_id: PathId,
    principal: Researcher,
    session: DbSession,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Page:
    page = Keyset.parse(limit, cursor)
    items = service.list_items(session, principal, project_id, page)
    return page.page(items)
