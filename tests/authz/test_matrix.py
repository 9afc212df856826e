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

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.conftest import PASSWORD
from tests.world import CALLERS, World, build_world

pytestmark = pytest.mark.authz

Body = Callable[[World], Any]
NO_CSRF = "session_without_csrf"
COLUMNS = (*CALLERS, NO_CSRF)


@dataclass(frozen=True)
class Rule:
    """Expected status per caller (in CALLERS order), and how to build the request."""

    statuses: tuple[int, int, int, int, int, int, int]
    json: Body | None = None
    # Routes that authenticate nobody (login, health): a cookie without CSRF changes nothing.
    public: bool = False

    def expected(self, caller: str, method: str) -> int:
        if caller == NO_CSRF:
            member = self.statuses[CALLERS.index("researcher_member")]
            return member if self.public or method == "GET" else 403
        return self.statuses[CALLERS.index(caller)]


def _login(w: World) -> dict[str, str]:
    return {"email": w.people["annotator_member"].email, "password": PASSWORD}


def _new_user(w: World) -> dict[str, str]:
    return {"email": f"new-{uuid.uuid4().hex[:8]}@example.org", "password": PASSWORD}


def _rows(w: World) -> list[dict[str, Any]]:
    return [{"prompt": "new", "responses": [{"text": "a"}, {"text": "b"}]}]


ANYONE = (200,) * 7
SIGNED_IN = (401, 401, 200, 200, 200, 200, 200)
MEMBERS = (401, 401, 404, 200, 404, 200, 200)
RESEARCHER_MEMBERS = (401, 401, 403, 403, 404, 200, 200)
ASSIGNEE = (401, 401, 403, 200, 403, 403, 403)

API: dict[str, Rule] = {
    "POST /api/v1/auth/token": Rule(ANYONE, _login, public=True),
    "DELETE /api/v1/auth/token": Rule((401, 401, 204, 204, 204, 204, 204)),
    "POST /api/v1/auth/session": Rule(ANYONE, _login, public=True),
    "DELETE /api/v1/auth/session": Rule((401, 401, 204, 204, 204, 204, 204)),
    "GET /api/v1/me": Rule(SIGNED_IN),
    "POST /api/v1/users": Rule((401, 401, 403, 403, 403, 403, 201), _new_user),
    "POST /api/v1/projects": Rule(
        (401, 401, 403, 403, 201, 201, 201), lambda w: {"name": "p", "kind": "ranking"}
    ),
    "GET /api/v1/projects": Rule(SIGNED_IN),
    "GET /api/v1/projects/{project_id}": Rule(MEMBERS),
    "PATCH /api/v1/projects/{project_id}": Rule(
        (401, 401, 403, 403, 404, 200, 200), lambda w: {"guidelines": "Be kind."}
    ),
    "GET /api/v1/projects/{project_id}/members": Rule(RESEARCHER_MEMBERS),
    "POST /api/v1/projects/{project_id}/members": Rule(
        (401, 401, 403, 403, 404, 201, 201),
        lambda w: {"user_id": w.people["annotator_outsider"].id},
    ),
    "DELETE /api/v1/projects/{project_id}/members/{user_id}": Rule(
        (401, 401, 403, 403, 404, 204, 204)
    ),
    "GET /api/v1/projects/{project_id}/progress": Rule(MEMBERS),
    "POST /api/v1/projects/{project_id}/items": Rule((401, 401, 403, 403, 404, 201, 201), _rows),
    "GET /api/v1/projects/{project_id}/items": Rule(RESEARCHER_MEMBERS),
    "POST /api/v1/projects/{project_id}/tasks/next": Rule(MEMBERS),
    "POST /api/v1/assignments/{assignment_id}/submit": Rule(
        (401, 401, 403, 201, 403, 403, 403), lambda w: {"payload": {"choice": "a"}}
    ),
    "POST /api/v1/assignments/{assignment_id}/skip": Rule(ASSIGNEE, lambda w: {"reason": "x"}),
    "PUT /api/v1/assignments/{assignment_id}/draft": Rule(ASSIGNEE, lambda w: {"draft": {"a": 1}}),
    # Any member of the job's project (and its creator, and admins) sees the job.
    "GET /api/v1/jobs/{job_id}": Rule(MEMBERS),
    "GET /api/v1/projects/{project_id}/export": Rule(RESEARCHER_MEMBERS),
    "POST /api/v1/projects/{project_id}/exports": Rule(
        (401, 401, 403, 403, 404, 202, 202), lambda w: {"schema": "raw"}
    ),
    "GET /api/v1/projects/{project_id}/exports": Rule(RESEARCHER_MEMBERS),
    "GET /api/v1/projects/{project_id}/exports/{export_id}": Rule(RESEARCHER_MEMBERS),
    # The world's export is still queued: allowed callers learn it is not ready.
    "GET /api/v1/projects/{project_id}/exports/{export_id}/download": Rule(
        (401, 401, 403, 403, 404, 409, 409)
    ),
    "GET /api/v1/projects/{project_id}/exports/{export_id}/manifest": Rule(
        (401, 401, 403, 403, 404, 409, 409)
    ),
    "GET /api/v1/projects/{project_id}/exports/{export_id}/card": Rule(
        (401, 401, 403, 403, 404, 409, 409)
    ),
    "GET /healthz": Rule(ANYONE, public=True),
    "GET /readyz": Rule(ANYONE, public=True),
    "GET /metrics": Rule(ANYONE, public=True),
}


@dataclass(frozen=True)
class Page:
    """Like Rule, for HTML routes: 303 is the redirect to /login (or a form's success)."""

    statuses: tuple[int, int, int, int, int, int, int]
    form: Callable[[World], dict[str, str]] | None = None
    files: bool = False
    public: bool = False

    def expected(self, caller: str, method: str) -> int:
        if caller == NO_CSRF:
            member = self.statuses[CALLERS.index("researcher_member")]
            return member if self.public or method == "GET" else 403
        return self.statuses[CALLERS.index(caller)]


LOGGED_IN = (303, 303, 200, 200, 200, 200, 200)
PAGE_MEMBERS = (303, 303, 404, 200, 404, 200, 200)
FORM_RESEARCHER_MEMBERS = (303, 303, 403, 403, 404, 303, 303)

PAGES: dict[str, Page] = {
    "GET /login": Page((200, 200, 303, 303, 303, 303, 303), public=True),
    "POST /login": Page((303,) * 7, public=True),
    "POST /logout": Page((303,) * 7, form=lambda w: {}),
    "GET /": Page(LOGGED_IN),
    "GET /projects/new": Page((303, 303, 403, 403, 200, 200, 200)),
    "POST /projects/new": Page(
        (303, 303, 403, 403, 303, 303, 303), form=lambda w: {"name": "n", "kind": "critique"}
    ),
    "GET /projects/{project_id}/settings": Page((303, 303, 403, 403, 404, 200, 200)),
    "POST /projects/{project_id}/settings": Page(
        FORM_RESEARCHER_MEMBERS, form=lambda w: {"name": "renamed", "allow_tie": "on"}
    ),
    "GET /projects/{project_id}": Page(PAGE_MEMBERS),
    "POST /projects/{project_id}/items": Page(
        FORM_RESEARCHER_MEMBERS, form=lambda w: {}, files=True
    ),
    "POST /projects/{project_id}/members": Page(
        FORM_RESEARCHER_MEMBERS, form=lambda w: {"email": w.people["annotator_outsider"].email}
    ),
    "POST /projects/{project_id}/members/{user_id}/remove": Page(
        FORM_RESEARCHER_MEMBERS, form=lambda w: {}
    ),
    "GET /projects/{project_id}/annotate": Page(PAGE_MEMBERS),
    # The workspace's JSON call: cookie and X-CSRF-Token header, answers like the API.
    "POST /projects/{project_id}/annotate/next": Page((401, 401, 404, 200, 404, 200, 200)),
}
# FastAPI's own documentation routes and the static files are public and hold no data.
NOT_ROUTES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def _route_keys() -> set[str]:
    from app.main import app

    keys = set()
    for route in app.routes:
        if isinstance(route, APIRoute):
            keys |= {f"{m} {route.path}" for m in route.methods}
        else:
            assert getattr(route, "path", None) in NOT_ROUTES | {"/static"}, route
    return keys


def test_every_route_declares_its_rule() -> None:
    routes = _route_keys()
    declared = set(API) | set(PAGES)
    assert sorted(routes - declared) == [], "add these routes to tests/authz/test_matrix.py"
    assert sorted(declared - routes) == [], "these entries name routes that no longer exist"


@pytest.fixture
def world_factory(password_hash: str) -> Callable[[], World]:
    return lambda: build_world(password_hash)


@pytest.fixture
def client() -> Iterator[TestClient]:
    from app.main import app

    with TestClient(app) as c:
        yield c


def _path(template: str, w: World) -> str:
    return template.format(**w.ids())


def _credentials(caller: str, w: World, page: bool) -> tuple[dict[str, str], dict[str, str]]:
    """(headers, cookies) that the caller presents."""
    if caller == "anonymous":
        return {}, {}
    if caller == "bad_token":
        return (
            ({}, {"tandem_session": "not-a-session"})
            if page
            else (
                {"Authorization": "Bearer not-a-token"},
                {},
            )
        )
    if caller == NO_CSRF:
        return {}, {"tandem_session": w.people["researcher_member"].session}
    person = w.people[caller]
    if page:
        return {"X-CSRF-Token": person.csrf}, {"tandem_session": person.session}
    return {"Authorization": f"Bearer {person.token}"}, {}


def _call_api(client: TestClient, key: str, rule: Rule, caller: str, w: World) -> httpx.Response:
    method, template = key.split(" ", 1)
    headers, cookies = _credentials(caller, w, page=False)
    client.cookies.clear()
    for name, value in cookies.items():
        client.cookies.set(name, value)
    body = rule.json(w) if rule.json else None
    return client.request(method, _path(template, w), json=body, headers=headers)


def _call_page(client: TestClient, key: str, page: Page, caller: str, w: World) -> httpx.Response:
    method, template = key.split(" ", 1)
    headers, cookies = _credentials(caller, w, page=True)
    client.cookies.clear()
    for name, value in cookies.items():
        client.cookies.set(name, value)
    if caller == NO_CSRF or "X-CSRF-Token" not in headers:
        headers.pop("X-CSRF-Token", None)
    if key == "POST /login":
        form = client.get("/login", headers=headers)  # the login form's own CSRF token
        token = form.cookies.get("tandem_login_csrf") or client.cookies.get("tandem_login_csrf")
        if token is None:  # already logged in: the form redirected; post with a fresh one
            client.cookies.clear()
            token = client.get("/login").cookies["tandem_login_csrf"]
        data = {**_login(w), "login_csrf": token, "next": "/"}
        return client.post("/login", data=data, follow_redirects=False)
    if method == "GET" or page.form is None:
        return client.request(method, _path(template, w), headers=headers, follow_redirects=False)
    data = page.form(w)
    if caller in w.people:
        data["csrf_token"] = w.people[caller].csrf
    files = {
        "file": ("rows.json", b'[{"prompt": "p", "responses": [{"text": "a"}, {"text": "b"}]}]')
    }
    return client.post(
        _path(template, w),
        data=data,
        files=files if page.files else None,
        headers=headers,
        follow_redirects=False,
    )


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
    _check(key, API[key], world_factory, lambda c, w: _call_api(client, key, API[key], c, w))


@pytest.mark.parametrize("key", sorted(PAGES))
def test_page_authorization(
    key: str, world_factory: Callable[[], World], client: TestClient
) -> None:
    _check(key, PAGES[key], world_factory, lambda c, w: _call_page(client, key, PAGES[key], c, w))


def test_outsiders_see_nothing_of_the_project_in_listings(
    world_factory: Callable[[], World], client: TestClient
) -> None:
    w = world_factory()
    for caller in ("annotator_outsider", "researcher_outsider"):
        headers, _ = _credentials(caller, w, page=False)
        listed = client.get("/api/v1/projects", headers=headers).json()["items"]
        assert w.project not in {p["id"] for p in listed}
