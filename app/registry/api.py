"""JSON routes of the model registry: list and read versions with lineage, register, delete."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from app.auth.deps import Admin, DbSession, Researcher
from app.pagination import Cursor, Keyset, Limit, Page
from app.registry import lineage, service
from app.registry.models import ModelKind
from app.registry.schemas import BaseModelCreate, ItemLineage, ModelLineage, ModelOut
from app.validation import PathId

router = APIRouter(prefix="/api/v1/models", tags=["models"])
# Lineage seen from a project's item: what generated its responses, what its labels trained.
items_router = APIRouter(prefix="/api/v1/projects/{project_id}/items", tags=["models"])


@router.get("", response_model=Page)
def list_models(
    principal: Researcher,
    session: DbSession,
    kind: ModelKind | None = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Page:
    """Base models, and the trained versions of the projects the caller may see, oldest first."""
    page = Keyset.parse(limit, cursor)
    rows = service.list_versions(session, principal, page, kind)
    return page.page([service.to_out(session, v) for v in rows])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ModelOut)
def register_base_model(body: BaseModelCreate, principal: Admin, session: DbSession) -> ModelOut:
    """Register a base model from a folder, a .gguf file or a `package:` path (admin): its files
    are hashed now; workers load it from the same path."""
    version = service.register_base(session, principal, body)
    return service.to_out(session, version)


@router.get("/{model_id}", response_model=ModelOut)
def get_model(model_id: PathId, principal: Researcher, session: DbSession) -> ModelOut:
    return service.to_out(session, service.get_version(session, principal, model_id))


@router.delete("/{model_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_model(model_id: PathId, principal: Researcher, session: DbSession) -> Response:
    """Delete a version that no other version or run depends on (409 `model_in_use` otherwise)."""
    service.delete_version(session, principal, model_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{model_id}/lineage", response_model=ModelLineage)
def get_model_lineage(model_id: PathId, principal: Researcher, session: DbSession) -> ModelLineage:
    """The training runs and snapshots behind a version (its own run, its reward model's, its
    parents'), and its labels counted by source, annotator and judge."""
    version = service.get_version(session, principal, model_id)
    return lineage.model_lineage(session, principal, version)


@router.get("/{model_id}/lineage/labels", response_model=Page)
def list_model_labels(
    model_id: PathId,
    principal: Researcher,
    session: DbSession,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Page:
    """Exactly the labels (annotations) that trained the version or its inputs, by annotation
    id, each with its author, the versions that generated what it judged, and the snapshots
    and versions it went into."""
    page = Keyset.parse(limit, cursor)
    version = service.get_version(session, principal, model_id)
    return lineage.label_page(session, principal, version, page)


@items_router.get("/{item_id}/lineage", response_model=ItemLineage)
def get_item_lineage(
    project_id: PathId, item_id: PathId, principal: Researcher, session: DbSession
) -> ItemLineage:
    """The registry versions that generated an item's responses, and each of its labels with
    the versions trained on a snapshot that included it."""
    return lineage.item_lineage(session, principal, project_id, item_id)
