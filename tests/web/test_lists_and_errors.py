"""Pages that list things are paginated (newest projects first, with search); browsers get
styled error pages while the API keeps JSON; messages use the user's words."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx

from tests.factories import add_member, create_project, create_user
from tests.helpers import Actor
from tests.web.test_pages import _browser, _csrf

HTML = {"Accept": "text/html,application/xhtml+xml"}


def _ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'data-project-id="(\d+)"', html)]


def test_my_projects_are_newest_first_in_pages_of_50_with_a_search(
    app_client_factory: Callable[[], httpx.Client], admin: Actor
) -> None:
    projects = [create_project("pairwise", name=f"Study {i:03d}") for i in range(120)]
    create_project("pairwise", name="Helpfulness 100%")
    client = _browser(app_client_factory, admin)
    first = client.get("/")
    ids = _ids(first.text)
    assert len(ids) == 50 and ids == sorted(ids, reverse=True) and ids[0] > projects[-1].id
    more = re.search(r'href="(/\?[^"]*cursor=\d+)" data-testid="next-page"', first.text)
    assert more
    seen = ids
    while more:
        page = client.get(more.group(1).replace("&amp;", "&"))
        seen += _ids(page.text)
        more = re.search(r'href="(/\?[^"]*cursor=\d+)" data-testid="next-page"', page.text)
    assert len(seen) == 121 and len(set(seen)) == 121
    found = client.get("/", params={"q": "study 11"})
    assert _ids(found.text) == [p.id for p in reversed(projects[110:120])]
    assert _ids(client.get("/", params={"q": "100%"}).text) == [projects[-1].id + 1]
    assert 'data-testid="no-match"' in client.get("/", params={"q": "nothing like it"}).text
    # The API searches the same way (oldest first, its documented order).
    r = admin.client.get("/api/v1/projects", params={"q": "STUDY 11"})
    assert [p["id"] for p in r.json()["items"]] == [p.id for p in projects[110:120]]


def test_members_and_annotators_are_paginated(
    app_client_factory: Callable[[], httpx.Client], researcher: Actor
) -> None:
    from app.auth.models import User

    project = create_project("pairwise", created_by=User(id=researcher.id))
    for i in range(30):
        add_member(project, create_user("annotator", email=f"member-{i:02d}@crowd.example"))
    client = _browser(app_client_factory, researcher)
    page = client.get(f"/projects/{project.id}")
    listed = re.findall(r"member-\d\d@crowd\.example", page.text)
    assert len(listed) == 24  # 25 a page, the researcher first
    nxt = re.search(r'href="([^"]*members_after=\d+)[^"]*" data-testid="members-next"', page.text)
    assert nxt
    rest = re.findall(r"member-\d\d@crowd\.example", client.get(nxt.group(1)).text)
    assert len(rest) == 6 and not set(rest) & set(listed)


def test_browsers_get_error_pages_and_the_api_keeps_json(
    app_client_factory: Callable[[], httpx.Client], researcher: Actor
) -> None:
    client = _browser(app_client_factory, researcher)
    r = client.get("/projects/abc", headers=HTML)
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    assert "There is no page at /projects/abc" in r.text and "project_id" not in r.text
    r = client.get("/nowhere", headers=HTML)
    assert r.status_code == 404 and 'data-testid="error-page"' in r.text
    assert researcher.email in r.text  # the logged-in top bar, though no route ran
    r = client.get("/logout", headers=HTML)
    assert r.status_code == 405 and "only receives forms" in r.text and r.headers["allow"] == "POST"
    r = client.get("/?cursor=x", headers=HTML)
    assert r.status_code == 422 and 'data-testid="error-page"' in r.text
    # Scripts and the API: JSON as before.
    r = client.get("/nowhere")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = researcher.client.get("/api/v1/projects/abc", headers=HTML)
    assert r.status_code == 422 and r.json()["error"] == "validation_error"


def test_a_failed_settings_post_redirects_back_with_the_error_in_plain_words(
    app_client_factory: Callable[[], httpx.Client], researcher: Actor
) -> None:
    pid = researcher.client.post(
        "/api/v1/projects", json={"name": "s", "kind": "span", "span_labels": ["bad"]}
    ).json()["id"]
    client = _browser(app_client_factory, researcher)
    csrf = _csrf(client.get(f"/projects/{pid}/settings").text)
    r = client.post(
        f"/projects/{pid}/settings",
        data={"csrf_token": csrf, "name": "s", "span_labels": "", "overlap": "0"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/projects/{pid}/settings"
    page = client.get(r.headers["location"])
    assert "Overlap: Input should be greater than or equal to 1." in page.text
    assert "span_labels" not in page.text.split("<form")[0]
    assert researcher.client.get(f"/api/v1/projects/{pid}").json()["overlap"] == 1
