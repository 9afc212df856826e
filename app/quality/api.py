"""JSON routes for a project's quality: stats, leaderboard, annotators, pauses, settings, the
review queue and adjudication. Researchers (and admins) of the project only."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Response, status

from app.auth.deps import DbSession, Researcher
from app.quality import service
from app.quality.schemas import AdjudicationBody, PauseBody, QualitySettingsPatch
from app.validation import PathId

router = APIRouter(prefix="/api/v1/projects/{project_id}", tags=["quality"])


def _json(body: Any) -> Response:
    # orjson writes NaN and infinities as null: no NaN can reach a client.
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/stats", response_class=Response)
def get_stats(project_id: PathId, principal: Researcher, session: DbSession) -> Response:
    """The last statistics snapshot (`snapshot_at`); a stale one is refreshed in the
    background (`refresh_job_id`). An empty project answers `empty: true` and why."""
    return _json(service.project_stats(session, principal, project_id))


@router.post("/stats/refresh", status_code=status.HTTP_202_ACCEPTED)
def refresh_stats(project_id: PathId, principal: Researcher, session: DbSession) -> dict[str, int]:
    """Recompute now (or the refresh already queued or running): poll GET /jobs/{job_id}."""
    return {"job_id": service.refresh_now(session, principal, project_id)}


@router.get(
    "/leaderboard",
    response_class=Response,
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
)
def get_leaderboard(
    project_id: PathId,
    principal: Researcher,
    session: DbSession,
    source: Annotated[Literal["all", "human", "ai"], Query()] = "all",
    length_control: Annotated[bool, Query()] = False,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    """Bradley-Terry scores on the Elo scale with 95% bootstrap intervals, by vote source;
    `length_control=true` adds response length as a covariate (fitted on that source's votes)."""
    board = service.leaderboard(session, principal, project_id, source, length_control)
    if format == "csv":
        suffix = "-length-controlled" if length_control else ""
        name = f"project-{project_id}-leaderboard-{source}{suffix}.csv"
        return Response(
            service.leaderboard_csv(board),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return _json(board)


@router.get("/annotators/{user_id}/quality", response_class=Response)
def get_annotator_quality(
    project_id: PathId, user_id: PathId, principal: Researcher, session: DbSession
) -> Response:
    return _json(service.annotator_quality(session, principal, project_id, user_id))


@router.get("/pauses")
def list_pauses(
    project_id: PathId, principal: Researcher, session: DbSession
) -> list[dict[str, Any]]:
    return service.list_pauses(session, principal, project_id)


@router.put("/annotators/{user_id}/pause")
def pause_annotator(
    project_id: PathId, user_id: PathId, body: PauseBody, principal: Researcher, session: DbSession
) -> dict[str, Any]:
    """Pause an annotator by hand: they are served no tasks here until lifted."""
    return service.pause(session, principal, project_id, user_id, body.reason)


@router.delete("/annotators/{user_id}/pause", status_code=status.HTTP_204_NO_CONTENT)
def lift_pause(
    project_id: PathId, user_id: PathId, principal: Researcher, session: DbSession
) -> None:
    """Lift the pause in force (no-op if none); earlier gold answers stop counting."""
    service.lift(session, principal, project_id, user_id)


@router.get("/quality-settings")
def get_quality_settings(
    project_id: PathId, principal: Researcher, session: DbSession
) -> dict[str, Any]:
    return service.get_settings(session, principal, project_id)


@router.patch("/quality-settings")
def patch_quality_settings(
    project_id: PathId, body: QualitySettingsPatch, principal: Researcher, session: DbSession
) -> dict[str, Any]:
    return service.update_settings(session, principal, project_id, body.changes())


@router.get("/review")
def get_review_queue(
    project_id: PathId,
    principal: Researcher,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    below: Annotated[float | None, Query(ge=0.0, le=1.0, allow_inf_nan=False)] = None,
) -> dict[str, Any]:
    """Items whose human votes disagree: the top answer's share is under `below` (default:
    the project's `review_below`), not yet adjudicated; most divided first."""
    return service.review_queue(session, principal, project_id, limit, below)


@router.put("/items/{item_id}/adjudication")
def put_adjudication(
    project_id: PathId,
    item_id: PathId,
    body: AdjudicationBody,
    principal: Researcher,
    session: DbSession,
) -> dict[str, Any]:
    """The item's final label; it wins aggregation in exports (with its provenance)."""
    return service.adjudicate(
        session, principal, project_id, item_id, body.decision(), note=body.note
    )


@router.delete("/items/{item_id}/adjudication", status_code=status.HTTP_204_NO_CONTENT)
def delete_adjudication(
    project_id: PathId, item_id: PathId, principal: Researcher, session: DbSession
) -> None:
    service.remove_adjudication(session, principal, project_id, item_id)
