"""Helpers shared by the tests: SQL on the test database, API actors, item rows to upload."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg

PASSWORD = "correct horse battery"


def sql(query: str, *params: object) -> list[tuple[Any, ...]]:
    """Run one statement on the test database in its own autocommitted connection.

    Placeholders are psycopg's (%s); returns the rows, or [] for a statement without any.
    """
    with psycopg.connect(os.environ["TANDEM_DATABASE_URL"], autocommit=True) as conn:
        cur = conn.execute(query, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def sql_value(query: str, *params: object) -> Any:
    """The single value of a one-row, one-column query."""
    [(value,)] = sql(query, *params)
    return value


@dataclass
class Actor:
    """A user with a bearer token, and an HTTP client that sends it."""

    id: int
    email: str
    role: str
    token: str
    client: httpx.Client

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


RESPONSES_PER_KIND = {"pairwise": 2, "ranking": 4, "span": 1, "critique": 1}


def make_items(kind: str, n: int, prefix: str = "x") -> list[dict[str, object]]:
    """Item rows as the import API takes them: response j of item i reads "response i.j ..."."""
    return [
        {
            "external_id": f"{prefix}-{i}",
            "prompt": f"prompt {i}",
            "responses": [
                {"text": f"response {i}.{j} 🙂 日本", "model": f"m{j}"}
                for j in range(RESPONSES_PER_KIND[kind])
            ],
        }
        for i in range(n)
    ]
