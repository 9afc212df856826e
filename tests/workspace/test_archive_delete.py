"""Archive (hidden from annotators, closed to tasks, kept for export; unarchive) and delete
(admins, refused while a job runs; files of its snapshots go) through the API and the pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from app.config import get_settings
from app.jobs import runner
from tests.exports.helpers import annotate, pairwise_choice, snapshot
from tests.helpers import Actor, sql_value
from tests.web.test_pages import _browser, _csrf

API = "/api/v1/projects"


def _project(project_factory: Callable[..., Any], annotator: Actor) -> int:
    p = project_factory("pairwise", items=3, members=(annotator,), overlap=1)
    return int(p["id"])


def test_archive_hides_from_annotators_and_keeps_data_for_export(
    project_factory: Callable[..., Any], researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    pid = _project(project_factory, annotator)
    annotate(annotator, pid, lambda t: pairwise_choice(t, 0), limit=1)

    r = researcher.client.post(f"{API}/{pid}/archive")
    assert r.status_code == 200 and r.json()["archived_at"] is not None
    again = researcher.client.post(f"{API}/{pid}/archive")
    assert again.json()["archived_at"] == r.json()["archived_at"]  # idempotent

    # Annotators: gone from the list, 404 on the project, its progress and the next task.
    assert all(p["id"] != pid for p in annotator.client.get(API).json()["items"])
    assert annotator.client.get(f"{API}/{pid}").status_code == 404
    assert annotator.client.get(f"{API}/{pid}/progress").status_code == 404
    assert annotator.client.post(f"{API}/{pid}/tasks/next").status_code == 404
    # Researchers still see it, get no tasks (409), and can export everything.
    assert researcher.client.get(f"{API}/{pid}").json()["archived_at"] is not None
    closed = researcher.client.post(f"{API}/{pid}/tasks/next")
    assert closed.status_code == 409 and "archived" in closed.json()["detail"]
    rows = researcher.client.get(f"{API}/{pid}/export", params={"schema": "raw"})
    assert rows.status_code == 200 and len(rows.content.splitlines()) == 1

    r = researcher.client.post(f"{API}/{pid}/unarchive")
    assert r.status_code == 200 and r.json()["archived_at"] is None
    assert annotator.client.post(f"{API}/{pid}/tasks/next").status_code == 200


def test_delete_is_for_admins_refused_while_jobs_run_and_removes_files(
    project_factory: Callable[..., Any],
    researcher: Actor,
    admin: Actor,
    make_user: Callable[..., Actor],
) -> None:
    annotator = make_user("annotator")
    pid = _project(project_factory, annotator)
    annotate(annotator, pid, lambda t: pairwise_choice(t, 0))
    done = snapshot(researcher, pid, schema="raw")
    path = sql_value("SELECT path FROM exports WHERE id = %s", done["id"])
    folder = get_settings().data_dir / path
    assert folder.is_dir()

    assert researcher.client.delete(f"{API}/{pid}").status_code == 403
    queued = researcher.client.post(f"{API}/{pid}/exports", json={"schema": "raw"}).json()
    refused = admin.client.delete(f"{API}/{pid}")
    assert refused.status_code == 409 and refused.json()["error"] == "jobs_running"
    assert str(queued["job_id"]) in refused.json()["detail"]
    assert sql_value("SELECT count(*) FROM items WHERE project_id = %s", pid) == 3

    assert runner.run_job(queued["job_id"]) == "done"
    assert admin.client.delete(f"{API}/{pid}").status_code == 204
    assert admin.client.get(f"{API}/{pid}").status_code == 404
    for table in ("items", "annotations", "assignments", "exports", "jobs"):
        assert sql_value(f"SELECT count(*) FROM {table} WHERE project_id = %s", pid) == 0, table
    assert not folder.exists()
    assert admin.client.delete(f"{API}/{pid}").status_code == 404


def test_pages_archive_and_delete_with_the_name_typed_again(
    project_factory: Callable[..., Any],
    make_user: Callable[..., Actor],
    admin: Actor,
    app_client_factory: Callable[[], httpx.Client],
) -> None:
    annotator = make_user("annotator")
    pid = _project(project_factory, annotator)
    browser = _browser(app_client_factory, admin)
    page = browser.get(f"/projects/{pid}")
    csrf = _csrf(page.text)
    r = browser.post(f"/projects/{pid}/archive", data={"csrf_token": csrf}, follow_redirects=True)
    assert r.status_code == 200 and 'data-testid="archived-banner"' in r.text
    assert "Unarchive" in r.text
    seen = _browser(app_client_factory, annotator).get("/")
    assert f'data-project-id="{pid}"' not in seen.text

    # A wrong name: post-redirect-get back to the project page, which says why.
    wrong = browser.post(
        f"/projects/{pid}/delete",
        data={"csrf_token": csrf, "confirm_name": "nope"},
        follow_redirects=False,
    )
    assert wrong.status_code == 303
    shown = browser.get(wrong.headers["location"])
    assert shown.status_code == 200 and "Type the project" in shown.text
    assert sql_value("SELECT count(*) FROM projects WHERE id = %s", pid) == 1
    r = browser.post(
        f"/projects/{pid}/delete",
        data={"csrf_token": csrf, "confirm_name": "pairwise project"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert sql_value("SELECT count(*) FROM projects WHERE id = %s", pid) == 0
