"""HTML routes of the quality domain: the project dashboard, lifting pauses, and the review
queue where a researcher picks an item's final label. Same service functions as the API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.auth.deps import DbSession
from app.errors import DomainError
from app.quality import dashboard, review_form, service
from app.quality.errors import NoLeaderboard
from app.validation import PathId
from app.web.deps import FormUser, PageRoute, PageUser
from app.web.flash import read_flash, redirect_with_error
from app.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

NOTICES = {
    "refresh": "The statistics are being recomputed; reload in a moment.",
    "lifted": "Pause lifted: the annotator is served tasks again.",
    "decided": "Final label saved; it wins in exports.",
}


def _emails(session: Session, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(text("SELECT id, email FROM users WHERE id = ANY(:ids)"), {"ids": ids})
    return {r.id: r.email for r in rows}


@router.get("/projects/{project_id}/quality")
def quality_page(
    project_id: PathId,
    request: Request,
    principal: PageUser,
    session: DbSession,
    board_source: Annotated[service.Source, Query()] = "all",
    length_control: Annotated[bool, Query()] = False,
) -> Response:
    """The dashboard; `board_source` and `length_control` choose which leaderboard is shown."""
    stats = service.project_stats(session, principal, project_id)
    annotators = stats.get("annotators") or []
    pauses = service.list_pauses(session, principal, project_id)
    pairs = (stats.get("rater_pairs") or {}).get("lowest") or []
    emails = _emails(
        session,
        [a["user_id"] for a in annotators]
        + [p["user_id"] for p in pauses]
        + [u for p in pairs for u in (p["rater_a"], p["rater_b"])],
    )
    board: dict[str, Any] | None = None
    board_why = ""
    has_board = False
    try:
        board = service.leaderboard(session, principal, project_id, board_source, length_control)
        has_board = True
        if not board["ratings"]:
            board_why, board = board["explanation"], None
    except NoLeaderboard as exc:
        board_why = exc.message
    has_snapshot = stats["snapshot_at"] is not None
    return render(
        request,
        "quality.html",
        {
            "pid": project_id,
            "project_name": _project_name(session, project_id),
            "stats": stats,
            "charts": dashboard.charts(stats, emails) if has_snapshot else {},
            "annotators": annotators,
            "emails": emails,
            "pauses": pauses,
            "board": board,
            "board_chart": dashboard.leaderboard_chart(board) if board else None,
            "board_why": board_why,
            # The choice of board is offered whenever the project can have one.
            "board_choice": {"source": board_source, "length_control": length_control}
            if has_board
            else None,
            "notice": NOTICES.get(request.query_params.get("notice", ""), ""),
        },
        principal=principal,
    )


def _project_name(session: Session, project_id: int) -> str:
    name: str = session.execute(
        text("SELECT name FROM projects WHERE id = :p"), {"p": project_id}
    ).scalar_one()
    return name


@router.post("/projects/{project_id}/quality/refresh")
def refresh(project_id: PathId, principal: FormUser, session: DbSession) -> Response:
    service.refresh_now(session, principal, project_id)
    return RedirectResponse(f"/projects/{project_id}/quality?notice=refresh", status_code=303)


@router.post("/projects/{project_id}/annotators/{user_id}/lift")
def lift(project_id: PathId, user_id: PathId, principal: FormUser, session: DbSession) -> Response:
    service.lift(session, principal, project_id, user_id)
    return RedirectResponse(f"/projects/{project_id}/quality?notice=lifted", status_code=303)


@router.get("/projects/{project_id}/review")
def review_page(
    project_id: PathId, request: Request, principal: PageUser, session: DbSession
) -> Response:
    errors, _ = read_flash(request)
    return _review(request, principal, session, project_id, errors.get("form", ""))


def _review(
    request: Request,
    principal: Any,
    session: Session,
    project_id: int,
    error: str = "",
) -> Response:
    # Re-shown after a refused pick: read only, so that the refused request changes nothing.
    queue = service.review_queue(session, principal, project_id, limit=50, ask_refresh=not error)
    people = [a["annotator_id"] for i in queue["items"] for a in i.get("annotations", [])]
    emails = _emails(session, [u for u in people if u is not None])
    if queue["kind"] == "span":
        for item in queue["items"]:
            text_ = item["responses"][0]["text"]
            for a in item["annotations"]:
                a["segments"] = review_form.segments(text_, a["spans"])
            item["edit_lines"] = review_form.span_lines(
                text_, review_form.starting_spans(item["annotations"])
            )
    return render(
        request,
        "review.html",
        {
            "pid": project_id,
            "project_name": _project_name(session, project_id),
            "queue": queue,
            "emails": emails,
            "error": error,
            "notice": NOTICES.get(request.query_params.get("notice", ""), ""),
        },
        principal=principal,
    )


@router.post("/projects/{project_id}/review/{item_id}")
async def decide(
    project_id: PathId, item_id: PathId, request: Request, principal: FormUser, session: DbSession
) -> Response:
    """The pressed button is the decision: `preferred=<response id>`, `tie=1`, `order=<ids,
    best first>`, `from_annotation=<id>` (keep that annotation's spans or critique), or
    `save=edited` (spans) / `save=written` (critique) with the fields (review_form.py)."""
    form = await request.form()
    try:
        service.adjudicate(
            session,
            principal,
            project_id,
            item_id,
            review_form.decision(form),
            note=review_form.note(form.get("note")),
        )
    except DomainError as exc:
        session.rollback()
        if exc.status_code in (403, 404):
            raise
        return redirect_with_error(f"/projects/{project_id}/review", {"form": exc.message})
    return RedirectResponse(f"/projects/{project_id}/review?notice=decided", status_code=303)
