"""The prompt-sets page of a project: its sets (name, size, sha256, first prompts) and a form
that makes one from a file or from text typed one prompt per line, checked as the API checks."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import cast, func, select
from sqlalchemy.dialects.postgresql import JSONPATH
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from app.auth.deps import DbSession
from app.errors import DomainError, Invalid
from app.pagination import MAX_LIMIT, Keyset
from app.projects.service import get_project
from app.prompts import service
from app.prompts.models import PromptSet, PromptSource
from app.prompts.readers import FILE_FORMATS, MAX_FILE_BYTES, read_prompts, text_prompts
from app.validation import PathId
from app.web.deps import FormUser, PageRoute, PageUser
from app.web.flash import read_flash, redirect_with_error
from app.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

FIRST = "$[0 to 2]"  # the prompts shown per set


@router.get("/projects/{project_id}/prompt-sets")
def prompt_sets_page(
    project_id: PathId, request: Request, principal: PageUser, session: DbSession
) -> Response:
    sets = service.list_prompt_sets(session, principal, project_id, Keyset(MAX_LIMIT, None))
    project = get_project(session, principal, project_id)
    # The first prompts of each set, without loading whole sets.
    previews = {
        sid: list(first or [])
        for sid, first in session.execute(
            select(
                PromptSet.id, func.jsonb_path_query_array(PromptSet.prompts, cast(FIRST, JSONPATH))
            ).where(PromptSet.id.in_([s.id for s in sets]))
        )
    }
    errors, typed = read_flash(request)
    notice = "Prompt set created." if request.query_params.get("notice") == "created" else ""
    return render(
        request,
        "prompt_sets.html",
        {
            "project": project,
            "sets": [(service.to_out(s), previews.get(s.id, [])) for s in sets],
            "error": errors.get("form", ""),
            "values": typed,
            "formats": FILE_FORMATS,
            "notice": notice,
        },
        principal=principal,
    )


@router.post("/projects/{project_id}/prompt-sets")
async def create_prompt_set(
    project_id: PathId, request: Request, principal: FormUser, session: DbSession
) -> Response:
    """A file if one is chosen, else the text box (one prompt per line)."""
    form = await request.form(max_files=1, max_fields=8)
    name, typed, fmt, upload = (form.get(k) for k in ("name", "prompts", "format", "file"))
    name = name if isinstance(name, str) else ""
    typed = typed if isinstance(typed, str) else ""
    back = f"/projects/{project_id}/prompt-sets"
    try:
        if isinstance(upload, UploadFile) and upload.filename:
            if fmt not in (None, "", *FILE_FORMATS):
                raise Invalid(f"Format: one of {', '.join(FILE_FORMATS)}.")
            raw = await upload.read(MAX_FILE_BYTES + 1)
            prompts, chosen = read_prompts(raw, fmt or None, upload.filename)  # type: ignore[arg-type]
            source = PromptSource(chosen)
            name = name.strip() or upload.filename
        else:
            prompts, source = text_prompts(typed), PromptSource.text
            if not prompts:
                raise Invalid("Type prompts (one per line) or choose a file.")
        await run_in_threadpool(
            service.create_prompt_set, session, principal, project_id, name, prompts, source
        )
    except DomainError as exc:
        session.rollback()
        if exc.status_code in (403, 404):
            raise
        return redirect_with_error(back, {"form": exc.message}, {"name": name, "prompts": typed})
    return RedirectResponse(f"{back}?notice=created#sets", status_code=303)
