"""Reading items back (researchers): keyset pages with their responses."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import Role
from app.auth.service import Principal, require_role
from app.items.models import Item, Response
from app.items.schemas import ItemOut, ResponseOut
from app.pagination import Keyset
from app.projects.service import get_project


def list_items(
    session: Session, principal: Principal, project_id: int, page: Keyset
) -> list[ItemOut]:
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    stmt = select(Item).where(Item.project_id == project.id).order_by(Item.id).limit(page.limit + 1)
    if page.after_id is not None:
        stmt = stmt.where(Item.id > page.after_id)
    items = list(session.scalars(stmt))
    responses: dict[int, list[ResponseOut]] = {i.id: [] for i in items}
    if items:
        for r in session.scalars(
            select(Response)
            .where(Response.item_id.in_(list(responses)))
            .order_by(Response.item_id, Response.position)
        ):
            responses[r.item_id].append(
                ResponseOut(id=r.id, external_id=r.external_id, text=r.text, model=r.model)
            )
    return [
        ItemOut(
            id=i.id,
            external_id=i.external_id,
            prompt=i.prompt,
            metadata=i.meta,
            priority=i.priority,
            is_gold=i.is_gold,
            gold_answer=i.gold_answer,
            responses=responses[i.id],
            created_at=i.created_at,
        )
        for i in items
    ]
