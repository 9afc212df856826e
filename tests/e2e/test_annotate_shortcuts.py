"""The workspace's keys beyond the basics: ranking needs a confirmed order, the span text gets
the focus back after a comment, word selection snaps to words, per-aspect, rating and overall
keys, selection on a touch screen, an empty project, and a Shortcuts dialog listing every key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import PASSWORD, Actor
from tests.e2e.conftest import PHONE, SCREENSHOTS, Browsing, Watch
from tests.e2e.helpers import (
    create_project,
    current_aid,
    response_texts,
    stored,
    wait_next,
    wait_task,
)


def _items(n: int, count: int, text: str = "Answer {i}.{j}") -> list[dict[str, Any]]:
    return [
        {
            "external_id": f"item-{i}",
            "prompt": f"Prompt {i}",
            "responses": [{"text": text.format(i=i, j=j)} for j in range(count)],
        }
        for i in range(n)
    ]


def _open(b: Browsing, annotator: Actor, pid: int) -> str:
    b.login(annotator.email, PASSWORD, then=f"/projects/{pid}/annotate")
    return wait_task(b.page)


def _submit(page: Any) -> None:
    prev = current_aid(page)
    page.keyboard.press("Enter")
    wait_next(page, prev)


def _help_keys(b: Browsing, screenshot: str | None = None) -> str:
    page = b.page
    page.keyboard.press("?")
    dialog = page.get_by_test_id("help-dialog")
    dialog.wait_for()
    text = str(dialog.inner_text())
    if screenshot:
        b.screenshot(screenshot)
    page.keyboard.press("Escape")
    return text


def _no_sideways_scroll(page: Any) -> None:
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(50)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_ranking_submits_only_a_confirmed_order(
    browsing: Browsing, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    pid = create_project(researcher, annotator, "ranking", _items(2, 3))
    b, page = browsing, browsing.page
    first = _open(b, annotator, pid)
    keys = _help_keys(b, "help-ranking")
    assert "Confirm the order" in keys and "Home" in keys
    page.keyboard.press("Enter")  # the shuffled order, untouched: refused
    page.get_by_test_id("submit").click()
    assert current_aid(page) == first and stored(pid) == []
    assert "confirm it with c" in page.locator("#action-hint").inner_text()
    page.keyboard.press("c")
    assert page.get_by_test_id("confirm-order").get_attribute("aria-pressed") == "true"
    assert "Order confirmed" in page.locator("#action-hint").inner_text()
    b.screenshot("annotate-ranking-confirmed")
    _no_sideways_scroll(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    _submit(page)
    rows = stored(pid)
    assert [r["payload"]["order"] for r in rows] == [rows[0]["shown_order"]]
    # The confirmation is part of the draft: a reload keeps it.
    page.keyboard.press("c")
    page.get_by_test_id("save-state").filter(has_text="Draft saved").wait_for()
    page.reload()
    wait_task(page)
    assert page.get_by_test_id("confirm-order").get_attribute("aria-pressed") == "true"
    _submit(page)
    assert len(stored(pid)) == 2
    b.watch.assert_clean(page)


SPAN_TEXT = "The moon is made of green cheese, said nobody."


def test_span_comment_then_escape_gives_the_arrows_back_and_words_snap(
    browsing: Browsing, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    pid = create_project(
        researcher, annotator, "span", _items(1, 1, SPAN_TEXT), span_labels=["wrong", "unclear"]
    )
    b, page = browsing, browsing.page
    _open(b, annotator, pid)
    keys = _help_keys(b, "help-span")
    for needed in ("Back to the response text", "Overall rating", "without the space", "Touch"):
        assert needed in keys, needed
    press = page.keyboard.press
    # "moon" by words from the start: Ctrl+Right past "The", then select a word.
    press("Control+ArrowRight")  # caret after "The", on the space
    press("Control+Shift+ArrowRight")  # "moon", not " moon"
    press("1")
    press("ArrowLeft")
    press("c")
    page.keyboard.type("It is rock.")
    press("Escape")
    assert page.evaluate("document.activeElement.dataset.testid") == "span-text"
    # The arrows work at once (no `t`): from inside "moon" to the end, then back over words.
    press("End")
    press("ArrowLeft")  # before the final "."
    press("Control+Shift+ArrowLeft")  # "nobody"
    press("Control+Shift+ArrowLeft")  # "said nobody"
    press("2")
    # The overall rating by keyboard: o, then a digit; the focus comes back to the text.
    press("o")
    press("4")
    assert page.get_by_test_id("overall-4").get_attribute("aria-checked") == "true"
    assert page.evaluate("document.activeElement.dataset.testid") == "span-text"
    b.screenshot("annotate-span-keys")
    _submit(page)
    row = stored(pid)[0]
    text = response_texts(pid)[row["payload"]["response_id"]]
    spans = [
        (s["label"], text[s["start"] : s["end"]], s.get("comment")) for s in row["payload"]["spans"]
    ]
    assert spans == [("wrong", "moon", "It is rock."), ("unclear", "said nobody", None)]
    assert row["payload"]["overall"] == 4
    b.watch.assert_clean(page)


def test_pairwise_aspects_by_keyboard(
    browsing: Browsing, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    pid = create_project(
        researcher,
        annotator,
        "pairwise",
        _items(1, 2),
        aspects=["honesty", "clarity"],
        allow_tie=True,
    )
    b, page = browsing, browsing.page
    _open(b, annotator, pid)
    keys = _help_keys(b, "help-pairwise-aspects")
    assert "Per-aspect choices" in keys and "back to the overall choice" in keys
    press = page.keyboard.press
    press("1")  # overall: A
    press("a")  # the first aspect has the focus
    press("2")  # honesty: B, then on to clarity
    press("0")  # clarity: tie, then back to the task
    assert page.get_by_test_id("aspect-honesty-b").get_attribute("aria-checked") == "true"
    assert page.get_by_test_id("aspect-clarity-tie").get_attribute("aria-checked") == "true"
    b.screenshot("annotate-pairwise-aspects")
    _submit(page)
    row = stored(pid)[0]
    shown = row["shown_order"]
    assert row["payload"]["preferred"] == shown[0]
    assert row["payload"]["aspects"] == {"honesty": shown[1], "clarity": None}
    b.watch.assert_clean(page)


def test_critique_rating_by_keyboard(
    browsing: Browsing, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    pid = create_project(researcher, annotator, "critique", _items(1, 1))
    b, page = browsing, browsing.page
    _open(b, annotator, pid)
    page.keyboard.press("Escape")  # out of the critique box, which has the focus at first
    assert "Rating, outside the text fields" in _help_keys(b, "help-critique")
    page.keyboard.press("c")
    page.keyboard.type("Too short.")
    page.keyboard.press("Escape")
    page.keyboard.press("6")
    assert page.get_by_test_id("rating-6").get_attribute("aria-checked") == "true"
    _submit(page)
    assert stored(pid)[0]["payload"]["rating"] == 6
    b.watch.assert_clean(page)


def test_an_empty_project_says_it_has_no_items(
    browsing: Browsing, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    r = researcher.client.post("/api/v1/projects", json={"name": "empty", "kind": "pairwise"})
    pid = r.json()["id"]
    researcher.client.post(f"/api/v1/projects/{pid}/members", json={"user_id": annotator.id})
    b, page = browsing, browsing.page
    b.login(annotator.email, PASSWORD, then=f"/projects/{pid}/annotate")
    page.get_by_test_id("no-items-yet").wait_for()
    assert page.get_by_test_id("no-more-tasks").is_hidden()
    assert "no items to annotate yet" in page.get_by_test_id("no-items-yet").inner_text()
    b.screenshot("annotate-empty-project")
    _no_sideways_scroll(page)
    b.watch.assert_clean(page)


@pytest.fixture
def phone(browser: Any, live_server: str) -> Iterator[Browsing]:
    """A touch-screen phone: coarse pointer, 390 px wide."""
    context = browser.new_context(
        viewport=PHONE, base_url=live_server, has_touch=True, is_mobile=True, device_scale_factor=2
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    watch = Watch()
    page.on("pageerror", lambda exc: watch.errors.append(str(exc)))
    yield Browsing(page, context, watch, live_server)
    context.close()


SELECT_WORD = """
word => {
  // As the OS does after touch-and-hold plus dragging the handles: a native selection.
  const box = document.querySelector('[data-testid=span-text]');
  const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
  let node;
  while ((node = walker.nextNode())) {
    const at = node.data.indexOf(word);
    if (at >= 0) {
      const range = document.createRange();
      range.setStart(node, at);
      range.setEnd(node, at + word.length);
      const sel = getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      return true;
    }
  }
  return false;
}
"""


def test_span_on_a_touch_screen_says_how_to_select_and_labels_the_selection(
    phone: Browsing, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    pid = create_project(
        researcher, annotator, "span", _items(1, 1, SPAN_TEXT), span_labels=["wrong", "unclear"]
    )
    b, page = phone, phone.page
    _open(b, annotator, pid)
    assert "Touch and hold a word" in page.locator("#action-hint").inner_text()
    assert "Touch and hold a word" in page.get_by_test_id("span-empty").inner_text()
    assert page.evaluate(SELECT_WORD, "green cheese")
    page.wait_for_timeout(100)  # selectionchange is delivered as a task
    page.get_by_test_id("span-label-1").tap()
    page.get_by_test_id("span-row").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "annotate-span-touch-phone.png"), full_page=True)
    prev = current_aid(page)
    page.get_by_test_id("submit").tap()
    wait_next(page, prev)
    row = stored(pid)[0]
    text = response_texts(pid)[row["payload"]["response_id"]]
    assert [text[s["start"] : s["end"]] for s in row["payload"]["spans"]] == ["green cheese"]
    assert b.watch.errors == []
