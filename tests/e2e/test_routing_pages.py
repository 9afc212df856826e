"""An admin defines a routing policy, attaches it to a project, previews and runs routing, and
watches the budget, in the browser (screenshots at 1280 and 390 px)."""

from __future__ import annotations

from typing import Any

from app.jobs import runner
from tests.e2e.conftest import PHONE, Browsing
from tests.helpers import PASSWORD, Actor, sql
from tests.judges.helpers import simulated
from tests.routing.helpers import rows


def _no_sideways_scroll(page: Any) -> None:
    size = page.viewport_size
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(50)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.set_viewport_size(size)


def _run_queued_route_jobs() -> None:
    for (job_id,) in sql(
        "SELECT id FROM jobs WHERE kind IN ('routing.route', 'judges.run') AND status = 'queued'"
        " ORDER BY id"
    ):
        runner.run_job(job_id)


def test_admin_defines_attaches_previews_and_runs_routing(
    browsing: Browsing, admin: Actor, researcher: Actor
) -> None:
    b, page = browsing, browsing.page
    pid = researcher.client.post(
        "/api/v1/projects", json={"name": "Safety review", "kind": "pairwise", "overlap": 2}
    ).json()["id"]
    researcher.client.post(f"/api/v1/projects/{pid}/members", json={"user_id": admin.id})

    b.login(admin.email, PASSWORD, then="/admin/routing")
    page.get_by_test_id("policy-name").fill("Moderate safety to humans")
    page.get_by_test_id("strategy-rules").check()
    page.get_by_test_id("policy-params").fill('{"rules": [{"key": "nope"}]}')
    page.get_by_test_id("policy-save").click()
    assert "values: Field required" in page.get_by_test_id("form-error").inner_text()
    page.get_by_test_id("policy-name").fill("Moderate safety to humans")
    page.get_by_test_id("strategy-rules").check()
    page.get_by_test_id("policy-params").fill(
        '{"rules": [{"key": "safety", "values": ["moderate"], "route": "human"},'
        ' {"key": "safety", "values": ["mild"], "route": "both"}]}'
    )
    page.get_by_test_id("policy-budget").fill("30")
    page.get_by_test_id("policy-save").click()
    page.get_by_test_id("notice").filter(has_text="Policy created").wait_for()
    page.get_by_test_id("policy-budget").fill("40")
    page.get_by_test_id("policy-save").click()
    page.get_by_test_id("notice").filter(has_text="new version").wait_for()
    assert page.get_by_test_id("version-table").locator("tbody tr").count() == 2
    b.screenshot("routing-policy")
    _no_sideways_scroll(page)
    b.goto("/admin/routing")
    assert "Moderate safety to humans" in page.get_by_test_id("policy-table").inner_text()
    b.screenshot("routing-admin")
    _no_sideways_scroll(page)

    b.goto(f"/projects/{pid}")
    page.get_by_test_id("routing-tab").click()
    page.get_by_test_id("no-routing").wait_for()
    judge = simulated(admin, name="sim judge")
    page.get_by_test_id("attach-judges").fill(str(judge["id"]))
    page.get_by_test_id("attach-save").click()
    page.get_by_test_id("notice").filter(has_text="Routing saved").wait_for()
    researcher.client.post(f"/api/v1/projects/{pid}/items", json=rows(30))
    page.reload()
    assert page.get_by_test_id("held-items").inner_text() == "30"

    page.get_by_test_id("routing-preview").click()
    page.get_by_test_id("notice").filter(has_text="Preview queued").wait_for()
    _run_queued_route_jobs()
    page.reload()
    preview = page.get_by_test_id("preview").inner_text()
    # 40 units at overlap 2: 20 items of the 20 moderate or mild ones.
    assert "10 to humans, 10 to both, 10 to AI" in preview
    b.screenshot("routing-project-preview")
    _no_sideways_scroll(page)

    page.get_by_test_id("routing-run").click()
    page.get_by_test_id("notice").filter(has_text="Route job queued").wait_for()
    _run_queued_route_jobs()
    page.reload()
    assert page.get_by_test_id("held-items").inner_text() == "0"
    assert "rule:1" in page.get_by_test_id("reason-table").inner_text()
    assert "40" in page.get_by_test_id("budget-line").inner_text()
    _run_queued_route_jobs()  # the judge run for the items routed ai or both
    page.reload()
    assert "sim judge" in page.get_by_test_id("judge-list").inner_text()
    assert "20" in page.get_by_test_id("judge-list").inner_text()
    b.screenshot("routing-project")
    _no_sideways_scroll(page)
    b.watch.assert_clean(page)
