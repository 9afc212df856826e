"""No page scrolls sideways on a phone: every GET page of tests/routes.py (a route added there
is checked here too), the error pages and /docs, at 390 px, as a caller who may open it."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import PHONE, Browsing
from tests.routes import PAGES, path_of
from tests.world import World, build_world

WIDTH = PHONE["width"]
# Who opens each page: the first of these whom the authorization matrix lets in.
VIEWERS = ("researcher_member", "admin", "annotator_member", "anonymous")
EXTRA = [
    "/no/such/page",
    "/projects/abc",
    "/projects/{project_id}/members",
    "/docs",
    # The matrix's row has no ?project_id= (a 422 for everyone); the page as people open it:
    "/judges/{judge_id}/metrics?project_id={project_id}",
]
# GET rows that no caller of the matrix's world may open, and why they are left out here.
UNOPENED = {
    # The world has no "try on one item" job: its {job_id} sends the admin back to the judge.
    "GET /admin/judges/{judge_id}/try/{job_id}",
    "GET /judges/{judge_id}/metrics",  # visited with its project in EXTRA
}


def _viewer(key: str) -> str:
    assert key not in UNOPENED
    page = PAGES[key]
    for viewer in VIEWERS:
        if page.expected(viewer, "GET") == 200:
            return viewer
    raise AssertionError(f"{key}: nobody may open it")


def _browse_as(b: Browsing, w: World, viewer: str) -> Any:
    context = b.context.browser.new_context(viewport=PHONE, base_url=b.base_url)
    if viewer in w.people:
        context.add_cookies(
            [{"name": "tandem_session", "value": w.people[viewer].session, "url": b.base_url}]
        )
    page = context.new_page()
    page.set_default_timeout(10_000)
    return context, page


def _long_emails(w: World) -> None:
    """Annotator rows with long addresses and every column filled: the widest table."""
    from tests.helpers import sql

    sql(
        "UPDATE users SET email = 'a.very.long.annotator.address.' || id || '@annotation-vendor"
        ".example.org' WHERE id = %s",
        w.people["annotator_member"].id,
    )


def test_no_page_scrolls_sideways_at_390px(browsing: Browsing, password_hash: str) -> None:
    w = build_world(password_hash)
    _long_emails(w)
    checked, wide = [], []
    keys = sorted(k for k in PAGES if k.startswith("GET ") and k not in UNOPENED)
    visits = [(k.split(" ", 1)[1], _viewer(k)) for k in keys] + [
        (path, "researcher_member") for path in EXTRA
    ]
    for template, viewer in visits:
        context, page = _browse_as(browsing, w, viewer)
        path = path_of(template, w)
        page.goto(browsing.base_url + path)
        page.wait_for_load_state("load")
        if template == "/docs":
            page.locator(".opblock").first.wait_for()
        width = page.evaluate("document.documentElement.scrollWidth")
        checked.append(path)
        if width > WIDTH:
            wide.append(f"{path} as {viewer}: {width} px")
            name = path.strip("/").replace("/", "-") or "home"
            page.screenshot(path=f"test-artifacts/screenshots/too-wide-{name}.png", full_page=True)
        context.close()
    assert len(checked) >= len(keys)
    assert wide == [], "pages wider than the phone:\n" + "\n".join(wide)
