"""A researcher reads the quality dashboard, lifts a gold pause and adjudicates in the browser;
screenshots at desktop and phone width, and nothing scrolls sideways on a phone."""

from __future__ import annotations

import random

from app.auth.models import User
from app.db import session_scope
from app.jobs import runner
from tests.e2e.conftest import Browsing
from tests.factories import add_member, create_item, create_project, create_user
from tests.helpers import PASSWORD, Actor, sql, sql_value
from tests.stats.helpers import insert_pairwise_votes

NO_SIDEWAYS = "document.documentElement.scrollWidth <= window.innerWidth"


def _busy_project(researcher: Actor) -> tuple[int, list[User], int]:
    rng = random.Random(3)
    project = create_project("pairwise", overlap=3, name="Helpfulness, round 2")
    with session_scope() as s:
        add_member(project, s.get_one(User, researcher.id))
    users = [create_user(email=f"annotator{n}@lab.example") for n in range(5)]
    for u in users:
        add_member(project, u)
    models = ["llama-3-70b-instruct", "mistral-7b", "qwen2-72b", "gpt-4o-mini"]
    votes = []
    split_item = 0
    for n in range(60):
        a, b = rng.sample(models, 2)
        item = create_item(
            project,
            [
                f"Answer {n} by {a}. " * rng.randint(1, 6),
                f"Answer {n} by {b}. " * rng.randint(1, 6),
            ],
            models=[a, b],
        )
        better = "a" if models.index(a) < models.index(b) else "b"
        for k, u in enumerate(rng.sample(users, 3)):
            right = rng.random() < (0.95 if k else 0.7)
            votes.append((item, u.id, None, better if right else "tie", 800 + 300 * k))
        if n == 0:
            split_item = item.id
            votes[-3:] = [(item, users[0].id, None, "a", 900), (item, users[1].id, None, "b", 900)]
        votes.append((item, None, 501, better if rng.random() < 0.8 else "a", None))
    insert_pairwise_votes(project.id, votes)
    # Gold answers: the first annotator fails them and is paused automatically.
    sql(
        "UPDATE annotations SET gold_score = CASE WHEN user_id = %s THEN 0 ELSE 1 END"
        " WHERE project_id = %s AND source = 'human'",
        users[0].id,
        project.id,
    )
    sql(
        "INSERT INTO quality_settings (project_id, gold_warn_below, gold_pause_below)"
        " VALUES (%s, 0.8, 0.5)",
        project.id,
    )
    r = researcher.client.post(f"/api/v1/projects/{project.id}/stats/refresh")
    assert runner.run_job(r.json()["job_id"]) == "done"
    return project.id, users, split_item


def test_dashboard_lift_and_adjudicate(browsing: Browsing, researcher: Actor) -> None:
    pid, users, split_item = _busy_project(researcher)
    assert sql_value("SELECT count(*) FROM annotator_pauses WHERE lifted_at IS NULL") == 1
    b, page = browsing, browsing.page
    b.login(researcher.email, PASSWORD, then=f"/projects/{pid}")
    page.get_by_test_id("quality-link").click()
    page.get_by_test_id("quality-title").wait_for()
    assert "Statistics as of" in page.get_by_test_id("snapshot").inner_text()
    for chart in ("chart-progress", "chart-agreement", "chart-bias", "chart-gold"):
        assert page.get_by_test_id(chart).locator("svg[role=img]").count() == 1
    assert page.get_by_test_id("chart-leaderboard").locator("svg[role=img]").count() == 1
    rows = page.get_by_test_id("leaderboard-table").locator("tbody tr")
    assert rows.count() == 4 and "llama-3-70b-instruct" in rows.first.inner_text()
    assert "annotator0@lab.example" in page.get_by_test_id("pause-list").inner_text()
    b.screenshot("quality-dashboard")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate(NO_SIDEWAYS)
    page.set_viewport_size({"width": 1280, "height": 900})

    # Every leaderboard: by vote source, with and without length control (plot, CSV, JSON).
    page.get_by_test_id("board-human").click()
    page.get_by_test_id("board-length").filter(has_text="off").click()
    caption = page.get_by_test_id("board-caption").inner_text()
    assert "human votes" in caption and "length-controlled" in caption
    assert page.get_by_test_id("chart-leaderboard").locator("svg[role=img]").count() == 1
    assert page.get_by_test_id("leaderboard-table").locator("tbody tr").count() == 4
    csv_href = page.get_by_test_id("leaderboard-csv").get_attribute("href")
    assert csv_href is not None and "source=human&length_control=true&format=csv" in csv_href
    b.screenshot("quality-leaderboard-human-length")
    page.get_by_test_id("board-ai").click()
    assert "AI judges' votes" in page.get_by_test_id("board-caption").inner_text()
    assert "length-controlled" in page.get_by_test_id("board-caption").inner_text()
    page.get_by_test_id("board-length").filter(has_text="on").click()
    assert "length-controlled" not in page.get_by_test_id("board-caption").inner_text()
    b.goto(f"/projects/{pid}/quality")

    page.get_by_test_id(f"lift-{users[0].id}").click()
    page.get_by_test_id("notice").filter(has_text="Pause lifted").wait_for()
    page.get_by_test_id("no-pauses").wait_for()
    assert sql_value("SELECT count(*) FROM annotator_pauses WHERE lifted_at IS NULL") == 0

    page.get_by_test_id("review-link").click()
    item = page.get_by_test_id(f"review-item-{split_item}")
    item.wait_for()
    b.screenshot("quality-review")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate(NO_SIDEWAYS)
    page.set_viewport_size({"width": 1280, "height": 900})
    second = sql_value("SELECT id FROM responses WHERE item_id = %s AND position = 1", split_item)
    page.get_by_test_id(f"note-{split_item}").fill("Checked the sources.")
    page.get_by_test_id(f"pick-{second}").click()
    page.get_by_test_id("notice").filter(has_text="Final label saved").wait_for()
    assert page.get_by_test_id(f"review-item-{split_item}").count() == 0
    payload, note = sql("SELECT payload, note FROM adjudications WHERE item_id = %s", split_item)[0]
    assert payload == {"preferred": second, "tie": False} and note == "Checked the sources."
    b.watch.assert_clean(page)


def test_empty_project_dashboard_explains(browsing: Browsing, researcher: Actor) -> None:
    project = create_project("span", name="Empty spans")
    with session_scope() as s:
        add_member(project, s.get_one(User, researcher.id))
    b, page = browsing, browsing.page
    b.login(researcher.email, PASSWORD, then=f"/projects/{project.id}/quality")
    assert "No annotations yet" in page.get_by_test_id("explanation").inner_text()
    assert "span project" in page.get_by_test_id("no-leaderboard").inner_text()
    b.screenshot("quality-empty")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate(NO_SIDEWAYS)
    b.watch.assert_clean(page)
