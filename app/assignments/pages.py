"""HTML routes: the annotate workspace, and the page-only JSON call that serves it tasks with
their Markdown already rendered and sanitized (the JSON API itself returns raw text)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.assignments import engine
from app.auth.deps import CurrentUser, DbSession
from app.db import retrying
from app.projects import progress
from app.projects.rules import TaskKind
from app.projects.service import get_project
from app.quality.service import active_pause
from app.validation import PathId
from app.web.deps import PageRoute, PageUser
from app.web.markdown import render_markdown
from app.web.templating import assets, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)
# Cookie-authenticated JSON for the workspace's script (CSRF header checked by CurrentUser).
data_router = APIRouter(include_in_schema=False)


@router.get("/projects/{project_id}/annotate")
def annotate_page(
    project_id: PathId, request: Request, principal: PageUser, session: DbSession
) -> Response:
    project = get_project(session, principal, project_id)
    counts = progress.project_progress(session, principal, project.id)
    boot = {
        "project_id": project.id,
        "user_id": principal.id,
        "kind": project.kind,
        "span_labels": list(project.span_labels),
        "aspects": list(project.aspects),
        "allow_tie": project.allow_tie,
        "has_guidelines": bool(project.guidelines.strip()),
        "done": counts.my_done,
        "remaining": counts.my_remaining,
        "items": counts.items,  # none: the page says the project is empty, not "all done"
        # What main.js preloads: the workspace and this kind's module, with their imports.
        "modules": assets.module_preloads(
            "annotate/workspace.js", f"annotate/kinds/{project.kind}.js"
        ),
    }
    return render(
        request,
        "annotate.html",
        {
            "project": project,
            "boot": boot,
            "guidelines_html": render_markdown(project.guidelines),
            "progress": counts,
            # Paused by gold checks or a researcher: the page says why (no task is served).
            "pause": active_pause(session, project.id, principal.id),
        },
        principal=principal,
    )


def _rendered(task: dict[str, Any]) -> dict[str, Any]:
    item = task["item"]
    # Span offsets refer to the raw text, so span responses are shown as plain text (by the
    # script, through textContent); the other kinds read better as Markdown.
    with_html = task["kind"] != TaskKind.span.value
    return {
        **task,
        "item": {
            **item,
            "prompt_html": str(render_markdown(item["prompt"])),
            "responses": [
                {**r, "html": str(render_markdown(r["text"])) if with_html else None}
                for r in item["responses"]
            ],
        },
    }


@data_router.post("/projects/{project_id}/annotate/next")
def next_task(project_id: PathId, principal: CurrentUser, session: DbSession) -> dict[str, Any]:
    """The caller's current or next task (`task: null` when nothing is left), Markdown rendered."""
    task = retrying(session, lambda: engine.next_task(session, principal, project_id))
    return {
        "task": None if task is None else _rendered(task),
        "server_time": datetime.now(UTC),
    }
