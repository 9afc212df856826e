"""HTML pages of the model registry: every version, and one version with its lineage."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.auth.deps import DbSession
from app.auth.models import Role
from app.auth.service import require_role
from app.pagination import MAX_LIMIT, Keyset
from app.registry import lineage, service
from app.training.runs.charts import loss_chart, scalar_metrics, show
from app.validation import PathId
from app.web.deps import PageRoute, PageUser
from app.web.templating import render

LABELS_SHOWN = 20
router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/models")
def models_page(request: Request, principal: PageUser, session: DbSession) -> Response:
    require_role(principal, Role.researcher)
    versions = service.list_versions(session, principal, Keyset(MAX_LIMIT, None))
    rows = [service.to_out(session, v) for v in versions]
    return render(request, "models.html", {"models": rows}, principal=principal)


@router.get("/models/{model_id}")
def model_page(
    model_id: PathId, request: Request, principal: PageUser, session: DbSession
) -> Response:
    version = service.get_version(session, principal, model_id)
    model = service.to_out(session, version)
    curve = (model.metrics or {}).get("loss_curve") or []
    return render(
        request,
        "model.html",
        {
            "model": model,
            "numbers": {k: show(v) for k, v in scalar_metrics(model.metrics).items()},
            "chart": loss_chart([(model.name, curve)], f"model-{model.id}") if curve else None,
            "trained": lineage.model_lineage(session, principal, version),
            "labels": lineage.label_page(session, principal, version, Keyset(LABELS_SHOWN, None)),
        },
        principal=principal,
    )
