"""The researcher's and admin's workspace in the browser: progress by votes, background jobs and
a failed import's row, the items browser and an item's votes and skips, the exports page (count,
empty reason, snapshot, download, delete), the jobs page, archive and delete. Each page is
screenshotted at desktop and phone width, and none scrolls sideways at 390 px."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

from app.auth.models import Role
from app.auth.service import Principal
from app.db import session_scope
from app.items import importer
from app.jobs import runner
from tests.e2e.conftest import PHONE, Browsing
from tests.exports.helpers import add_ai_vote, items_of, pairwise_choice, pairwise_payload
from tests.helpers import PASSWORD, Actor, make_items, sql_value

# The elements that stick out to the right (for the failure message).
_WIDE = """
() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
  .slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))
"""


def _no_sideways_scroll(page: Any) -> None:
    size = page.viewport_size
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(50)
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate(_WIDE)
    page.set_viewport_size(size)
    assert width <= PHONE["width"], f"{page.url} is {width} px wide at 390 px: {wide}"


def _shoot(b: Browsing, name: str) -> None:
    b.screenshot(name)
    _no_sideways_scroll(b.page)


def _setup(researcher: Actor, make_user: Callable[..., Actor]) -> tuple[int, int]:
    """Pairwise, overlap 2, 6 items: 4 answered by two annotators (one split), two skipped by
    both, one AI vote; plus a failed background import. Returns (project, failed job)."""
    a1, a2 = make_user("annotator"), make_user("annotator")
    r = researcher.client.post(
        "/api/v1/projects",
        json={"name": "Helpfulness review", "kind": "pairwise", "overlap": 2},
    )
    pid = int(r.json()["id"])
    rows = make_items("pairwise", 6)
    rows[0]["prompt"] = "Explain **why** the sky is blue, in two sentences for a child."
    assert researcher.client.post(f"/api/v1/projects/{pid}/items", json=rows).status_code == 201
    for a in (a1, a2):
        researcher.client.post(f"/api/v1/projects/{pid}/members", json={"user_id": a.id})
    for n, a in enumerate((a1, a2)):
        # Both answer x-0..x-3 (preferring the first response, but a2 the second on x-1) and
        # skip x-4 and x-5.
        while (r := a.client.post(f"/api/v1/projects/{pid}/tasks/next")).status_code == 200:
            t = r.json()
            aid, ext = t["assignment_id"], t["item"]["external_id"]
            if ext in ("x-4", "x-5"):
                a.client.post(f"/api/v1/assignments/{aid}/skip", json={"reason": "off topic"})
                continue
            payload = pairwise_choice(t, 1 if (n == 1 and ext == "x-1") else 0)
            a.client.post(f"/api/v1/assignments/{aid}/submit", json={"payload": payload})
    item0, resp0 = items_of(pid)["x-0"]
    add_ai_vote(pid, item0, 3, pairwise_payload(resp0[0], resp0[1]), resp0)

    lines = [json.dumps(r) for r in make_items("pairwise", 40, prefix="big")]
    lines.append('{"prompt": "a row without responses"}')
    principal = Principal(researcher.id, researcher.email, Role.researcher, researcher.token)
    with session_scope() as s:
        job = importer.queue_import(s, principal, pid, io.BytesIO("\n".join(lines).encode()), None)
        job_id = job.id
    runner.run_job(job_id)
    return pid, job_id


def test_workspace_pages(
    browsing: Browsing, researcher: Actor, admin: Actor, make_user: Callable[..., Actor]
) -> None:
    pid, failed = _setup(researcher, make_user)
    b, page = browsing, browsing.page
    b.login(researcher.email, PASSWORD, then=f"/projects/{pid}")

    # Project page: votes against votes needed, and the failed import with its row.
    assert page.get_by_test_id("stat-votes").inner_text() == "8 / 12"
    job = page.locator(f'[data-job-id="{failed}"]')
    assert job.get_attribute("data-status") == "failed"
    assert "row 41" in job.get_by_test_id("job-error").inner_text()
    _shoot(b, "workspace-project")

    # Items browser: filter, then one item with every vote and skip.
    page.get_by_test_id("nav-items").click()
    assert page.get_by_test_id("item-row").count() == 6
    _shoot(b, "workspace-items")
    page.get_by_test_id("filter-state").select_option("waiting")
    page.get_by_test_id("filter-apply").click()
    page.wait_for_url("**state=waiting**")
    assert page.get_by_test_id("item-row").count() == 2
    page.get_by_test_id("filter-state").select_option("")
    page.get_by_test_id("filter-max-agreement").fill("0.6")
    page.get_by_test_id("filter-apply").click()
    page.wait_for_url("**max_agreement=0.6**")
    assert page.get_by_test_id("item-row").count() == 1  # the split vote
    b.goto(f"/projects/{pid}/items")
    item0 = items_of(pid)["x-0"][0]
    page.locator(f'[data-item-id="{item0}"] a').click()
    assert page.get_by_test_id("vote").count() == 3
    assert page.locator('[data-source="ai"]').count() == 1
    _shoot(b, "workspace-item")
    skipped = sql_value(
        "SELECT item_id FROM assignments WHERE project_id = %s AND status = 'skipped' LIMIT 1", pid
    )
    b.goto(f"/projects/{pid}/items/{skipped}")
    assert "off topic" in page.get_by_test_id("skip-list").inner_text()

    # Exports: an impossible filter says why it is empty; then a real snapshot.
    b.goto(f"/projects/{pid}/exports")
    page.get_by_test_id("export-min_votes").fill("10")
    page.get_by_test_id("export-count").click()
    assert page.get_by_test_id("preview-rows").inner_text() == "0"
    assert "fewer votes than min_votes" in page.get_by_test_id("preview-empty").inner_text()
    page.get_by_test_id("export-min_votes").fill("1")
    page.get_by_test_id("export-schema").select_option("raw")
    page.get_by_test_id("export-count").click()
    assert page.get_by_test_id("preview-rows").inner_text() == "9"
    page.get_by_test_id("export-start").click()
    page.get_by_test_id("notice").wait_for()
    row = page.get_by_test_id("export-row").first
    assert row.get_attribute("data-status") == "queued"
    job_id = sql_value("SELECT job_id FROM exports WHERE project_id = %s", pid)
    assert runner.run_job(job_id) == "done"
    page.reload()
    row = page.get_by_test_id("export-row").first
    assert row.get_attribute("data-status") == "succeeded"
    with page.expect_download() as download:
        row.get_by_test_id("export-download").click()
    assert len(download.value.path().read_bytes().splitlines()) == 9
    _shoot(b, "workspace-exports")
    row.get_by_test_id("export-delete").click()
    page.get_by_test_id("no-exports").wait_for()

    # Archive: a banner, and the annotate button is gone.
    b.goto(f"/projects/{pid}")
    page.get_by_test_id("archive-toggle").click()
    page.get_by_test_id("archived-banner").wait_for()
    assert page.get_by_test_id("start-annotating").count() == 0
    b.watch.assert_clean(page)

    # The admin's jobs page, then delete with the name typed again.
    page.get_by_test_id("logout").click()
    b.login(admin.email, PASSWORD, then="/jobs")
    assert page.get_by_test_id("job").count() == 2
    _shoot(b, "workspace-jobs")
    b.goto(f"/projects/{pid}")
    _shoot(b, "workspace-project-archived")
    page.get_by_test_id("delete-confirm").fill("not the name")
    page.get_by_test_id("delete-project").click()
    assert "Type the project's name" in page.get_by_test_id("delete-error").inner_text()
    page.get_by_test_id("delete-confirm").fill("Helpfulness review")
    page.get_by_test_id("delete-project").click()
    page.wait_for_url(b.base_url + "/?notice=deleted")
    assert sql_value("SELECT count(*) FROM projects WHERE id = %s", pid) == 0
    b.watch.assert_clean(page)
