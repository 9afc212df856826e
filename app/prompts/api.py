"""JSON routes of prompt sets: create (a JSON list or an uploaded file), list, read, delete."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response, status
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from app.auth.deps import DbSession, Researcher
from app.errors import Invalid, TooLarge, ValidationFailed
from app.pagination import Cursor, Keyset, Limit, Page
from app.prompts import service
from app.prompts.models import PromptSource
from app.prompts.readers import FILE_FORMATS, MAX_FILE_BYTES, FileFormat, read_prompts
from app.prompts.schemas import PromptSetCreate, PromptSetOut
from app.validation import PathId

router = APIRouter(prefix="/api/v1/projects/{project_id}/prompt-sets", tags=["prompt sets"])

JSON_LIMIT = 4 * 1024 * 1024  # as every JSON body; larger sets go as a file


def _json_body(raw: bytes) -> PromptSetCreate:
    if len(raw) > JSON_LIMIT:
        raise TooLarge("A JSON body is at most 4 MiB; upload a larger set as a file.")
    try:
        # Python's json reads NaN and Infinity; they are not JSON, and not prompts.
        data: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Invalid(f"The body is not valid JSON ({exc}).") from None
    try:
        return PromptSetCreate.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc, "body") from None


async def _file_body(request: Request) -> tuple[str, list[str], FileFormat]:
    form = await request.form(max_files=1, max_fields=5)  # a bad one is starlette's 400
    upload, name, fmt = form.get("file"), form.get("name"), form.get("format")
    if not isinstance(upload, UploadFile):
        raise Invalid("The multipart upload needs a file field named 'file'.", field="file")
    if fmt not in (None, "", *FILE_FORMATS):
        raise Invalid(f"format: one of {', '.join(FILE_FORMATS)}.", field="format")
    raw = await upload.read(MAX_FILE_BYTES + 1)
    await upload.close()
    prompts, chosen = read_prompts(raw, fmt or None, upload.filename)  # type: ignore[arg-type]
    if not isinstance(name, str) or not name.strip():
        name = upload.filename or ""
    return name, prompts, chosen


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=PromptSetOut,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": PromptSetCreate.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "name": {"type": "string"},
                            "file": {"type": "string", "format": "binary"},
                            "format": {"type": "string", "enum": list(FILE_FORMATS)},
                        },
                    }
                },
            }
        }
    },
)
async def create_prompt_set(
    project_id: PathId, request: Request, principal: Researcher, session: DbSession
) -> PromptSetOut:
    """A JSON body `{name, prompts: [...]}`, or multipart/form-data with `file` (JSONL with a
    `prompt` field, CSV with a `prompt` column, a JSON array, or plain text one per line; the
    format from the file's extension unless `format` is given) and `name` (default: the file
    name). At most 100,000 prompts of 100,000 characters; a bad line is a 422 naming it."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type == "multipart/form-data":
        name, prompts, fmt = await _file_body(request)
        source = PromptSource(fmt)
    elif content_type in ("", "application/json"):
        body = _json_body(await request.body())
        name, prompts, source = body.name, body.prompts, PromptSource.list
    else:
        raise Invalid(
            "Send JSON ({name, prompts}) or multipart/form-data with a file.",
            field="content-type",
        )
    created = await run_in_threadpool(
        service.create_prompt_set, session, principal, project_id, name, prompts, source
    )
    return service.to_out(created)


@router.get("", response_model=Page)
def list_prompt_sets(
    project_id: PathId,
    principal: Researcher,
    session: DbSession,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Page:
    """The project's prompt sets without their text (name, count, sha256), oldest first."""
    page = Keyset.parse(limit, cursor)
    rows = service.list_prompt_sets(session, principal, project_id, page)
    return page.page([service.to_out(r) for r in rows])


@router.get("/{prompt_set_id}", response_model=PromptSetOut)
def get_prompt_set(
    project_id: PathId, prompt_set_id: PathId, principal: Researcher, session: DbSession
) -> PromptSetOut:
    """One set with its prompts, in order."""
    found = service.get_prompt_set(session, principal, project_id, prompt_set_id, text=True)
    return service.to_out(found, text=True)


@router.delete("/{prompt_set_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_prompt_set(
    project_id: PathId, prompt_set_id: PathId, principal: Researcher, session: DbSession
) -> Response:
    """Delete a set that no generation job names (409 `prompt_set_in_use` otherwise)."""
    service.delete_prompt_set(session, principal, project_id, prompt_set_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
