"""HTML routes of the items browser: a filtered, paginated list of a project's items and one
item with every vote (human and AI), skip reason and its provenance."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.auth.deps import DbSession
from app.items import browse
from app.items.browse import ItemFilter, ItemState
from app.pagination import Keyset
from app.validation import FiniteFloat, PathId
from app.web.deps import PageRoute, PageUser
from app.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PAGE_SIZE = 50


class ItemQuery(BaseModel):
    """The browser's filters; an empty field (the form's "any") means no filter."""

    model_config = ConfigDict(extra="ignore")

    state: ItemState | None = None
    gold: Literal["yes", "no"] | None = None
    min_votes: Annotated[int, Field(ge=0, le=100_000)] | None = None
    min_agreement: Annotated[FiniteFloat, Field(ge=0, le=1)] | None = None
    max_agreement: Annotated[FiniteFloat, Field(ge=0, le=1)] | None = None
    # In the model: FastAPI reads a query model only when it is the route's sole query input.
    cursor: Annotated[str, Field(pattern=r"^[0-9]{1,19}$")] | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _blank(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v

    def to_filter(self) -> ItemFilter:
        return ItemFilter(
            state=self.state,
            gold=None if self.gold is None else self.gold == "yes",
            min_votes=self.min_votes,
            min_agreement=self.min_agreement,
            max_agreement=self.max_agreement,
        )

    def query(self) -> str:
        """These filters as a query string (for the next page's link)."""
        values = self.model_dump(mode="json", exclude={"cursor"})
        return urlencode({k: v for k, v in values.items() if v is not None})


@router.get("/projects/{project_id}/items")
def items_page(
    project_id: PathId,
    request: Request,
    principal: PageUser,
    session: DbSession,
    filters: Annotated[ItemQuery, Query()],
) -> Response:
    cursor = filters.cursor
    page = Keyset.parse(PAGE_SIZE, cursor)
    project, rows, next_cursor = browse.list_items(
        session, principal, project_id, page, filters.to_filter()
    )
    return render(
        request,
        "items.html",
        {
            "project": project,
            "rows": rows,
            "filters": filters,
            "states": [s.value for s in ItemState],
            "next_cursor": next_cursor,
            "query": filters.query(),
            "first_page": cursor is None,
        },
        principal=principal,
    )


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


@router.get("/projects/{project_id}/items/{item_id}")
def item_page(
    project_id: PathId, item_id: PathId, request: Request, principal: PageUser, session: DbSession
) -> Response:
    detail = browse.item_detail(session, principal, project_id, item_id)
    return render(
        request,
        "item.html",
        {"d": detail, "project": detail.project, "pretty": _pretty},
        principal=principal,
    )
