"""A researcher starts a training run in the browser, watches it finish, compares two runs and
follows the new model's lineage in the registry (desktop and phone widths, no sideways scroll)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.training.helpers import require_train_extra

require_train_extra()

from tests.e2e.conftest import PHONE, Browsing  # noqa: E402
from tests.helpers import PASSWORD, Actor  # noqa: E402
from tests.training.helpers import save_tiny_model, vocabulary  # noqa: E402
from tests.training.runs_helpers import ProjectFactory, preference_project, register  # noqa: E402
from worker.tasks.jobs import run_job  # noqa: E402

pytestmark = pytest.mark.train
CONFIG = (
    '{"max_steps": 6, "batch_size": 4, "max_length": 64, "log_every": 1, "eval_fraction": 0.25}'
)


def no_sideways_scroll(b: Browsing) -> None:
    page = b.page
    size = page.viewport_size
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(50)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    page.set_viewport_size(size)
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px at 390 px"


def test_researcher_trains_watches_compares_and_follows_lineage(
    browsing: Browsing,
    admin: Actor,
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    tmp_path: Path,
) -> None:
    base = register(admin, save_tiny_model(tmp_path / "base", vocabulary()), "tiny-gpt2")
    pid = preference_project(researcher, project_factory, make_user, n_items=24)
    b, page = browsing, browsing.page
    b.login(researcher.email, PASSWORD, then="/training")
    b.screenshot("training-empty")

    b.goto(f"/training/new?project_id={pid}")
    page.get_by_test_id("run-kind-reward_model").check()
    page.get_by_test_id("run-base-model").select_option(str(base["id"]))
    page.get_by_test_id("run-config").fill('{"max_step": 6}')
    page.get_by_test_id("run-start").click()
    assert "max_step" in page.get_by_test_id("form-error").inner_text()
    b.screenshot("training-new-error")
    no_sideways_scroll(b)

    runs = []
    for lr in ("1e-3", "3e-3"):
        page.get_by_test_id("run-config").fill(CONFIG.replace("}", f', "learning_rate": {lr}}}'))
        page.get_by_test_id("run-start").click()
        page.get_by_test_id("run-status-badge").wait_for()
        run_id = int(page.url.rsplit("/", 1)[1])
        assert page.get_by_test_id("run-status-badge").inner_text() == "queued"
        runs.append(run_id)
        if len(runs) == 1:
            b.screenshot("training-run-queued")
        job_id = researcher.client.get(f"/api/v1/training-runs/{run_id}").json()["job_id"]
        assert run_job(job_id) == "done"
        b.goto(f"/training/new?project_id={pid}")
        page.get_by_test_id("run-kind-reward_model").check()
        page.get_by_test_id("run-base-model").select_option(str(base["id"]))

    b.goto(f"/training/{runs[0]}")
    assert page.get_by_test_id("run-status-badge").inner_text() == "succeeded"
    assert page.get_by_test_id("loss-chart").locator("svg path.chart-line").count() == 1
    assert "heldout_accuracy" in page.get_by_test_id("run-metrics").inner_text()
    b.screenshot("training-run-done")
    no_sideways_scroll(b)

    b.goto("/training")
    for run_id in runs:
        page.get_by_label(f"Compare run {run_id}").check()
    b.screenshot("training-runs")
    no_sideways_scroll(b)
    page.get_by_test_id("compare").click()
    page.get_by_test_id("compare-table").wait_for()
    assert page.get_by_test_id("compare-chart").locator("svg path.chart-line").count() == 2
    assert "learning_rate" not in page.get_by_test_id("compare-table").inner_text()  # metrics only
    assert page.get_by_test_id("compare-bars").locator("svg rect.chart-bar").count() >= 4
    b.screenshot("training-compare")
    no_sideways_scroll(b)

    b.goto(f"/training/{runs[0]}")
    page.get_by_test_id("run-model").click()
    lineage = page.get_by_test_id("model-lineage").inner_text()
    assert "tiny-gpt2" in lineage and f"run #{runs[0]}" in lineage
    b.screenshot("model-page")
    no_sideways_scroll(b)
    b.goto("/models")
    assert page.get_by_test_id("model-row").count() == 3  # the base and two reward models
    b.screenshot("models")
    no_sideways_scroll(b)
    b.watch.assert_clean(page)
