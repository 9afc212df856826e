"""Progress counts votes against votes needed; the items browser filters by state, votes,
agreement and gold and shows every vote, skip and provenance of an item; background jobs and
their errors show on the project page and the jobs page."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from app.auth.models import Role
from app.auth.service import Principal
from app.db import session_scope
from app.items import importer
from app.jobs import runner
from tests.exports.helpers import add_ai_vote, annotate, items_of, pairwise_choice, pairwise_payload
from tests.helpers import Actor, make_items
from tests.web.test_pages import _browser, _csrf


def test_progress_counts_votes_collected_against_needed(
    project_factory: Callable[..., Any],
    make_user: Callable[..., Actor],
    researcher: Actor,
    app_client_factory: Callable[[], httpx.Client],
) -> None:
    annotators = [make_user("annotator") for _ in range(3)]
    pid = int(project_factory("pairwise", items=3, members=tuple(annotators), overlap=2)["id"])
    for a in annotators:  # one vote each: 3 of 6 needed, no item complete
        annotate(a, pid, lambda t: pairwise_choice(t, 0), limit=1)
    counts = annotators[0].client.get(f"/api/v1/projects/{pid}/progress").json()
    assert counts["items_complete"] in (0, 1)  # two annotators may have met on one item
    assert counts["votes_collected"] == 3 and counts["votes_needed"] == 6
    assert counts["percent_votes"] == 50
    html = _browser(app_client_factory, researcher).get(f"/projects/{pid}").text
    assert 'data-testid="stat-votes">3 / 6<' in html
    assert 'max="6" value="3"' in html


def test_items_browser_filters_and_item_page_shows_everything(
    project_factory: Callable[..., Any],
    make_user: Callable[..., Actor],
    researcher: Actor,
    app_client_factory: Callable[[], httpx.Client],
) -> None:
    a1, a2 = make_user("annotator"), make_user("annotator")
    pid = int(project_factory("pairwise", items=0, members=(a1, a2), overlap=2)["id"])
    rows = make_items("pairwise", 4)
    rows.append({**make_items("pairwise", 1, prefix="g")[0], "is_gold": True,
                 "gold_answer": {"choice": "a"}, "priority": -5})  # fmt: skip
    assert researcher.client.post(f"/api/v1/projects/{pid}/items", json=rows).status_code == 201
    ids = items_of(pid)

    def answer(actor: Actor, want: dict[str, Any]) -> None:
        # Take tasks until every wanted item is answered; others are skipped with a reason.
        while True:
            r = actor.client.post(f"/api/v1/projects/{pid}/tasks/next")
            if r.status_code == 204:
                return
            t = r.json()
            ext = t["item"]["external_id"]
            aid = t["assignment_id"]
            if ext in want:
                payload = pairwise_choice(t, want[ext])
                actor.client.post(f"/api/v1/assignments/{aid}/submit", json={"payload": payload})
            else:
                actor.client.post(f"/api/v1/assignments/{aid}/skip", json={"reason": "unclear"})

    answer(a1, {"x-0": 0, "x-1": 0, "x-2": 0})
    answer(a2, {"x-0": 0, "x-1": 1})
    item0, responses0 = ids["x-0"]
    add_ai_vote(pid, item0, 7, pairwise_payload(responses0[0], responses0[1]), responses0)

    b = _browser(app_client_factory, researcher)

    def listed(**params: str) -> list[str]:
        page = b.get(f"/projects/{pid}/items", params=params)
        assert page.status_code == 200, page.text
        found = [iid for iid, _ in ids.values()]
        return sorted(ext for ext, (iid, _) in ids.items()
                      if f'data-item-id="{iid}"' in page.text and iid in found)  # fmt: skip

    assert listed() == ["g-0", "x-0", "x-1", "x-2", "x-3"]
    assert listed(state="complete") == ["x-0", "x-1"]
    assert listed(state="in_progress") == ["x-2"]
    assert listed(state="waiting", gold="no") == ["x-3"]
    assert listed(gold="yes") == ["g-0"]
    assert listed(min_votes="3") == ["x-0"]  # 2 human + 1 AI
    assert listed(max_agreement="0.6") == ["x-1"]  # a 1-1 split is a tie: no consensus row
    assert listed(min_agreement="0.9") == ["x-0", "x-2"]
    bad = b.get(f"/projects/{pid}/items", params={"max_agreement": "2"})
    assert bad.status_code == 422

    page = b.get(f"/projects/{pid}/items/{item0}")
    assert page.status_code == 200
    assert page.text.count('data-testid="vote"') == 3
    assert 'data-source="ai"' in page.text and "judge:7" in page.text
    assert a1.email in page.text and a2.email in page.text
    assert "agreement 1.00" in page.text and "x-0" in page.text
    skipped = ids["x-3"][0]
    page = b.get(f"/projects/{pid}/items/{skipped}")
    assert page.text.count('data-testid="skip-reason">unclear<') == 2
    other = int(project_factory("pairwise", items=1)["id"])
    assert b.get(f"/projects/{other}/items/{item0}").status_code == 404


def test_items_browser_pages_with_a_cursor(
    project_factory: Callable[..., Any],
    researcher: Actor,
    app_client_factory: Callable[[], httpx.Client],
) -> None:
    pid = int(project_factory("pairwise", items=120)["id"])
    b = _browser(app_client_factory, researcher)
    first = b.get(f"/projects/{pid}/items", params={"state": "waiting"})
    assert first.text.count('data-testid="item-row"') == 50
    seen = first.text.count('data-testid="item-row"')
    url = f"/projects/{pid}/items?state=waiting"
    while 'data-testid="items-next"' in (page := b.get(url)).text:
        cursor = page.text.split("cursor=", 1)[1].split('"', 1)[0]
        url = f"/projects/{pid}/items?state=waiting&cursor={cursor}"
        seen += b.get(url).text.count('data-testid="item-row"')
    assert seen == 120


def test_a_failed_background_import_shows_its_row_on_the_project_page(
    project_factory: Callable[..., Any],
    researcher: Actor,
    admin: Actor,
    app_client_factory: Callable[[], httpx.Client],
) -> None:
    pid = int(project_factory("pairwise", items=0)["id"])
    rows = [json.dumps(r) for r in make_items("pairwise", 30)] + ['{"prompt": "no responses"}']
    principal = Principal(researcher.id, researcher.email, Role.researcher, researcher.token)
    with session_scope() as s:
        job = importer.queue_import(s, principal, pid, io.BytesIO("\n".join(rows).encode()), None)
        job_id = job.id
    runner.run_job(job_id)
    html = _browser(app_client_factory, researcher).get(f"/projects/{pid}").text
    assert 'data-testid="project-jobs"' in html and f'data-job-id="{job_id}"' in html
    assert 'data-status="failed"' in html and "row 31: responses" in html
    jobs = _browser(app_client_factory, admin).get("/jobs", params={"status": "failed"})
    assert jobs.status_code == 200 and "row 31: responses" in jobs.text
    empty = _browser(app_client_factory, admin).get("/jobs", params={"status": "running"})
    assert 'data-testid="no-jobs"' in empty.text


def test_a_queued_job_is_cancelled_from_the_project_page(
    project_factory: Callable[..., Any],
    researcher: Actor,
    make_user: Callable[..., Actor],
    app_client_factory: Callable[[], httpx.Client],
) -> None:
    pid = int(project_factory("pairwise", items=2)["id"])
    queued = researcher.client.post(f"/api/v1/projects/{pid}/exports", json={"schema": "raw"})
    job_id = queued.json()["job_id"]
    other = make_user("researcher")
    researcher.client.post(f"/api/v1/projects/{pid}/members", json={"user_id": other.id})
    # Another researcher of the project sees the job but gets no cancel button (nor may cancel).
    theirs = _browser(app_client_factory, other)
    page = theirs.get(f"/projects/{pid}")
    assert f'data-job-id="{job_id}"' in page.text and 'data-testid="job-cancel"' not in page.text
    denied = theirs.post(f"/jobs/{job_id}/cancel", data={"csrf_token": _csrf(page.text)})
    assert denied.status_code == 403
    b = _browser(app_client_factory, researcher)
    page = b.get(f"/projects/{pid}")
    assert 'data-testid="job-cancel"' in page.text
    r = b.post(f"/jobs/{job_id}/cancel", data={"csrf_token": _csrf(page.text)})
    assert r.status_code == 200 and "Cancel requested" in r.text
    assert 'data-status="cancelled"' in r.text
    assert researcher.client.get(f"/api/v1/jobs/{job_id}").json()["status"] == "cancelled"


def test_a_filtered_page_looks_at_a_bounded_number_of_items(
    project_factory: Callable[..., Any],
    researcher: Actor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.items import browse
    from app.pagination import Keyset

    pid = int(project_factory("pairwise", items=0)["id"])
    rows = make_items("pairwise", 40)
    rows[33] = {**rows[33], "is_gold": True, "gold_answer": {"choice": "a"}}
    assert researcher.client.post(f"/api/v1/projects/{pid}/items", json=rows).status_code == 201
    monkeypatch.setattr(browse, "SCAN_BATCH", 5)
    monkeypatch.setattr(browse, "SCAN_LIMIT", 10)
    principal = Principal(researcher.id, researcher.email, Role.researcher, researcher.token)
    pages: list[list[str | None]] = []
    cursor: str | None = None
    with session_scope() as s:
        while True:
            _, found, cursor = browse.list_items(
                s, principal, pid, Keyset.parse(50, cursor), browse.ItemFilter(gold=True)
            )
            pages.append([r.external_id for r in found])
            if cursor is None:
                break
    # 10 items a page at most: pages of nothing until the gold item's window, then the end.
    assert pages == [[], [], [], ["x-33"], []]
