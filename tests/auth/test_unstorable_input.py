"""Credentials and user fields at the edge: NUL and lone surrogates are a 422 naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Actor
from tests.projects.test_projects import sql
from tests.rawjson import JSON, NAN, NUL, SURROGATE, raw


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": f"x{NUL}@example.org", "password": "long enough"}, "email"),
        ({"email": f"x{SURROGATE}@example.org", "password": "long enough"}, "email"),
        ({"email": "x@example.org", "password": f"long {NUL} enough"}, "password"),
        ({"email": "x@example.org", "password": f"long {SURROGATE} enough"}, "password"),
        ({"email": "x@example.org", "password": "long enough", "role": NUL}, "role"),
        ({"email": "x@example.org", "password": NAN}, "password"),
    ],
)
def test_unstorable_user_fields_are_422(admin: Actor, body: dict[str, Any], field: str) -> None:
    before = sql("SELECT count(*) FROM users")
    r = admin.client.post("/api/v1/users", content=raw(body), headers=JSON)
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"]
    assert sql("SELECT count(*) FROM users") == before


@pytest.mark.parametrize("route", ["/api/v1/auth/token", "/api/v1/auth/session"])
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": f"x{NUL}@example.org", "password": "whatever"}, "email"),
        ({"email": f"x{SURROGATE}@example.org", "password": "whatever"}, "email"),
        ({"email": "x@example.org", "password": SURROGATE}, "password"),
        ({"email": "x@example.org", "password": NUL}, "password"),
    ],
)
def test_unstorable_credentials_are_422(
    admin: Actor, route: str, body: dict[str, Any], field: str
) -> None:
    r = admin.client.post(route, content=raw(body), headers=JSON)
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"]
