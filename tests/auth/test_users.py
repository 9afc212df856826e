"""User administration through the API: list with search and pages, role, disable, password
reset, "change my password"; a disabled user's tokens stop working."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.factories import create_user
from tests.helpers import PASSWORD, Actor, sql_value


def test_users_are_listed_newest_first_in_pages_with_a_search(admin: Actor) -> None:
    for i in range(7):
        create_user("annotator", email=f"crowd-{i}@vendor.example")
    create_user("researcher", email="odd_name%x@lab.example")
    r = admin.client.get("/api/v1/users", params={"limit": 3, "q": "CROWD"})
    assert r.status_code == 200, r.text
    first = r.json()
    assert [u["email"] for u in first["items"]] == [f"crowd-{i}@vendor.example" for i in (6, 5, 4)]
    seen = [u["email"] for u in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = admin.client.get(
            "/api/v1/users", params={"limit": 3, "q": "crowd", "cursor": cursor}
        )
        seen += [u["email"] for u in page.json()["items"]]
        cursor = page.json()["next_cursor"]
    assert seen == [f"crowd-{i}@vendor.example" for i in range(6, -1, -1)]
    # LIKE wildcards in the search are literal characters.
    r = admin.client.get("/api/v1/users", params={"q": "_name%"})
    assert [u["email"] for u in r.json()["items"]] == ["odd_name%x@lab.example"]
    assert admin.client.get("/api/v1/users", params={"q": "%"}).json()["items"] == [
        {**r.json()["items"][0]}
    ]
    r = admin.client.get("/api/v1/users", params={"role": "researcher"})
    assert {u["role"] for u in r.json()["items"]} == {"researcher"}
    assert {"id", "email", "role", "is_active", "created_at"} <= set(r.json()["items"][0])


def test_disabling_a_user_ends_their_tokens_and_login(
    admin: Actor, make_user: Callable[..., Actor], app_client_factory: Callable[[], httpx.Client]
) -> None:
    user = make_user("annotator")
    assert user.client.get("/api/v1/me").status_code == 200
    r = admin.client.patch(f"/api/v1/users/{user.id}", json={"is_active": False})
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert user.client.get("/api/v1/me").status_code == 401
    login = {"email": user.email, "password": PASSWORD}
    r = app_client_factory().post("/api/v1/auth/token", json=login)
    assert r.status_code == 401 and "disabled" in r.json()["detail"]
    # Without the password nothing tells that the account exists.
    r = app_client_factory().post("/api/v1/auth/token", json={**login, "password": "guessing"})
    assert r.json()["detail"] == "Wrong email or password."
    # Enabled again: a new login works, the old token stays revoked.
    admin.client.patch(f"/api/v1/users/{user.id}", json={"is_active": True})
    assert app_client_factory().post("/api/v1/auth/token", json=login).status_code == 200
    assert user.client.get("/api/v1/me").status_code == 401
    audit = sql_value("SELECT count(*) FROM audit_log WHERE action = 'user.update'")
    assert audit == 2


def test_role_change_and_password_reset(
    admin: Actor, make_user: Callable[..., Actor], app_client_factory: Callable[[], httpx.Client]
) -> None:
    user = make_user("annotator")
    r = admin.client.patch(
        f"/api/v1/users/{user.id}", json={"role": "researcher", "password": "reset-by-admin"}
    )
    assert r.status_code == 200 and r.json()["role"] == "researcher"
    assert user.client.get("/api/v1/me").status_code == 401  # the reset ended the old token
    client = app_client_factory()
    r = client.post("/api/v1/auth/token", json={"email": user.email, "password": "reset-by-admin"})
    assert r.status_code == 200
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    assert me.json()["role"] == "researcher"
    # Bad input changes nothing and names the field.
    r = admin.client.patch(f"/api/v1/users/{user.id}", json={"password": "short"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "password"]
    assert admin.client.patch("/api/v1/users/999999", json={"role": "admin"}).status_code == 404


def test_an_admin_cannot_lock_themselves_out(admin: Actor) -> None:
    r = admin.client.patch(f"/api/v1/users/{admin.id}", json={"is_active": False})
    assert r.status_code == 409 and r.json()["error"] == "conflict"
    r = admin.client.patch(f"/api/v1/users/{admin.id}", json={"role": "annotator"})
    assert r.status_code == 409
    assert admin.client.get("/api/v1/me").json()["role"] == "admin"


def test_change_my_password_keeps_this_token_and_ends_the_others(
    make_user: Callable[..., Actor], app_client_factory: Callable[[], httpx.Client]
) -> None:
    user = make_user("annotator")
    other = app_client_factory()
    token = other.post(
        "/api/v1/auth/token", json={"email": user.email, "password": PASSWORD}
    ).json()["access_token"]
    r = user.client.put(
        "/api/v1/me/password", json={"current_password": "wrong-one", "new_password": "x" * 9}
    )
    assert r.status_code == 422 and "current password is wrong" in r.json()["detail"]
    r = user.client.put(
        "/api/v1/me/password", json={"current_password": PASSWORD, "new_password": "new-secret-1"}
    )
    assert r.status_code == 204
    assert user.client.get("/api/v1/me").status_code == 200
    assert other.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    r = other.post("/api/v1/auth/token", json={"email": user.email, "password": "new-secret-1"})
    assert r.status_code == 200
