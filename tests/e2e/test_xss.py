"""Hostile text everywhere a page shows user or model text renders as inert text: no script
runs, no dialog opens, nothing violates the Content-Security-Policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.e2e.conftest import Browsing
from tests.e2e.helpers import create_project, wait_task
from tests.helpers import PASSWORD, Actor

CORPUS = [
    "<script>window.__xss = 1; alert(1)</script>",
    '<img src=x onerror="window.__xss=2;alert(2)">',
    "[click me](javascript:window.__xss=3)",
    '<a href="javascript:alert(4)">html link</a>',
    '<svg onload="window.__xss=5"><script>alert(5)</script></svg>',
    '<iframe srcdoc="<script>parent.__xss=6</script>"></iframe>',
    '![pixel](https://evil.example/x.png" onerror="alert(7))',
    "**bold** <b onmouseover=alert(8)>hover</b> <style>body{display:none}</style>",
    '"><script>alert(9)</script>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(10)>",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxMSk8L3NjcmlwdD4=)",
    "{{ 7*7 }} {% if true %}jinja{% endif %}",
    "```html\n<script>alert(12)</script>\n```",
]
MARKDOWN = "\n\n".join(CORPUS)
LABELS = ["<img src=x onerror=alert(13)>", "<script>alert(14)</script>", '"><svg onload=alert(15)>']
NAME = '<script>alert("name")</script><img src=x onerror=alert(16)>'

# Anything here means markup from the corpus became live DOM.
LIVE_MARKUP = (
    "#main img, #main svg, #main iframe, #main math, #main style, #main [onerror], #main [onload],"
    " #main [onmouseover], #main a[href^='javascript'], #main a[href^='data'], #main script"
)


def _item(count: int) -> list[dict[str, Any]]:
    return [
        {
            "external_id": "xss",
            "prompt": MARKDOWN,
            "responses": [{"text": MARKDOWN} for _ in range(count)],
        }
    ]


def _assert_inert(b: Browsing, page: Any) -> None:
    assert page.evaluate("window.__xss") is None
    assert page.locator(LIVE_MARKUP).count() == 0
    # Only the page's own two scripts (boot data and annotate.js, or none on other pages).
    assert page.locator("script:not([nonce])").count() == 0
    assert "tandem_session" not in page.evaluate("document.cookie")
    b.watch.assert_clean(page)


def test_hostile_text_renders_inert(
    browsing: Browsing, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    pids = {
        kind: create_project(
            researcher,
            annotator,
            kind,
            _item(n),
            guidelines=MARKDOWN,
            **({"span_labels": LABELS} if kind == "span" else {}),
        )
        for kind, n in (("pairwise", 2), ("span", 1), ("critique", 1))
    }
    for pid in pids.values():
        r = researcher.client.patch(f"/api/v1/projects/{pid}", json={"name": NAME})
        assert r.status_code == 200, r.text
    b, page = browsing, browsing.page
    b.login(annotator.email, PASSWORD)
    assert page.get_by_text(NAME).count() == 3
    _assert_inert(b, page)

    b.goto(f"/projects/{pids['pairwise']}/annotate")
    wait_task(page)
    if page.locator("#guidelines").is_hidden():
        page.keyboard.press("g")  # show the guidelines too
    assert page.locator("#guidelines .md").get_by_text("<script>window.__xss = 1").count() == 1
    assert page.locator(".prompt-body").get_by_text("<script>window.__xss = 1").count() == 1
    assert page.locator(".response-body").get_by_text("<script>window.__xss = 1").count() == 2
    assert (
        page.locator(".prompt-body pre code").inner_text().strip() == "<script>alert(12)</script>"
    )
    links = page.locator("#main .md a")
    assert all(
        (links.nth(i).get_attribute("href") or "").startswith(("http:", "https:"))
        for i in range(links.count())
    )
    page.locator("#task").hover()
    page.get_by_text("hover").first.hover()
    _assert_inert(b, page)
    b.screenshot("xss-pairwise")

    b.goto(f"/projects/{pids['span']}/annotate")
    wait_task(page)
    assert page.get_by_test_id("span-label-1").inner_text().endswith(LABELS[0])
    assert page.get_by_test_id("span-text").inner_text() == MARKDOWN
    page.keyboard.press("Shift+End")
    page.keyboard.press("2")
    assert page.get_by_test_id("span-row").count() == 1
    _assert_inert(b, page)

    b.goto(f"/projects/{pids['critique']}/annotate")
    wait_task(page)
    page.keyboard.press("Escape")
    page.keyboard.press("r")
    page.keyboard.press("Control+Home")
    page.keyboard.type("<img src=x onerror=alert(17)> ")
    page.get_by_test_id("rewrite-diff").locator("ins").first.wait_for()
    assert "<img src=x onerror=alert(17)>" in page.get_by_test_id("rewrite-diff").inner_text()
    _assert_inert(b, page)

    # The researcher's pages show the same text: names, guidelines, member emails.
    b.context.clear_cookies()
    b.login(researcher.email, PASSWORD, then=f"/projects/{pids['span']}")
    assert page.get_by_test_id("project-title").inner_text() == NAME
    _assert_inert(b, page)
