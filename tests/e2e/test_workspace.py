"""The workspace never loses work: drag to rank, drafts across reloads, submissions made offline."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.e2e.conftest import Browsing
from tests.e2e.helpers import create_project, current_aid, stored, wait_next, wait_task
from tests.helpers import PASSWORD, Actor


def _items(kind: str, n: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "external_id": f"{kind}-{i}",
            "prompt": f"Prompt {i}",
            "responses": [{"text": f"Answer {i}.{j}"} for j in range(count)],
        }
        for i in range(n)
    ]


def _open(b: Browsing, annotator: Actor, pid: int) -> str:
    b.login(annotator.email, PASSWORD, then=f"/projects/{pid}/annotate")
    return wait_task(b.page)


def _outbox(page: Any, user_id: int) -> list[dict[str, Any]]:
    raw = page.evaluate(f"localStorage.getItem('tandem.outbox.v1.{user_id}')")
    return json.loads(raw) if raw else []


def test_ranking_by_drag_and_drop(
    browsing: Browsing, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    pid = create_project(researcher, annotator, "ranking", _items("ranking", 1, 3))
    b, page = browsing, browsing.page
    _open(b, annotator, pid)
    items = page.get_by_test_id("rank-item")
    shown = [int(items.nth(i).get_attribute("data-response-id")) for i in range(3)]
    items.nth(2).drag_to(items.nth(0))  # the last response, dragged to the top
    after = [int(items.nth(i).get_attribute("data-response-id")) for i in range(3)]
    assert after == [shown[2], shown[0], shown[1]]
    prev = current_aid(page)
    page.get_by_test_id("confirm-order").click()
    page.get_by_test_id("submit").click()
    wait_next(page, prev)
    assert [r["payload"]["order"] for r in stored(pid)] == [after]
    b.watch.assert_clean(page)


def test_drafts_survive_a_reload(
    browsing: Browsing, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    pid = create_project(researcher, annotator, "critique", _items("critique", 1, 1))
    b, page = browsing, browsing.page
    aid = _open(b, annotator, pid)
    page.keyboard.type("Half-written critique")
    page.get_by_test_id("save-state").filter(has_text="Draft saved").wait_for()
    # The server holds the draft: a fresh browser (no localStorage) gets it back too.
    page.evaluate("localStorage.clear()")
    page.reload()
    assert wait_task(page) == aid
    assert page.get_by_test_id("critique").input_value() == "Half-written critique"
    assert page.get_by_test_id("save-state").inner_text() == "Draft restored"
    b.watch.assert_clean(page)


def test_offline_submission_is_sent_once_back_online(
    browsing: Browsing, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    pid = create_project(researcher, annotator, "pairwise", _items("pairwise", 3, 2))
    b, page = browsing, browsing.page
    first = _open(b, annotator, pid)
    page.keyboard.press("2")
    b.context.set_offline(True)
    page.keyboard.press("Enter")
    page.get_by_test_id("offline-banner").filter(has_text="saved on this device").wait_for()
    queued = _outbox(page, annotator.id)
    assert len(queued) == 1 and queued[0]["payload"] == {"choice": "b"}
    assert stored(pid) == []
    b.context.set_offline(False)
    wait_next(page, first)
    assert _outbox(page, annotator.id) == []
    rows = stored(pid)
    assert len(rows) == 1
    assert rows[0]["client_submission_id"] == queued[0]["client_submission_id"]
    assert rows[0]["payload"]["preferred"] == rows[0]["shown_order"][1]
    assert page.get_by_test_id("offline-banner").is_hidden()
    assert page.get_by_test_id("done-count").inner_text().startswith("1 done")


def test_a_submission_whose_answer_was_lost_is_stored_once(
    browsing: Browsing, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    """The request reaches the server but the reply never reaches the page: the retry from the
    outbox gets the first annotation back, not a second one."""
    annotator = make_user("annotator")
    pid = create_project(researcher, annotator, "pairwise", _items("pairwise", 2, 2))
    b, page = browsing, browsing.page
    first = _open(b, annotator, pid)
    lost: list[int] = []

    def drop_reply(route: Any) -> None:
        if not lost:
            response = route.fetch()  # the server stores the annotation ...
            lost.append(response.status)
            route.abort("internetdisconnected")  # ... and the page hears nothing
        else:
            route.continue_()

    page.route("**/api/v1/assignments/*/submit", drop_reply)
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    wait_next(page, first)  # retried from the outbox, then the next task
    assert lost == [201]
    rows = stored(pid)
    assert len(rows) == 1
    assert _outbox(page, annotator.id) == []

    # An answer still in the outbox when the tab is closed is sent when the page opens again.
    page.route("**/api/v1/assignments/*/submit", lambda route: route.abort("internetdisconnected"))
    page.keyboard.press("0")
    page.keyboard.press("Enter")
    page.get_by_test_id("offline-banner").filter(has_text="saved on this device").wait_for()
    assert len(_outbox(page, annotator.id)) == 1
    page.close()
    again = b.context.new_page()
    again.goto(f"{b.base_url}/projects/{pid}/annotate")
    again.get_by_test_id("no-more-tasks").wait_for()
    rows = stored(pid)
    assert len(rows) == 2 and rows[1]["payload"]["tie"] is True
    assert _outbox(again, annotator.id) == []


def test_an_expired_lease_is_announced_and_the_work_still_submits(
    browsing: Browsing, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    pid = create_project(
        researcher, annotator, "pairwise", _items("pairwise", 1, 2), lease_seconds=60
    )
    b, page = browsing, browsing.page
    b.login(annotator.email, PASSWORD)
    page.clock.install()
    b.goto(f"/projects/{pid}/annotate")
    first = wait_task(page)
    page.keyboard.press("1")
    assert page.get_by_test_id("lease-expired").is_hidden()
    page.clock.run_for(61_000)
    page.get_by_test_id("lease-expired").wait_for()
    b.screenshot("lease-expired")
    page.keyboard.press("Enter")
    wait_next(page, first)
    page.get_by_test_id("no-more-tasks").wait_for()
    assert len(stored(pid)) == 1
    b.watch.assert_clean(page)


SELECT_CJK = """
() => {
  const box = document.querySelector('[data-testid=span-text]');
  const node = box.querySelector('.seg').firstChild;
  const r = document.createRange();
  r.setStart(node, node.data.indexOf('日'));
  r.setEnd(node, node.data.indexOf(' 😀'));
  getSelection().removeAllRanges();
  getSelection().addRange(r);
  box.dispatchEvent(new MouseEvent('mousedown', { bubbles: true }));
  box.dispatchEvent(new MouseEvent('mouseup', { bubbles: true }));
}
"""

WORD_CENTRE = """
word => {
  const box = document.querySelector('[data-testid=span-text]');
  for (const seg of box.querySelectorAll('.seg')) {
    const node = seg.firstChild;
    const at = node ? node.data.indexOf(word) : -1;
    if (at < 0) continue;
    const r = document.createRange();
    r.setStart(node, at);
    r.setEnd(node, at + word.length);
    const b = r.getBoundingClientRect();
    return { x: b.x + b.width / 2, y: b.y + b.height / 2 };
  }
  return null;
}
"""


def test_span_mouse_selections_map_to_code_points(
    browsing: Browsing, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    """DOM selections count UTF-16 units; stored offsets are code points of the response."""
    annotator = make_user("annotator")
    text = "👍🏽 abc 日本語 😀 done"
    item = [{"prompt": "p", "responses": [{"text": text}]}]
    pid = create_project(researcher, annotator, "span", item, span_labels=["wrong", "unclear"])
    b, page = browsing, browsing.page
    first = _open(b, annotator, pid)
    page.evaluate(SELECT_CJK)
    page.get_by_test_id("span-label-1").click()
    centre = page.evaluate(WORD_CENTRE, "done")
    page.mouse.dblclick(centre["x"], centre["y"])
    page.keyboard.press("2")
    assert page.get_by_test_id("span-row").count() == 2
    page.get_by_test_id("submit").click()
    wait_next(page, first)
    spans = stored(pid)[0]["payload"]["spans"]
    assert [(s["label"], s["start"], s["end"], text[s["start"] : s["end"]]) for s in spans] == [
        ("wrong", 7, 10, "日本語"),
        ("unclear", 13, 17, "done"),
    ]
    b.watch.assert_clean(page)
