"""The authorization matrix: every route, called by every kind of caller, answers as declared.

Callers (columns): no credentials, a bad token, an annotator and a researcher who are not
members of the project (they are members elsewhere), an annotator and a researcher who are,
an admin (a member of nothing), and the researcher member's browser session *without* its
CSRF token. JSON routes are called with bearer tokens, pages with session cookies (and the
form's CSRF field). Each write runs against a fresh world, so callers cannot disturb each
other's outcome.

A route that is not in these tables fails `test_every_route_declares_its_rule`: a new route
must say who may call it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.routes import (
    API,
    COLUMNS,
    NOT_ROUTES,
    PAGES,
    Page,
    Rule,
    call_api,
    call_page,
    credentials,
)
from tests.world import World, build_world

pytestmark = pytest.mark.authz


def _route_keys() -> set[str]:
    from app.main import app

    keys = set()
    for route in app.routes:
        if isinstance(route, APIRoute):
            keys |= {f"{m} {route.path}" for m in route.methods}
        else:
            assert getattr(route, "path", None) in NOT_ROUTES | {
                "/static",
                "/static/{path:path}",
            }, route
    return keys


def test_every_route_declares_its_rule() -> None:
    routes = _route_keys()
    declared = set(API) | set(PAGES)
    assert sorted(routes - declared) == [], "add these routes to tests/routes.py"
    assert sorted(declared - routes) == [], "these entries name routes that no longer exist"


@pytest.fixture
def world_factory(password_hash: str) -> Callable[[], World]:
    return lambda: build_world(password_hash)


@pytest.fixture
def client() -> Iterator[TestClient]:
    from app.main import app

    with TestClient(app) as c:
        yield c


def _check(
    key: str,
    rule: Rule | Page,
    world_factory: Callable[[], World],
    call: Callable[[str, World], httpx.Response],
) -> None:
    method = key.split(" ", 1)[0]
    shared = world_factory() if method == "GET" else None
    wrong = []
    for caller in COLUMNS:
        w = shared or world_factory()
        r = call(caller, w)
        want = rule.expected(caller, method)
        if r.status_code != want:
            wrong.append(f"{caller}: {r.status_code} (want {want}) {r.text[:160]}")
        elif r.status_code >= 400 and r.headers.get("content-type", "").startswith(
            "application/json"
        ):
            assert r.json().get("error"), f"{key} as {caller}: no error code in {r.text[:160]}"
    assert not wrong, f"{key}:\n  " + "\n  ".join(wrong)


@pytest.mark.parametrize("key", sorted(API))
def test_api_route_authorization(
    key: str, world_factory: Callable[[], World], client: TestClient
) -> None:
    _check(key, API[key], world_factory, lambda c, w: call_api(client, key, API[key], c, w))


@pytest.mark.parametrize("key", sorted(PAGES))
def test_page_authorization(
    key: str, world_factory: Callable[[], World], client: TestClient
) -> None:
    _check(key, PAGES[key], world_factory, lambda c, w: call_page(client, key, PAGES[key], c, w))


def test_outsiders_see_nothing_of_the_project_in_listings(
    world_factory: Callable[[], World], client: TestClient
) -> None:
    w = world_factory()
    for caller in ("annotator_outsider", "researcher_outsider"):
        headers, _ = credentials(caller, w, page=False)
        listed = client.get("/api/v1/projects", headers=headers).json()["items"]
        assert w.project not in {p["id"] for p in listed}
