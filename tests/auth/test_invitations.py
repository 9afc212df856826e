"""Invitations: single-use, expiring links into a project with a role; who may create them."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.helpers import PASSWORD, Actor, sql


def _project(researcher: Actor, name: str = "invite me") -> int:
    r = researcher.client.post("/api/v1/projects", json={"name": name, "kind": "pairwise"})
    return int(r.json()["id"])


def _invite(actor: Actor, pid: int, email: str, role: str = "annotator") -> httpx.Response:
    return actor.client.post(
        "/api/v1/invitations", json={"email": email, "project_id": pid, "role": role}
    )


def test_an_invitee_sets_a_password_and_lands_in_the_project(
    researcher: Actor, app_client_factory: Callable[[], httpx.Client]
) -> None:
    pid = _project(researcher)
    r = _invite(researcher, pid, " New.Person@Lab.example ", role="researcher")
    assert r.status_code == 201, r.text
    invitation = r.json()
    assert invitation["email"] == "new.person@lab.example" and invitation["status"] == "pending"
    token = invitation["url"].rsplit("/", 1)[1]
    # Only a keyed digest's salt is stored: the link is nowhere in the table.
    assert not sql("SELECT 1 FROM invitations WHERE position(%s in salt::text) > 0", token)
    client = app_client_factory()
    r = client.post(
        "/api/v1/auth/accept-invitation", json={"token": token, "password": "chosen-pw-1"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["project_id"] == pid and r.json()["user"]["role"] == "researcher"
    login = client.post(
        "/api/v1/auth/token", json={"email": "new.person@lab.example", "password": "chosen-pw-1"}
    ).json()["access_token"]
    me = {"Authorization": f"Bearer {login}"}
    assert client.get(f"/api/v1/projects/{pid}", headers=me).status_code == 200
    # Single use.
    r = client.post(
        "/api/v1/auth/accept-invitation", json={"token": token, "password": "again-pw-1"}
    )
    assert r.status_code == 409 and r.json()["error"] == "invitation_closed"
    listed = researcher.client.get("/api/v1/invitations", params={"project_id": pid}).json()
    assert listed["items"][0]["status"] == "accepted" and listed["items"][0]["url"] is None


def test_two_accepts_of_one_link_create_one_account(
    researcher: Actor, app_client_factory: Callable[[], httpx.Client]
) -> None:
    pid = _project(researcher)
    token = _invite(researcher, pid, "racer@lab.example").json()["url"].rsplit("/", 1)[1]

    def accept(_: int) -> int:
        body = {"token": token, "password": PASSWORD}
        return app_client_factory().post("/api/v1/auth/accept-invitation", json=body).status_code

    with ThreadPoolExecutor(4) as pool:
        codes = sorted(pool.map(accept, range(4)))
    assert codes == [201, 409, 409, 409]
    assert sql("SELECT count(*) FROM users WHERE email = 'racer@lab.example'") == [(1,)]


def test_expired_withdrawn_and_forged_links_do_not_work(
    researcher: Actor, app_client_factory: Callable[[], httpx.Client]
) -> None:
    pid = _project(researcher)
    client = app_client_factory()
    expired = _invite(researcher, pid, "late@lab.example").json()
    sql(
        "UPDATE invitations SET expires_at = now() - interval '1 second' WHERE id = %s",
        expired["id"],
    )
    body = {"token": expired["url"].rsplit("/", 1)[1], "password": PASSWORD}
    r = client.post("/api/v1/auth/accept-invitation", json=body)
    assert r.status_code == 409 and "expired" in r.json()["detail"]
    withdrawn = _invite(researcher, pid, "nope@lab.example").json()
    r = researcher.client.delete(f"/api/v1/invitations/{withdrawn['id']}")
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    body = {"token": withdrawn["url"].rsplit("/", 1)[1], "password": PASSWORD}
    assert client.post("/api/v1/auth/accept-invitation", json=body).status_code == 409
    forged = f"{withdrawn['id']}.{'0' * 40}"
    r = client.post("/api/v1/auth/accept-invitation", json={"token": forged, "password": PASSWORD})
    assert r.status_code == 404
    assert sql("SELECT count(*) FROM users WHERE email LIKE '%%@lab.example'") == [(0,)]


def test_who_may_invite(researcher: Actor, make_user: Callable[..., Actor], admin: Actor) -> None:
    pid = _project(researcher)
    outsider = make_user("researcher")
    annotator = make_user("annotator")
    # Researchers invite into their projects only; annotators never; admins anywhere.
    assert _invite(outsider, pid, "a@lab.example").status_code == 404
    assert _invite(annotator, pid, "a@lab.example").status_code == 403
    assert _invite(admin, pid, "a@lab.example").status_code == 201
    # No admin by link; an existing account is added as a member instead.
    r = _invite(researcher, pid, "b@lab.example", role="admin")
    assert r.status_code == 422
    r = _invite(researcher, pid, annotator.email)
    assert r.status_code == 409 and "add them as a member" in r.json()["detail"]
    # The outsider's list holds none of this project's invitations; the owner's holds one.
    assert outsider.client.get("/api/v1/invitations").json()["items"] == []
    assert len(researcher.client.get("/api/v1/invitations").json()["items"]) == 1
