"""A new annotator logs in and completes three tasks of every kind with the keyboard only;
what the API stored is exactly what they did."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.e2e.conftest import Browsing
from tests.e2e.helpers import (
    create_project,
    current_aid,
    response_texts,
    skip_reasons,
    stored,
    wait_next,
    wait_task,
)
from tests.helpers import PASSWORD, Actor

MARKDOWN_PROMPT = "Explain **recursion** briefly.\n\n```python\ndef f(n):\n    return 1 if n < 2 else n * f(n - 1)\n```"


def _items(kind: str, n: int = 3) -> list[dict[str, Any]]:
    count = {"pairwise": 2, "ranking": 4, "span": 1, "critique": 1}[kind]
    rows = []
    for i in range(n):
        if kind == "span":
            texts = [f"🙂 日本語のテキスト and a dubious claim number {i} 👍🏽 here."]
        else:
            texts = [
                f"Response {i}.{j}: *recursion* is a function calling itself ({j})."
                for j in range(count)
            ]
        rows.append(
            {
                "external_id": f"{kind}-{i}",
                "prompt": MARKDOWN_PROMPT if i == 0 else f"Prompt {i}: which is better?",
                "responses": [{"text": t, "model": f"m{j}"} for j, t in enumerate(texts)],
            }
        )
    return rows


def _start(b: Browsing, annotator: Actor, pid: int) -> str:
    b.login(annotator.email, PASSWORD)
    start = b.page.get_by_test_id("start-annotating")
    start.focus()
    b.page.keyboard.press("Enter")
    b.page.wait_for_url(f"{b.base_url}/projects/{pid}/annotate")
    return wait_task(b.page)


def _finish(b: Browsing, pid: int, annotator: Actor) -> None:
    page = b.page
    page.get_by_test_id("no-more-tasks").wait_for()
    assert page.get_by_test_id("done-count").inner_text().startswith("3 done")
    r = annotator.client.get(f"/api/v1/projects/{pid}/progress")
    assert r.status_code == 200
    assert r.json()["my_done"] == 3 and r.json()["my_remaining"] == 0
    b.watch.assert_clean(page)


def _submit_and_wait(b: Browsing, key: str = "Enter") -> None:
    prev = current_aid(b.page)
    b.page.keyboard.press(key)
    wait_next(b.page, prev)


def test_pairwise_by_keyboard(
    browsing: Browsing, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    pid = create_project(researcher, annotator, "pairwise", _items("pairwise"), aspects=["honesty"])
    b, page = browsing, browsing.page
    _start(b, annotator, pid)
    assert page.locator(".prompt-body pre code").count() == 1  # Markdown code block rendered
    page.keyboard.press("?")
    page.get_by_test_id("help-dialog").wait_for()
    b.screenshot("help-pairwise")
    page.keyboard.press("Escape")
    assert page.get_by_test_id("help-dialog").is_hidden()
    page.keyboard.press("1")
    page.keyboard.press("w")
    page.keyboard.press("r")
    page.keyboard.type("A is correct and shorter.")
    page.keyboard.press("Escape")
    b.screenshot("annotate-pairwise")
    _submit_and_wait(b)
    page.keyboard.press("2")
    _submit_and_wait(b)
    page.keyboard.press("Enter")  # nothing chosen yet: a hint, no submission
    assert "Pick A, B or tie" in page.locator("#action-hint").inner_text()
    page.keyboard.press("0")
    _submit_and_wait(b)
    _finish(b, pid, annotator)

    rows = stored(pid)
    assert len(rows) == 3
    first, second, third = (r["payload"] for r in rows)
    assert first["preferred"] == rows[0]["shown_order"][0] and first["strength"] == 2
    assert first["rationale"] == "A is correct and shorter."
    assert second["preferred"] == rows[1]["shown_order"][1] and second["strength"] is None
    assert third["tie"] is True and third["preferred"] is None
    assert all(r["user_id"] == annotator.id and r["time_spent_ms"] > 0 for r in rows)
    assert len({r["client_submission_id"] for r in rows}) == 3


def test_ranking_by_keyboard(
    browsing: Browsing, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    pid = create_project(researcher, annotator, "ranking", _items("ranking", 4))
    b, page = browsing, browsing.page
    _start(b, annotator, pid)
    # The first task is skipped, with a reason, by keyboard.
    page.keyboard.press("s")
    page.keyboard.press("2")
    page.keyboard.press("Tab")
    page.keyboard.type("needs a lawyer")
    _submit_and_wait(b)
    page.keyboard.press("Alt+ArrowDown")  # the first (focused) response goes down one
    page.keyboard.press("c")  # confirm the order
    b.screenshot("annotate-ranking")
    _submit_and_wait(b)
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("Shift+ArrowUp")  # the third goes up one
    page.keyboard.press("c")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("1")  # the fourth goes to the top: the confirmation no longer holds
    prev = current_aid(page)
    page.keyboard.press("Enter")
    assert "Confirm this order" in page.locator("#action-hint").inner_text()
    assert current_aid(page) == prev
    page.keyboard.press("c")
    _submit_and_wait(b)
    page.keyboard.press("c")
    _submit_and_wait(b)  # the order as shown, confirmed
    _finish(b, pid, annotator)

    rows = stored(pid)
    assert len(rows) == 3
    assert skip_reasons(pid) == ["Outside my expertise: needs a lawyer"]
    s = [r["shown_order"] for r in rows]
    assert rows[0]["payload"]["order"] == [s[0][1], s[0][0], s[0][2], s[0][3]]
    assert rows[1]["payload"]["order"] == [s[1][3], s[1][0], s[1][2], s[1][1]]
    assert rows[2]["payload"]["order"] == s[2]


def test_span_by_keyboard_with_emoji_and_cjk(
    browsing: Browsing, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    pid = create_project(
        researcher, annotator, "span", _items("span"), span_labels=["wrong", "unclear"]
    )
    b, page = browsing, browsing.page
    _start(b, annotator, pid)
    # "🙂 日本語のテキスト ...": skip the emoji and the space, select the three kanji.
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    for _ in range(3):
        page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("1")
    # Then the word "dubious" by words, labelled 2, with a comment.
    page.keyboard.press("End")
    for _ in range(5):
        page.keyboard.press("Control+ArrowLeft")
    page.keyboard.press("Control+Shift+ArrowRight")
    page.keyboard.press("2")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("c")
    page.keyboard.type("Unsupported.")
    page.keyboard.press("Escape")
    assert page.get_by_test_id("span-row").count() == 2
    # Esc left the comment for the text (the caret now splits the span it sits in).
    assert page.evaluate("document.activeElement.dataset.testid") == "span-text"
    assert page.locator(".span-text .seg.hl.lab-0").count() >= 1
    assert page.locator(".span-text .seg.hl.lab-1").count() >= 1
    b.screenshot("annotate-span")
    _submit_and_wait(b)
    # Second task: label the trailing "👍🏽" (two code points) and then delete it again, then
    # label the first emoji alone.
    page.keyboard.press("End")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("2")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Delete")
    assert page.get_by_test_id("span-row").count() == 0
    page.keyboard.press("Home")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("1")
    _submit_and_wait(b)
    _submit_and_wait(b)  # nothing wrong in the third
    _finish(b, pid, annotator)

    rows = stored(pid)
    texts = response_texts(pid)
    assert len(rows) == 3
    text0 = texts[rows[0]["payload"]["response_id"]]
    spans0 = rows[0]["payload"]["spans"]
    assert [(s["label"], text0[s["start"] : s["end"]]) for s in spans0] == [
        ("wrong", "日本語"),
        ("unclear", "dubious"),
    ]
    assert spans0[1]["comment"] == "Unsupported."
    text1 = texts[rows[1]["payload"]["response_id"]]
    assert [(s["label"], text1[s["start"] : s["end"]]) for s in rows[1]["payload"]["spans"]] == [
        ("wrong", "🙂")
    ]
    assert rows[2]["payload"]["spans"] == []


def test_critique_by_keyboard(
    browsing: Browsing, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    pid = create_project(researcher, annotator, "critique", _items("critique"))
    b, page = browsing, browsing.page
    _start(b, annotator, pid)
    page.keyboard.type("Too vague: no example.")  # the critique box has the focus
    page.keyboard.press("Escape")
    page.keyboard.press("r")
    page.keyboard.press("Control+End")
    page.keyboard.type(" For example, factorial.")
    page.get_by_test_id("rewrite-diff").locator("ins").first.wait_for()
    b.screenshot("annotate-critique")
    _submit_and_wait(b, "Control+Enter")
    page.keyboard.type("Fine.")
    _submit_and_wait(b, "Control+Enter")
    page.keyboard.press("Control+Enter")  # empty critique: refused in the page
    assert "Write a critique" in page.locator("#action-hint").inner_text()
    page.keyboard.type("Accurate.")
    _submit_and_wait(b, "Control+Enter")
    _finish(b, pid, annotator)

    rows = stored(pid)
    texts = response_texts(pid)
    assert len(rows) == 3
    p0 = rows[0]["payload"]
    assert p0["critique"] == "Too vague: no example."
    assert p0["rewrite"] == texts[p0["response_id"]] + " For example, factorial."
    assert rows[1]["payload"]["critique"] == "Fine." and rows[1]["payload"]["rewrite"] is None
    assert rows[2]["payload"]["critique"] == "Accurate."
