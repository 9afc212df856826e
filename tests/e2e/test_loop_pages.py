"""A researcher starts a loop in the browser, sees what it waits for, follows it to the end
with its plots across iterations, and pauses, resumes and cancels another (desktop and phone
widths, no sideways scroll)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.training.helpers import require_train_extra

require_train_extra()

from app.loops.advance import advance_all  # noqa: E402
from tests.e2e.conftest import Browsing  # noqa: E402
from tests.e2e.test_training_pages import no_sideways_scroll  # noqa: E402
from tests.helpers import PASSWORD, Actor  # noqa: E402
from tests.loops.helpers import PROMPTS, TINY, ProjectFactory, drive, register  # noqa: E402
from tests.training.helpers import save_tiny_model, vocabulary  # noqa: E402
from worker.tasks.jobs import run_job  # noqa: E402

pytestmark = pytest.mark.train
RM = '{"max_steps": 2, "checkpoint_every": 1000, "max_length": 64, "batch_size": 4}'
UPDATE = RM.replace("}", ', "evaluation": {"prompts": 0}}')
SAMPLING = '{"n": 3, "params": {"temperature": 1.0, "max_tokens": 6, "seed": 3}}'
EVALUATION = '{"num_prompts": 3, "max_new_tokens": 6, "gold_reward": "polite_concise"}'


def _fill(b: Browsing, pid: int, policy: int, prompts: str) -> None:
    page = b.page
    b.goto(f"/loops/new?project_id={pid}")
    page.get_by_test_id("loop-policy").select_option(str(policy))
    page.get_by_test_id("loop-rm-base").select_option(str(policy))
    page.get_by_test_id("loop-update-dpo").check()
    page.get_by_test_id("loop-per-iteration").fill("3")
    page.get_by_test_id("loop-prompts").fill(prompts)
    page.get_by_test_id("loop-min-labels").fill("2")
    page.locator("details summary").click()
    page.get_by_test_id("loop-rm-config").fill(RM)
    page.get_by_test_id("loop-update-config").fill(UPDATE)
    page.get_by_test_id("loop-sampling").fill(SAMPLING)
    page.get_by_test_id("loop-evaluation").fill(EVALUATION)


def test_researcher_starts_a_loop_follows_it_and_steers_another(
    browsing: Browsing,
    admin: Actor,
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    tmp_path: Path,
) -> None:
    assert TINY["max_length"] == 64
    policy = register(admin, save_tiny_model(tmp_path / "policy", vocabulary()), "tiny policy")
    annotator = make_user("annotator")
    pid = int(project_factory("pairwise", items=0, members=(annotator,), overlap=1)["id"])
    b, page = browsing, browsing.page
    b.login(researcher.email, PASSWORD, then=f"/projects/{pid}")
    page.get_by_test_id("loops-link").click()
    page.get_by_test_id("no-loops").wait_for()
    b.screenshot("loops-empty")

    # Two prompts but three per iteration: refused, with what was typed kept.
    _fill(b, pid, policy, "\n".join(PROMPTS[:2]))
    page.get_by_test_id("loop-start").click()
    assert "more than the 2 prompts" in page.get_by_test_id("form-error").inner_text()
    assert page.get_by_test_id("loop-prompts").input_value() == "\n".join(PROMPTS[:2])
    b.screenshot("loop-new-error")
    no_sideways_scroll(b)

    _fill(b, pid, policy, "\n".join(PROMPTS[:6]))
    page.get_by_test_id("loop-start").click()
    page.get_by_test_id("loop-status-badge").wait_for()
    loop_id = int(page.url.rsplit("/", 1)[1])
    assert page.get_by_test_id("loop-status-badge").inner_text() == "running"
    job_id = researcher.client.get(f"/api/v1/loops/{loop_id}").json()["iterations"][0]["steps"][0][
        "job_id"
    ]
    assert run_job(job_id) == "done"
    advance_all()
    b.goto(f"/loops/{loop_id}")
    pending = page.get_by_test_id("loop-pending")
    assert page.get_by_test_id("pending-labelled").inner_text() == "0"
    assert int(page.get_by_test_id("pending-human").inner_text()) >= 2
    assert "Waiting for labels" in pending.inner_text()
    b.screenshot("loop-waiting-for-labels")
    no_sideways_scroll(b)

    out = drive(researcher, annotator, pid, loop_id)
    assert out["status"] == "succeeded", out
    b.goto(f"/loops/{loop_id}")
    assert page.get_by_test_id("loop-status-badge").inner_text() == "succeeded"
    assert page.get_by_test_id("loop-iteration").count() == 2
    assert page.get_by_test_id("loop-step").count() == 14
    charts = page.get_by_test_id("loop-chart")
    assert charts.count() == 4  # win rate vs iteration 0 and vs previous, RM accuracy, length
    assert charts.first.locator("svg path.chart-line").count() == 2  # reward model, gold reward
    metrics = page.get_by_test_id("loop-metrics").first.inner_text()
    assert "win rate vs it. 0 (gold reward)" in metrics
    run_link = page.locator("a", has_text="run #").first
    assert run_link.get_attribute("href", timeout=1000).startswith("/training/")  # type: ignore[union-attr]
    assert page.get_by_test_id("pause-loop").count() == 0  # an ended loop has no buttons
    b.screenshot("loop-done")
    no_sideways_scroll(b)
    # The starting policy's page names the loop that uses it (and so cannot be deleted).
    b.goto(f"/models/{policy}")
    used_by = page.get_by_test_id("model-used-by")
    assert used_by.locator(f'a[href="/loops/{loop_id}"]').count() == 1
    b.screenshot("model-used-by-loop")

    # Another loop: pause, resume, cancel with the page's buttons.
    _fill(b, pid, policy, "\n".join(PROMPTS[:6]))
    page.get_by_test_id("loop-start").click()
    page.get_by_test_id("pause-loop").click()
    assert page.get_by_test_id("loop-status-badge").inner_text() == "paused"
    b.screenshot("loop-paused")
    page.get_by_test_id("resume-loop").click()
    assert page.get_by_test_id("loop-status-badge").inner_text() == "running"
    page.get_by_test_id("cancel-loop").click()
    assert page.get_by_test_id("loop-status-badge").inner_text() == "cancelled"
    assert "cancelled by" in page.get_by_test_id("loop-reason").inner_text()

    b.goto(f"/loops?project_id={pid}")
    assert page.get_by_test_id("loop-row").count() == 2
    b.screenshot("loops")
    no_sideways_scroll(b)
    b.watch.assert_clean(page)
