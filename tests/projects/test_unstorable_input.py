"""Project settings, members and ids at the edge: NUL, lone surrogates, NaN and ids past BIGINT
are a 422 (or 404) naming the field, never a 500, and change nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Actor
from tests.projects.test_projects import sql
from tests.rawjson import BIG_FLOAT, BIGINT_MAX, INF, JSON, NAN, NUL, SURROGATE, raw

API = "/api/v1/projects"


def _projects() -> list[tuple[Any, ...]]:
    return sql("SELECT id, name, guidelines, span_labels::text, overlap FROM projects ORDER BY id")


CREATE_CASES: list[tuple[dict[str, Any], str]] = [
    ({"name": NUL, "kind": "pairwise"}, "name"),
    ({"name": SURROGATE, "kind": "pairwise"}, "name"),
    ({"name": "ok", "kind": "pairwise", "guidelines": NUL}, "guidelines"),
    ({"name": "ok", "kind": "pairwise", "guidelines": SURROGATE}, "guidelines"),
    ({"name": "ok", "kind": "span", "span_labels": ["fine", NUL]}, "span_labels"),
    ({"name": "ok", "kind": "span", "span_labels": [SURROGATE]}, "span_labels"),
    ({"name": "ok", "kind": "pairwise", "aspects": [NUL]}, "aspects"),
    ({"name": "ok", "kind": "pairwise", "overlap": NAN}, "overlap"),
    ({"name": "ok", "kind": "pairwise", "overlap": BIG_FLOAT}, "overlap"),
    ({"name": "ok", "kind": "pairwise", "lease_seconds": INF}, "lease_seconds"),
    ({"name": "ok", "kind": "pairwise", "lease_seconds": 2**70}, "lease_seconds"),
    ({"name": "ok", "kind": NUL}, "kind"),
]


@pytest.mark.parametrize(("body", "field"), CREATE_CASES)
def test_unstorable_project_settings_are_422(
    researcher: Actor, body: dict[str, Any], field: str
) -> None:
    r = researcher.client.post(API, content=raw(body), headers=JSON)
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"]
    assert r.json()["error"] == "validation_error"
    assert _projects() == []


@pytest.mark.parametrize(("body", "field"), [(b, f) for b, f in CREATE_CASES if f != "kind"])
def test_unstorable_patch_is_422_and_changes_nothing(
    researcher: Actor,
    project_factory: Callable[..., dict[str, Any]],
    body: dict[str, Any],
    field: str,
) -> None:
    p = project_factory("span", items=0)
    before = _projects()
    patch = {k: v for k, v in body.items() if k != "kind"}
    r = researcher.client.patch(f"{API}/{p['id']}", content=raw(patch), headers=JSON)
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"]
    assert _projects() == before


@pytest.mark.parametrize("pid", [str(BIGINT_MAX + 1), str(2**70), "-1"])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "", None),
        ("PATCH", "", {"name": "x"}),
        ("GET", "/members", None),
        ("POST", "/members", {"user_id": 1}),
        ("DELETE", "/members/1", None),
        ("GET", "/progress", None),
        ("GET", "/items", None),
        ("POST", "/items", [{"prompt": "p", "responses": [{"text": "a"}, {"text": "b"}]}]),
        ("GET", "/exports", None),
        ("POST", "/exports", {"schema": "preference"}),
        ("GET", "/exports/1", None),
        ("GET", "/export", None),
    ],
)
def test_out_of_range_project_ids_are_404_or_422(
    admin: Actor, pid: str, method: str, path: str, body: Any
) -> None:
    r = admin.client.request(method, f"{API}/{pid}{path}", json=body)
    assert r.status_code in (404, 422), r.text
    assert r.json()["error"] in ("not_found", "validation_error")


@pytest.mark.parametrize("user_id", [BIGINT_MAX + 1, 2**70, NAN, BIG_FLOAT, -1, 0])
def test_out_of_range_member_ids_are_rejected(
    researcher: Actor, project_factory: Callable[..., dict[str, Any]], user_id: Any
) -> None:
    p = project_factory("pairwise", items=0)
    before = sql("SELECT * FROM project_members ORDER BY 1, 2")
    r = researcher.client.post(
        f"{API}/{p['id']}/members", content=raw({"user_id": user_id}), headers=JSON
    )
    assert r.status_code in (404, 422), r.text
    assert sql("SELECT * FROM project_members ORDER BY 1, 2") == before
    r = researcher.client.delete(f"{API}/{p['id']}/members/{raw(user_id).decode()}")
    assert r.status_code in (404, 422), r.text


@pytest.mark.parametrize(
    "cursor", ["²", "١٢", str(BIGINT_MAX + 1), str(2**70), "-5", "1.5", "0x10", NUL]
)
@pytest.mark.parametrize("route", ["", "/{pid}/items", "/{pid}/exports"])
def test_cursors_that_this_api_never_returns_are_422(
    researcher: Actor, project_factory: Callable[..., dict[str, Any]], cursor: str, route: str
) -> None:
    p = project_factory("pairwise", items=2)
    r = researcher.client.get(API + route.format(pid=p["id"]), params={"cursor": cursor})
    assert r.status_code == 422, r.text
    assert "cursor" in r.json()["detail"]
    assert r.json()["error"] in ("validation_error", "invalid")


@pytest.mark.parametrize("limit", [str(2**70), "²", "NaN", "-1"])
def test_out_of_range_limits_are_422(researcher: Actor, limit: str) -> None:
    r = researcher.client.get(API, params={"limit": limit})
    assert r.status_code == 422, r.text
    assert "limit" in r.json()["detail"]
