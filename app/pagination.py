"""Keyset pagination: `?limit=&cursor=`, where the cursor is the last id of the previous page."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

from app.errors import Invalid
from app.validation import BIGINT_MAX

MAX_LIMIT = 500
S = TypeVar("S", bound=Select[Any])

# The query parameters of every list route, documented with their bounds.
Limit = Annotated[int | None, Query(ge=1, le=MAX_LIMIT, description="Page size (default 50).")]
Cursor = Annotated[
    str | None,
    Query(pattern=r"^[0-9]{1,19}$", description="`next_cursor` of the previous page."),
]


@dataclass(frozen=True, slots=True)
class Keyset:
    limit: int
    after_id: int | None

    @classmethod
    def parse(cls, limit: int | None, cursor: str | None, default: int = 50) -> Keyset:
        n = default if limit is None else limit
        if not 1 <= n <= MAX_LIMIT:
            raise Invalid(f"limit must be between 1 and {MAX_LIMIT}.")
        after = None
        if cursor:
            # ASCII digits only: str.isdigit() also takes superscripts and other scripts' digits.
            if not (cursor.isascii() and cursor.isdigit()) or int(cursor) > BIGINT_MAX:
                raise Invalid("cursor is not one this API returned.")
            after = int(cursor)
        return cls(n, after)

    def newest_first(self, stmt: S, id_column: InstrumentedAttribute[int]) -> S:
        """`stmt` narrowed to this page, highest id first: after the cursor, limit+1 rows."""
        stmt = stmt.order_by(id_column.desc()).limit(self.limit + 1)
        return stmt if self.after_id is None else stmt.where(id_column < self.after_id)

    def next_cursor(self, last_ids: list[int]) -> str | None:
        """Given up to limit+1 fetched ids, the cursor for the next page (or None)."""
        return str(last_ids[self.limit - 1]) if len(last_ids) > self.limit else None

    def page(self, rows: Sequence[Any], key: Callable[[Any], int] = lambda r: r.id) -> Page:
        """The page answer for up to limit+1 rows fetched in key order."""
        return Page(
            items=list(rows[: self.limit]), next_cursor=self.next_cursor([key(r) for r in rows])
        )


class Page(BaseModel):
    """`{"items": [...], "next_cursor": ...}`: every list route's answer."""

    items: list[Any]
    next_cursor: str | None


def like_pattern(text: str) -> str:
    """An ILIKE pattern (escape character backslash) matching `text` anywhere, its wildcards
    taken literally: the lists' search boxes."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
