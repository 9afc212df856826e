"""The HTML pages without a browser: security headers, login, CSRF on forms, the researcher forms."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.helpers import PASSWORD, Actor

ROOT = Path(__file__).resolve().parents[2]


def _hidden(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m, f"no hidden field {name}"
    return m.group(1)


def _csrf(html: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]*)">', html)
    assert m and m.group(1)
    return m.group(1)


def _browser(app_client_factory: Callable[[], httpx.Client], actor: Actor) -> httpx.Client:
    """A client without the bearer token, logged in through the login form."""
    client = app_client_factory()
    client.headers.pop("Authorization", None)
    page = client.get("/login")
    r = client.post(
        "/login",
        data={
            "email": actor.email,
            "password": PASSWORD,
            "login_csrf": _hidden(page.text, "login_csrf"),
            "next": "/",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return client


def test_pages_send_a_strict_csp_with_a_fresh_nonce(
    app_client_factory: Callable[[], httpx.Client],
) -> None:
    client = app_client_factory()
    first, second = client.get("/login"), client.get("/login")
    csp = first.headers["content-security-policy"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert (
        "object-src 'none'" in csp and "frame-ancestors 'none'" in csp and "base-uri 'none'" in csp
    )
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce and nonce.group(1) not in second.headers["content-security-policy"]
    assert first.headers["x-content-type-options"] == "nosniff"
    assert "<style" not in first.text and " style=" not in first.text
    # Static files are cached for good when versioned by content.
    css = re.search(r'href="(/static/app\.[0-9a-f]{12}\.css)"', first.text)
    assert css
    assert "immutable" in client.get(css.group(1)).headers["cache-control"]


def test_login_sets_an_httponly_samesite_cookie_and_never_shows_the_token(
    app_client_factory: Callable[[], httpx.Client], make_user: Callable[..., Actor]
) -> None:
    user = make_user("annotator")
    client = app_client_factory()
    page = client.get("/login?next=/projects/1")
    r = client.post(
        "/login",
        data={
            "email": user.email,
            "password": PASSWORD,
            "login_csrf": _hidden(page.text, "login_csrf"),
            "next": "/projects/1",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/projects/1"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("tandem_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    home = client.get("/")
    assert home.status_code == 200 and user.email in home.text
    assert token not in home.text


def test_login_errors_are_shown_on_the_form(
    app_client_factory: Callable[[], httpx.Client], make_user: Callable[..., Actor]
) -> None:
    user = make_user("annotator")
    client = app_client_factory()
    page = client.get("/login")
    r = client.post(
        "/login",
        data={
            "email": user.email,
            "password": "wrong",
            "login_csrf": _hidden(page.text, "login_csrf"),
        },
    )
    assert r.status_code == 401 and "Wrong email or password." in r.text
    # A login form posted from elsewhere (no matching double-submit cookie) is refused.
    other = app_client_factory()
    r = other.post(
        "/login", data={"email": user.email, "password": PASSWORD, "login_csrf": "forged"}
    )
    assert r.status_code == 403 and "tandem_session" not in r.headers.get("set-cookie", "")


def test_next_is_never_an_open_redirect(
    app_client_factory: Callable[[], httpx.Client], make_user: Callable[..., Actor]
) -> None:
    user = make_user("annotator")
    client = app_client_factory()
    page = client.get("/login")
    r = client.post(
        "/login",
        data={
            "email": user.email,
            "password": PASSWORD,
            "login_csrf": _hidden(page.text, "login_csrf"),
            "next": "//evil.example/",
        },
        follow_redirects=False,
    )
    assert r.headers["location"] == "/"


def test_pages_without_a_session_redirect_to_login(
    app_client_factory: Callable[[], httpx.Client],
) -> None:
    r = app_client_factory().get("/projects/3/annotate", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/projects/3/annotate"


def test_forms_without_the_csrf_token_change_nothing(
    app_client_factory: Callable[[], httpx.Client], researcher: Actor
) -> None:
    client = _browser(app_client_factory, researcher)
    r = client.post("/projects/new", data={"name": "forged", "kind": "pairwise"})
    assert r.status_code == 403
    assert researcher.client.get("/api/v1/projects").json()["items"] == []
    # The workspace's JSON call needs the header too.
    assert client.post("/projects/1/annotate/next").status_code == 403
    # Logging out needs it as well.
    assert client.post("/logout", data={}).status_code == 403


def test_researcher_creates_a_project_with_every_setting(
    app_client_factory: Callable[[], httpx.Client], researcher: Actor
) -> None:
    client = _browser(app_client_factory, researcher)
    csrf = _csrf(client.get("/projects/new").text)
    r = client.post(
        "/projects/new",
        data={
            "csrf_token": csrf, "name": "Helpfulness", "kind": "pairwise", "guidelines": "# Be *kind*",
            "overlap": "3", "lease_seconds": "600", "aspects": "honesty\nclarity", "span_labels": "",
        },
        follow_redirects=False,
    )  # fmt: skip
    assert r.status_code == 303, r.text
    project = researcher.client.get("/api/v1/projects").json()["items"][0]
    assert project["name"] == "Helpfulness" and project["overlap"] == 3
    assert project["lease_seconds"] == 600 and project["aspects"] == ["honesty", "clarity"]
    assert project["allow_tie"] is False  # the box was left unticked
    page = client.get(r.headers["location"])
    assert "Project created" in page.text and "<h1>Be <em>kind</em></h1>" in page.text

    r = client.post(
        "/projects/new",
        data={"csrf_token": csrf, "name": "Spans", "kind": "span", "span_labels": ""},
    )
    assert r.status_code == 422 and "needs at least one entry in span_labels" in r.text


def test_upload_form_shows_the_row_of_a_bad_item_and_imports_nothing(
    app_client_factory: Callable[[], httpx.Client],
    researcher: Actor,
    project_factory: Callable[..., dict[str, object]],
) -> None:
    project = project_factory("pairwise", items=0)
    pid = project["id"]
    client = _browser(app_client_factory, researcher)
    csrf = _csrf(client.get(f"/projects/{pid}").text)
    good = {"prompt": "p", "responses": [{"text": "a"}, {"text": "b"}]}
    bad = {"prompt": "p", "responses": [{"text": "only one"}]}
    body = "\n".join(json.dumps(x) for x in (good, good, bad)).encode()
    r = client.post(
        f"/projects/{pid}/items", data={"csrf_token": csrf}, files={"file": ("items.jsonl", body)}
    )
    assert r.status_code == 422 and "row 3" in r.text
    assert researcher.client.get(f"/api/v1/projects/{pid}/items").json()["items"] == []

    body = "\n".join(json.dumps({**good, "external_id": f"e{i}"}) for i in range(2)).encode()
    r = client.post(
        f"/projects/{pid}/items", data={"csrf_token": csrf}, files={"file": ("items.jsonl", body)}
    )
    assert r.status_code == 200 and "Items imported. 2 new, 0 skipped." in r.text
    assert len(researcher.client.get(f"/api/v1/projects/{pid}/items").json()["items"]) == 2


def test_members_are_added_by_email(
    app_client_factory: Callable[[], httpx.Client], researcher: Actor, make_user: Callable[..., Actor],
    project_factory: Callable[..., dict[str, object]],
) -> None:  # fmt: skip
    annotator = make_user("annotator")
    pid = project_factory("pairwise", items=2)["id"]
    client = _browser(app_client_factory, researcher)
    csrf = _csrf(client.get(f"/projects/{pid}").text)
    r = client.post(
        f"/projects/{pid}/members", data={"csrf_token": csrf, "email": "nobody@example.org"}
    )
    assert r.status_code == 404 and "No user has the email nobody@example.org" in r.text
    r = client.post(
        f"/projects/{pid}/members", data={"csrf_token": csrf, "email": annotator.email.upper()}
    )
    assert r.status_code == 200 and "Member added." in r.text
    assert annotator.client.get(f"/api/v1/projects/{pid}/progress").json()["my_remaining"] == 2
    home = _browser(app_client_factory, annotator).get("/")
    assert 'data-testid="start-annotating"' in home.text


def test_annotators_cannot_open_researcher_forms(
    app_client_factory: Callable[[], httpx.Client], make_user: Callable[..., Actor]
) -> None:
    client = _browser(app_client_factory, make_user("annotator"))
    r = client.get("/projects/new")
    assert r.status_code == 403 and "needs the researcher role" in r.text
    assert client.get("/projects/999").status_code == 404


def test_progress_counts_the_callers_work(
    make_user: Callable[..., Actor], project_factory: Callable[..., dict[str, object]]
) -> None:
    annotator = make_user("annotator")
    pid = project_factory("pairwise", items=3, members=(annotator,))["id"]
    task = annotator.client.post(f"/api/v1/projects/{pid}/tasks/next").json()
    assert (
        annotator.client.post(
            f"/api/v1/assignments/{task['assignment_id']}/submit", json={"payload": {"choice": "a"}}
        ).status_code
        == 201
    )
    p = annotator.client.get(f"/api/v1/projects/{pid}/progress").json()
    assert p == {
        "project_id": pid, "items": 3, "items_complete": 1, "percent_complete": 33,
        "human_annotations": 1, "live_leases": 0, "my_done": 1, "my_skipped": 0, "my_remaining": 2,
        "votes_collected": 1, "votes_needed": 3, "percent_votes": 33,
    }  # fmt: skip


def test_templates_never_mark_text_safe() -> None:
    for template in (ROOT / "templates").glob("*.html"):
        source = template.read_text()
        assert "|safe" not in source.replace(" ", ""), template.name
        assert "autoescape false" not in source, template.name
