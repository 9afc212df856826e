"""Exports for the workspace: an empty export says why (header, manifest, card, page), the
preview counts what would come out, snapshots can be deleted (not while their job runs), and
the exports page validates options exactly as the API does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from app.config import get_settings
from app.jobs import runner
from tests.exports.helpers import annotate, pairwise_choice, read, snapshot
from tests.helpers import Actor, sql_value
from tests.web.test_pages import _browser, _csrf

HEADER = "x-tandem-empty-reason"


def _critique_without_ratings(
    project_factory: Callable[..., Any], make_user: Callable[..., Actor]
) -> int:
    annotator = make_user("annotator")
    p = project_factory("critique", items=3, members=(annotator,), overlap=1)
    annotate(annotator, int(p["id"]), lambda t: {"critique": "Too vague."})
    return int(p["id"])


def test_an_empty_stream_says_why_in_a_header(
    project_factory: Callable[..., Any], make_user: Callable[..., Actor], researcher: Actor
) -> None:
    pid = _critique_without_ratings(project_factory, make_user)
    r = researcher.client.get(f"/api/v1/projects/{pid}/export", params={"schema": "unpaired"})
    assert r.status_code == 200 and r.content == b""
    reason = r.headers[HEADER]
    assert "3 item(s) have votes but none made a row" in reason and "without a rating" in reason
    # A non-empty export carries no such header, and its bytes are whole.
    full = researcher.client.get(f"/api/v1/projects/{pid}/export", params={"schema": "critique"})
    assert HEADER not in full.headers and len(read(full.content)) == 3
    # Nothing annotated under these filters: said so too (parquet: a valid file, 0 rows).
    none = researcher.client.get(
        f"/api/v1/projects/{pid}/export",
        params={"schema": "critique", "format": "parquet", "source": "ai"},
    )
    assert none.status_code == 200 and read(none.content, "parquet") == []
    assert none.headers[HEADER].startswith("No item has votes that these options select")


def test_an_empty_snapshot_says_why_in_its_manifest_and_card(
    project_factory: Callable[..., Any], make_user: Callable[..., Actor], researcher: Actor
) -> None:
    pid = _critique_without_ratings(project_factory, make_user)
    done = snapshot(researcher, pid, schema="unpaired")
    assert done["status"] == "succeeded" and done["rows"] == 0
    assert "without a rating" in done["manifest"]["empty_reason"]
    card = researcher.client.get(f"/api/v1/projects/{pid}/exports/{done['id']}/card").text
    assert "**This export is empty.**" in card
    full = snapshot(researcher, pid, schema="critique")
    assert full["rows"] == 3 and full["manifest"]["empty_reason"] is None


def test_preview_counts_rows_and_validates_like_the_export(
    project_factory: Callable[..., Any], make_user: Callable[..., Actor], researcher: Actor
) -> None:
    annotators = [make_user("annotator") for _ in range(2)]
    p = project_factory("pairwise", items=4, members=tuple(annotators), overlap=2)
    pid = int(p["id"])
    for n, a in enumerate(annotators):
        annotate(a, pid, lambda t, n=n: pairwise_choice(t, 0 if n == 0 else 1))  # all ties
    url = f"/api/v1/projects/{pid}/export/preview"
    r = researcher.client.get(url, params={"schema": "raw"})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "rows": 8, "items": 4, "items_with_votes": 4, "votes": 8, "excluded": {},
        "empty_reason": None,
    }  # fmt: skip
    tie = researcher.client.get(url, params={"schema": "preference"}).json()
    assert tie["rows"] == 0 and tie["excluded"] == {"tie": 4} and "tie" in tie["empty_reason"]
    bad = researcher.client.get(url, params={"schema": "preference", "span_threshold": "0.3"})
    assert bad.status_code == 422 and bad.json()["error"] == "validation_error"
    wrong_kind = researcher.client.get(url, params={"schema": "spans"})
    assert (
        wrong_kind.status_code == 422 and "this project is pairwise" in wrong_kind.json()["detail"]
    )


def test_delete_a_snapshot_removes_its_files_but_not_while_its_job_runs(
    project_factory: Callable[..., Any], researcher: Actor
) -> None:
    pid = int(project_factory("pairwise", items=2)["id"])
    queued = researcher.client.post(f"/api/v1/projects/{pid}/exports", json={"schema": "raw"})
    export_id, job_id = queued.json()["export_id"], queued.json()["job_id"]
    url = f"/api/v1/projects/{pid}/exports/{export_id}"
    refused = researcher.client.delete(url)
    assert refused.status_code == 409 and refused.json()["error"] == "jobs_running"
    assert runner.run_job(job_id) == "done"
    folder = get_settings().data_dir / sql_value(
        "SELECT path FROM exports WHERE id = %s", export_id
    )
    assert (folder / "manifest.json").is_file()
    assert researcher.client.delete(url).status_code == 204
    assert not folder.exists()
    assert researcher.client.get(url).status_code == 404
    assert researcher.client.delete(url).status_code == 404


def test_exports_page_counts_starts_lists_and_deletes(
    project_factory: Callable[..., Any],
    make_user: Callable[..., Actor],
    researcher: Actor,
    app_client_factory: Callable[[], httpx.Client],
) -> None:
    pid = _critique_without_ratings(project_factory, make_user)
    browser = _browser(app_client_factory, researcher)
    page = browser.get(f"/projects/{pid}/exports")
    assert page.status_code == 200 and 'data-testid="no-exports"' in page.text
    # Options as the API validates them: span_threshold does not apply to critique.
    bad = browser.get(
        f"/projects/{pid}/exports", params={"schema": "critique", "span_threshold": "0.3"}
    )
    assert bad.status_code == 422 and "span_threshold applies to schema spans" in bad.text
    counted = browser.get(f"/projects/{pid}/exports", params={"schema": "unpaired", "aspect": ""})
    assert counted.status_code == 200
    assert 'data-testid="preview-rows">0<' in counted.text and "without a rating" in counted.text
    r = browser.post(
        f"/projects/{pid}/exports",
        data={"csrf_token": _csrf(page.text), "schema": "unpaired", "format": "parquet"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    job_id = sql_value("SELECT max(id) FROM jobs WHERE project_id = %s", pid)
    watching = browser.get(f"/projects/{pid}/exports")
    assert 'http-equiv="refresh"' in watching.text and 'data-status="queued"' in watching.text
    assert runner.run_job(job_id) == "done"
    listed = browser.get(f"/projects/{pid}/exports")
    assert 'data-status="succeeded"' in listed.text and "http-equiv" not in listed.text
    assert 'data-testid="export-empty-reason"' in listed.text
    export_id = sql_value("SELECT max(id) FROM exports WHERE project_id = %s", pid)
    r = browser.post(
        f"/projects/{pid}/exports/{export_id}/delete",
        data={"csrf_token": _csrf(listed.text)},
        follow_redirects=True,
    )
    assert r.status_code == 200 and "Snapshot deleted" in r.text
    assert sql_value("SELECT count(*) FROM exports WHERE project_id = %s", pid) == 0
