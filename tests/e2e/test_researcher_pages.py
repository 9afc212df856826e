"""A researcher sets a project up in the browser: create it, upload items (and see a bad row's
number), add an annotator, and watch progress."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import Browsing
from tests.helpers import PASSWORD, Actor


def test_researcher_sets_up_a_project(
    browsing: Browsing, researcher: Actor, make_user: Callable[..., Actor], tmp_path: Path
) -> None:
    annotator = make_user("annotator")
    b, page = browsing, browsing.page
    b.goto("/login")
    b.screenshot("login")
    b.login(researcher.email, PASSWORD)
    page.get_by_test_id("new-project").click()
    page.get_by_test_id("project-name").fill("Code review quality")
    page.get_by_test_id("kind-span").check()
    assert page.get_by_test_id("project-aspects").is_hidden()  # pairwise-only field
    page.get_by_test_id("project-span-labels").fill("incorrect\nunsafe\nirrelevant")
    page.get_by_test_id("project-guidelines").fill("# Guidelines\n\nMark **every** wrong claim.")
    b.screenshot("project-new")
    page.get_by_test_id("project-save").click()
    page.get_by_test_id("notice").filter(has_text="Project created").wait_for()
    pid = int(page.url.rsplit("/", 1)[1].split("?")[0])

    rows = [
        {
            "external_id": f"r{i}",
            "prompt": f"Review {i}",
            "responses": [{"text": f"Looks fine {i}."}],
        }
        for i in range(4)
    ]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(json.dumps(r) for r in rows) + '\n{"prompt": "no responses"}\n')
    page.get_by_test_id("upload-file").set_input_files(str(bad))
    page.get_by_test_id("upload-submit").click()
    assert "row 5" in page.get_by_test_id("upload-error").inner_text()
    good = tmp_path / "good.json"
    good.write_text(json.dumps(rows))
    page.get_by_test_id("upload-file").set_input_files(str(good))
    page.get_by_test_id("upload-submit").click()
    assert "4 new, 0 skipped" in page.get_by_test_id("notice").inner_text()

    page.get_by_test_id("member-email").fill(annotator.email)
    page.get_by_test_id("member-add").click()
    page.get_by_test_id("notice").filter(has_text="Member added").wait_for()
    assert annotator.email in page.get_by_test_id("member-list").inner_text()
    assert page.get_by_test_id("stat-items").inner_text() == "4"

    # The annotator does one task; the researcher's progress view shows it.
    task = annotator.client.post(f"/api/v1/projects/{pid}/tasks/next").json()
    r = annotator.client.post(
        f"/api/v1/assignments/{task['assignment_id']}/submit",
        json={"payload": {"spans": []}, "time_spent_ms": 4200},
    )
    assert r.status_code == 201
    page.reload()
    assert page.get_by_test_id("stat-complete").inner_text() == "1"
    assert annotator.email in page.get_by_test_id("annotator-table").inner_text()
    b.screenshot("project-progress")
    b.goto("/")
    b.screenshot("my-projects")
    b.watch.assert_clean(page)
