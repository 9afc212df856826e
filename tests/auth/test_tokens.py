"""Login, bearer tokens, roles, browser sessions with CSRF, rate limiting."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.helpers import PASSWORD, Actor, sql_value


def test_login_returns_a_token_that_identifies_the_caller(
    make_user: Callable[..., Actor], app_client_factory: Callable[[], httpx.Client]
) -> None:
    user = make_user("annotator")
    client = app_client_factory()
    r = client.post("/api/v1/auth/token", json={"email": user.email.upper(), "password": PASSWORD})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert r.json()["token_type"] == "bearer"
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json() == {"id": user.id, "email": user.email, "role": "annotator"}


def test_wrong_password_and_unknown_email_get_the_same_401(
    make_user: Callable[..., Actor], app_client_factory: Callable[[], httpx.Client]
) -> None:
    user = make_user()
    client = app_client_factory()
    a = client.post("/api/v1/auth/token", json={"email": user.email, "password": "nope-nope"})
    b = client.post("/api/v1/auth/token", json={"email": "ghost@example.org", "password": "x"})
    assert a.status_code == b.status_code == 401
    assert a.json()["detail"] == b.json()["detail"] == "Wrong email or password."


def test_tokens_are_stored_hashed(make_user: Callable[..., Actor]) -> None:
    user = make_user()
    stored = sql_value("SELECT token_hash FROM api_tokens WHERE user_id = %s", user.id)
    assert user.token.encode() not in bytes(stored)
    assert len(bytes(stored)) == 32


@pytest.mark.parametrize("header", ["Bearer nope", "Basic abc", "Bearer "])
def test_bad_credentials_get_401(
    app_client_factory: Callable[[], httpx.Client], header: str
) -> None:
    r = app_client_factory().get("/api/v1/me", headers={"Authorization": header})
    assert r.status_code == 401
    assert r.json()["detail"]


def test_revoked_token_stops_working(make_user: Callable[..., Actor]) -> None:
    user = make_user()
    assert user.client.delete("/api/v1/auth/token").status_code == 204
    assert user.client.get("/api/v1/me").status_code == 401


def test_only_admins_create_users(make_user: Callable[..., Actor]) -> None:
    admin, researcher = make_user("admin"), make_user("researcher")
    body = {"email": "New@Example.org", "password": "long enough pw", "role": "researcher"}
    assert researcher.client.post("/api/v1/users", json=body).status_code == 403
    r = admin.client.post("/api/v1/users", json=body)
    assert r.status_code == 201 and r.json()["email"] == "new@example.org"
    again = admin.client.post("/api/v1/users", json=body)
    assert again.status_code == 409
    short = admin.client.post(
        "/api/v1/users", json={**body, "email": "b@x.org", "password": "short"}
    )
    assert short.status_code == 422 and "password" in short.json()["detail"]


def test_browser_session_needs_csrf_on_writes(
    make_user: Callable[..., Actor], app_client_factory: Callable[[], httpx.Client]
) -> None:
    user = make_user("researcher")
    browser = app_client_factory()
    r = browser.post("/api/v1/auth/session", json={"email": user.email, "password": PASSWORD})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    csrf = r.json()["csrf_token"]
    assert browser.get("/api/v1/me").status_code == 200  # reads need no CSRF token
    body = {"name": "p", "kind": "pairwise"}
    denied = browser.post("/api/v1/projects", json=body)
    assert denied.status_code == 403 and "CSRF" in denied.json()["detail"]
    forged = browser.post("/api/v1/projects", json=body, headers={"X-CSRF-Token": "0" * 64})
    assert forged.status_code == 403
    ok = browser.post("/api/v1/projects", json=body, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201
    assert browser.delete("/api/v1/auth/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert browser.get("/api/v1/me").status_code == 401


def test_login_is_rate_limited(
    make_user: Callable[..., Actor],
    app_client_factory: Callable[[], httpx.Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.config import get_settings

    monkeypatch.setattr(get_settings(), "login_attempts_per_minute", 3)
    user = make_user()
    client = app_client_factory()
    codes = [
        client.post(
            "/api/v1/auth/token", json={"email": user.email, "password": "wrong-pass"}
        ).status_code
        for _ in range(4)
    ]
    assert codes == [401, 401, 401, 429]
    blocked = client.post("/api/v1/auth/token", json={"email": user.email, "password": PASSWORD})
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
