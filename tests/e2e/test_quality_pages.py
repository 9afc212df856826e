"""A researcher reads the quality dashboard, lifts a gold pause and adjudicates in the browser;
screenshots at desktop and phone width, and nothing scrolls sideways on a phone."""

from __future__ import annotations

import random

from app.auth.models import User
from app.db import session_scope
from app.jobs import runner
from tests.e2e.conftest import Browsing
from tests.factories import (
    add_member,
    create_annotation,
    create_item,
    create_project,
    create_user,
)
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
    pair_rows = page.get_by_test_id("rater-pair-table").locator("tbody tr")
    assert pair_rows.count() >= 1 and "@lab.example" in pair_rows.first.inner_text()
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


ANSWER = (
    "Paris is the capital of France. It has about two million residents, and the Eiffel"
    " Tower was finished in 1899 for the World's Fair."
)


def _span(start: str, label: str) -> dict[str, object]:
    at = ANSWER.index(start)
    return {"start": at, "end": at + len(start), "label": label}


def test_review_span_and_critique_items(browsing: Browsing, researcher: Actor) -> None:
    """Span items: pick one annotator's spans, or edit them as lines; critique items: pick a
    critique, or write the final one. A malformed edit is refused and changes nothing."""
    spans = create_project("span", name="Fact check", span_labels=["error", "unsupported"])
    critique = create_project("critique", name="Critiques, batch 4")
    users = [create_user(email=f"checker{n}@lab.example") for n in range(2)]
    for project in (spans, critique):
        with session_scope() as s:
            add_member(project, s.get_one(User, researcher.id))
    pick, edit = (
        create_item(spans, [ANSWER], external_id=name, prompt="Tell me about Paris.")
        for name in ("paris-1", "paris-2")
    )
    marks = (
        [_span("1899", "error"), _span("about two million", "unsupported")],
        [_span("Paris is the capital", "unsupported")],
    )
    picked = []
    for item in (pick, edit):
        for user, chosen in zip(users, marks, strict=True):
            answer = {"kind": "span", "spans": chosen}
            picked.append(create_annotation(item, user=user, answer=answer).id)
    item_c = create_item(
        critique, ["The boiling point of water is 90 °C at sea level."], external_id="boil"
    )
    written = create_item(critique, ["Light travels at 300 km/s."], external_id="light")
    critiques = []
    for item in (item_c, written):
        for user, (text, rating) in zip(
            users, (("Wrong: it is 100 °C.", 2), ("Clear and correct.", 6)), strict=True
        ):
            answer = {"kind": "critique", "critique": text, "rating": rating}
            critiques.append(create_annotation(item, user=user, answer=answer).id)
    for project in (spans, critique):
        r = researcher.client.post(f"/api/v1/projects/{project.id}/stats/refresh")
        assert runner.run_job(r.json()["job_id"]) == "done"

    b, page = browsing, browsing.page
    b.login(researcher.email, PASSWORD, then=f"/projects/{spans.id}/review")
    page.get_by_test_id(f"review-item-{pick.id}").wait_for()
    first = page.get_by_test_id(f"annotation-{picked[0]}")
    assert "checker0@lab.example" in first.inner_text()
    assert first.locator("mark.span-mark").count() == 2
    b.screenshot("review-spans")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate(NO_SIDEWAYS)
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_test_id(f"note-{pick.id}").fill("The year is wrong.")
    page.get_by_test_id(f"use-{picked[0]}").click()
    page.get_by_test_id("notice").filter(has_text="Final label saved").wait_for()
    payload, note = sql("SELECT payload, note FROM adjudications WHERE item_id = %s", pick.id)[0]
    in_order = sorted(marks[0], key=lambda m: m["start"])  # type: ignore[arg-type,return-value]
    assert payload["spans"] == in_order and payload["from_annotation"] == picked[0]
    assert note == "The year is wrong."

    box = page.get_by_test_id(f"review-item-{edit.id}")
    box.get_by_test_id(f"edit-open-{edit.id}").click()
    lines = page.get_by_test_id(f"spans-{edit.id}")
    # The edit box starts from the spans half the annotators marked, quoting their text.
    assert '# "Paris is the capital"' in lines.input_value()
    b.screenshot("review-spans-edit")
    lines.fill("12-90 nonsense")  # an unknown label: refused, nothing saved
    page.get_by_test_id(f"save-spans-{edit.id}").click()
    assert "not one of this project's labels" in page.get_by_test_id("review-error").inner_text()
    assert sql_value("SELECT count(*) FROM adjudications WHERE item_id = %s", edit.id) == 0
    at = ANSWER.index("1899")
    page.get_by_test_id(f"edit-open-{edit.id}").click()
    page.get_by_test_id(f"spans-{edit.id}").fill(f"{at}-{at + 4} error  # the year\n")
    page.get_by_test_id(f"overall-{edit.id}").select_option("2")
    page.get_by_test_id(f"save-spans-{edit.id}").click()
    page.get_by_test_id("notice").filter(has_text="Final label saved").wait_for()
    [(payload,)] = sql("SELECT payload FROM adjudications WHERE item_id = %s", edit.id)
    assert payload["spans"] == [{"start": at, "end": at + 4, "label": "error"}]
    assert payload["overall"] == 2 and payload["from_annotation"] is None
    page.get_by_test_id("review-empty").wait_for()

    b.goto(f"/projects/{critique.id}/review")
    page.get_by_test_id(f"review-item-{item_c.id}").wait_for()
    assert "Wrong: it is 100 °C." in page.get_by_test_id(f"annotation-{critiques[0]}").inner_text()
    b.screenshot("review-critique")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate(NO_SIDEWAYS)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_test_id(f"use-{critiques[0]}").click()
    page.get_by_test_id("notice").filter(has_text="Final label saved").wait_for()
    [(payload,)] = sql("SELECT payload FROM adjudications WHERE item_id = %s", item_c.id)
    assert payload["critique"] == "Wrong: it is 100 °C." and payload["rating"] == 2

    page.get_by_test_id(f"write-open-{written.id}").click()
    b.screenshot("review-critique-write")
    page.get_by_test_id(f"critique-{written.id}").fill("Off by a factor of 1000.")
    page.get_by_test_id(f"rewrite-{written.id}").fill("Light travels at about 300,000 km/s.")
    page.get_by_test_id(f"rating-{written.id}").select_option("1")
    page.get_by_test_id(f"save-critique-{written.id}").click()
    page.get_by_test_id("notice").filter(has_text="Final label saved").wait_for()
    [(payload,)] = sql("SELECT payload FROM adjudications WHERE item_id = %s", written.id)
    assert payload == {
        "critique": "Off by a factor of 1000.",
        "rewrite": "Light travels at about 300,000 km/s.",
        "rating": 1,
        "from_annotation": None,
        "edited": None,
    }
    b.watch.assert_clean(page)
