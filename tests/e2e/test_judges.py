"""An admin sets a judge up in the browser: create it (and see a bad parameter refused), run it
on a project and watch the run, try it on one item, and read its metrics and calibration plot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.jobs import runner
from tests.e2e.conftest import PHONE, Browsing
from tests.helpers import PASSWORD, Actor, sql
from tests.judges.helpers import make_project
from tests.judges.test_metrics import annotate_all, truth_choice


def no_sideways_scroll(page: Any) -> None:
    size = page.viewport_size
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(50)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width}px wide at {PHONE['width']}px"
    page.set_viewport_size(size)


def run_jobs(kind: str) -> None:
    for (job_id,) in sql("SELECT id FROM jobs WHERE kind = %s AND status = 'queued'", kind):
        runner.run_job(job_id)


def test_admin_creates_runs_tries_and_measures_a_judge(
    browsing: Browsing, admin: Actor, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    pid = make_project(researcher, "pairwise", 30, guidelines="Prefer the **correct** answer.")
    researcher.client.post(f"/api/v1/projects/{pid}/members", json={"user_id": annotator.id})
    annotate_all(annotator, pid, truth_choice)

    b, page = browsing, browsing.page
    b.login(admin.email, PASSWORD, then="/admin/judges")
    page.get_by_test_id("judge-name").fill("sim-judge")
    page.get_by_test_id("judge-model").fill("simulated")
    page.get_by_test_id("judge-params").fill('{"truth": {"metadata_key": "truth"}, "accuracy": 2}')
    page.get_by_test_id("judge-create").click()
    assert "accuracy" in page.get_by_test_id("form-error").inner_text()
    b.screenshot("judges-new-error")
    page.get_by_test_id("judge-params").fill(
        '{"truth": {"metadata_key": "truth"}, "accuracy": 0.8, "length_bias": 0.9}'
    )
    page.get_by_test_id("judge-create").click()
    page.get_by_test_id("notice").filter(has_text="Judge created").wait_for()
    judge_url = page.url.split("?")[0]

    page.get_by_test_id("run-project").select_option(str(pid))
    page.get_by_test_id("run-start").click()
    page.get_by_test_id("notice").filter(has_text="Run started").wait_for()
    assert page.get_by_test_id("run-status").inner_text() == "queued"
    run_jobs("judges.run")
    b.goto(judge_url.removeprefix(b.base_url))
    assert page.get_by_test_id("run-status").inner_text() == "succeeded"
    assert "30 / 30" in page.get_by_test_id("run-table").inner_text()
    b.screenshot("judge")
    no_sideways_scroll(page)

    item = sql("SELECT min(id) FROM items WHERE project_id = %s", pid)[0][0]
    page.get_by_test_id("try-project").select_option(str(pid))
    page.get_by_test_id("try-item").fill(str(item))
    page.get_by_test_id("try-submit").click()
    page.get_by_test_id("try-status").filter(has_text="queued").wait_for()
    prompts = page.get_by_test_id("try-prompt").all_inner_texts()
    assert any("Prefer the **correct** answer." in p for p in prompts)  # the guidelines
    run_jobs("judges.try")
    page.reload()
    assert page.get_by_test_id("try-status").inner_text() == "succeeded"
    assert [a.strip() for a in page.get_by_test_id("try-answer").all_inner_texts()] in (
        ["A", "B"],
        ["B", "A"],
        ["A", "A"],
        ["B", "B"],
    )
    assert "parsed" in page.get_by_test_id("try-parsed").inner_text() or "inconsistent" in (
        page.get_by_test_id("try-parsed").inner_text()
    )
    b.screenshot("judge-try")
    no_sideways_scroll(page)

    b.goto(judge_url.removeprefix(b.base_url))
    page.get_by_role("link", name="metrics").first.click()
    page.get_by_test_id("calibration-plot").locator("svg").wait_for()
    assert "95% CI" in page.get_by_test_id("metric-agreement").inner_text()
    b.screenshot("judge-metrics")
    no_sideways_scroll(page)
    b.goto("/admin/judges")
    b.screenshot("judges")
    no_sideways_scroll(page)
    b.watch.assert_clean(page)
