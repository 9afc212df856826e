"""The model page's "Trained on" section (inputs, label counts, labels with the checkpoints they
judged) and the closed-loop demo's button on its project, at desktop and phone widths."""

from __future__ import annotations

from collections.abc import Callable

from app.demo.seed import LOOP_GUIDELINES, LOOP_PROJECT
from tests.e2e.conftest import PHONE, Browsing
from tests.helpers import PASSWORD, Actor, sql, sql_value
from tests.lineage.helpers import ProjectFactory, build_world


def no_sideways_scroll(b: Browsing) -> None:
    page = b.page
    size = page.viewport_size
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(50)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    page.set_viewport_size(size)
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px at 390 px"


def test_a_model_page_shows_the_labels_that_trained_it(
    browsing: Browsing,
    researcher: Actor,
    admin: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
) -> None:
    world = build_world(researcher, admin, project_factory, make_user)
    item = sql_value("SELECT item_id FROM annotations WHERE id = %s", world["second"][0])
    sql("UPDATE responses SET model_version_id = %s WHERE item_id = %s", world["base"], item)
    b, page = browsing, browsing.page
    b.login(researcher.email, PASSWORD, then=f"/models/{world['policy']}")
    section = page.get_by_test_id("model-labels")
    assert "8 labels: 8 human, 0 AI" in section.inner_text()
    inputs = page.get_by_test_id("model-inputs").locator("tbody tr")
    assert inputs.count() == 2
    assert "itself" in inputs.nth(0).inner_text() and "reward model" in inputs.nth(1).inner_text()
    rows = page.get_by_test_id("model-label-rows").locator("tbody tr")
    assert rows.count() == 8
    judged = page.get_by_test_id("model-label-rows").get_by_role(
        "link", name=f"model #{world['base']}"
    )
    assert judged.count() == 2  # the two labels on the item the base model generated
    b.screenshot("model-lineage-labels")
    no_sideways_scroll(b)
    b.watch.assert_clean(page)

    # The reward model's page: its one snapshot, and the link back to the policy's inputs.
    page.get_by_test_id("model-inputs").get_by_role("link", name=f"#{world['rm']} rm").click()
    assert "4 labels: 4 human" in page.get_by_test_id("model-labels").inner_text()


def test_the_demo_loop_project_has_a_button_that_queues_the_demo(
    browsing: Browsing, researcher: Actor, project_factory: ProjectFactory
) -> None:
    r = researcher.client.post(
        "/api/v1/projects",
        json={"name": LOOP_PROJECT, "kind": "pairwise", "guidelines": LOOP_GUIDELINES},
    )
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    other = project_factory("pairwise", items=1)
    b, page = browsing, browsing.page
    b.login(researcher.email, PASSWORD, then=f"/projects/{other['id']}")
    assert page.get_by_test_id("demo-loop").count() == 0  # only on the demo's project

    b.goto(f"/projects/{pid}")
    section = page.get_by_test_id("demo-loop")
    assert "tandem demo loop" in section.inner_text()
    b.screenshot("demo-loop-button")
    no_sideways_scroll(b)
    page.get_by_test_id("demo-loop-seed").fill("5")
    page.get_by_test_id("demo-loop-iterations").select_option("3")
    page.get_by_test_id("demo-loop-start").click()
    assert "closed-loop demo is queued" in page.get_by_test_id("notice").inner_text()
    [(kind, params)] = sql("SELECT kind, params FROM jobs WHERE project_id = %s", pid)
    assert kind == "loops.demo" and params == {"seed": 5, "iterations": 3}
    assert "loops.demo" in page.get_by_test_id("project-jobs").inner_text()
    b.screenshot("demo-loop-queued")
    b.watch.assert_clean(page)
