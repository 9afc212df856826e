"""A researcher makes prompt sets on the project's page, from text and from a file, and sees a
bad line named (screenshots at 1280 and 390 px)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import PHONE, Browsing
from tests.helpers import PASSWORD, Actor, sql


def test_researcher_makes_prompt_sets_from_text_and_from_a_file(
    browsing: Browsing, researcher: Actor, tmp_path: Path
) -> None:
    b, page = browsing, browsing.page
    pid = researcher.client.post(
        "/api/v1/projects", json={"name": "Helpfulness", "kind": "pairwise"}
    ).json()["id"]
    b.login(researcher.email, PASSWORD, then=f"/projects/{pid}")
    page.get_by_test_id("nav-prompt-sets").click()
    page.get_by_test_id("no-prompt-sets").wait_for()

    page.get_by_test_id("prompt-set-name").fill("Warm-up questions")
    page.get_by_test_id("prompt-set-text").fill(
        "How do I boil an egg?\n\nExplain photosynthesis to a child.\nWrite a limerick about"
        " a cat who learned to code in Rust and would not stop talking about the borrow checker."
    )
    page.get_by_test_id("prompt-set-submit").click()
    page.get_by_test_id("notice").filter(has_text="Prompt set created").wait_for()
    row = page.get_by_test_id("prompt-set-row")
    assert row.count() == 1 and "Warm-up questions" in row.inner_text()
    assert "3" in row.locator("td").nth(1).inner_text()

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "fine"}\n{"question": "no prompt"}\n')
    page.get_by_test_id("prompt-set-file").set_input_files(str(bad))
    page.get_by_test_id("prompt-set-name").fill("From a file")
    page.get_by_test_id("prompt-set-submit").click()
    error = page.get_by_test_id("prompt-set-error")
    error.wait_for()
    assert "line 2: no `prompt` field" in error.inner_text()
    assert page.get_by_test_id("prompt-set-name").input_value() == "From a file"
    b.screenshot("prompt-sets-error")

    good = tmp_path / "questions.csv"
    good.write_text('id,prompt\n1,"Summarise this, briefly"\n2,Translate to French\n')
    page.get_by_test_id("prompt-set-file").set_input_files(str(good))
    page.get_by_test_id("prompt-set-name").fill("")
    page.get_by_test_id("prompt-set-submit").click()
    page.get_by_test_id("notice").filter(has_text="Prompt set created").wait_for()
    assert page.get_by_test_id("prompt-set-row").count() == 2
    assert "questions.csv" in page.get_by_test_id("prompt-sets-table").inner_text()
    b.screenshot("prompt-sets")
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(50)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert sql("SELECT name, count, source FROM prompt_sets ORDER BY id") == [
        ("Warm-up questions", 3, "text"),
        ("questions.csv", 2, "csv"),
    ]
