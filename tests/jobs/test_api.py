"""GET /jobs, GET /jobs/{id}, POST /jobs/{id}/cancel: the visibility rule, filters, cancel states."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from app.jobs import runner
from tests.conftest import Actor
from tests.jobs import kinds
from tests.jobs.helpers import enqueue, job_row, reset_effects, sql

ProjectFactory = Callable[..., dict[str, Any]]


@pytest.fixture(autouse=True)
def _effects() -> None:
    reset_effects()


def listed(actor: Actor, **params: Any) -> list[int]:
    r = actor.client.get("/api/v1/jobs", params=params)
    assert r.status_code == 200, r.text
    return [j["id"] for j in r.json()["items"]]


def test_one_visibility_rule_for_get_list_and_cancel(
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    admin: Actor,
) -> None:
    annotator, colleague = make_user("annotator"), make_user("researcher")
    outsider = make_user("researcher")
    p = project_factory(items=0, members=(annotator, colleague))
    by_owner = {"project_id": p["id"], "created_by": researcher.id}
    steps = enqueue(kinds.STEPS, {"steps": 1}, **by_owner)  # visible to annotator members
    export = researcher.client.post(f"/api/v1/projects/{p['id']}/exports", json={}).json()
    private = enqueue(kinds.ADMIN_ONLY, {"steps": 1}, **by_owner)  # creator and admins only
    own = enqueue(kinds.ADMIN_ONLY, {"steps": 1}, created_by=annotator.id)  # no project
    all_jobs = {steps, export["job_id"], private, own}

    expected = [
        (researcher, {steps, export["job_id"], private}),  # the creator sees their own
        (colleague, {steps, export["job_id"]}),  # member, researcher kinds
        (annotator, {steps, own}),  # member, annotator kinds, and their own
        (outsider, set()),
        (admin, all_jobs),
    ]
    for actor, visible in expected:
        assert set(listed(actor)) == visible, actor.role
        for job_id in all_jobs:
            got = actor.client.get(f"/api/v1/jobs/{job_id}")
            assert got.status_code == (200 if job_id in visible else 404), (actor.role, job_id)
            if job_id not in visible:
                assert actor.client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 404

    # Seeing is not cancelling: only the creator or an admin.
    r = colleague.client.post(f"/api/v1/jobs/{steps}/cancel")
    assert r.status_code == 403 and "creator" in r.json()["detail"]
    assert annotator.client.post(f"/api/v1/jobs/{steps}/cancel").status_code == 403
    assert job_row(steps)["status"] == "queued"
    assert annotator.client.post(f"/api/v1/jobs/{own}/cancel").json()["status"] == "cancelled"
    assert admin.client.post(f"/api/v1/jobs/{steps}/cancel").json()["status"] == "cancelled"


def test_an_annotator_cannot_read_export_jobs_of_their_project(
    researcher: Actor, project_factory: ProjectFactory, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    p = project_factory(items=2, members=(annotator,))
    job_id = researcher.client.post(f"/api/v1/projects/{p['id']}/exports", json={}).json()["job_id"]
    assert runner.run_job(job_id) == "done"
    assert researcher.client.get(f"/api/v1/jobs/{job_id}").json()["result"]["sha256"]
    assert annotator.client.get(f"/api/v1/jobs/{job_id}").status_code == 404
    assert listed(annotator, project_id=p["id"]) == []


def test_cancelling_a_queued_job_ends_it_at_once_and_its_message_does_nothing(
    researcher: Actor,
) -> None:
    job_id = enqueue(kinds.STEPS, {"steps": 2}, created_by=researcher.id)
    r = researcher.client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "cancelled" and body["cancel_requested"] is True
    assert body["finished_at"] is not None
    assert runner.run_job(job_id) == "skipped"
    assert job_row(job_id)["attempts"] == 0
    assert sql("SELECT action, target_id FROM audit_log WHERE action = 'jobs.cancel'") == [
        ("jobs.cancel", str(job_id))
    ]
    # Again: nothing changes, and no second audit entry.
    assert researcher.client.post(f"/api/v1/jobs/{job_id}/cancel").json()["status"] == "cancelled"
    assert sql("SELECT count(*) FROM audit_log WHERE action = 'jobs.cancel'") == [(1,)]


@pytest.mark.parametrize("params", [{"steps": 1}, {"steps": 1, "raise_at": 0}])
def test_a_finished_job_cannot_be_cancelled(researcher: Actor, params: dict[str, Any]) -> None:
    job_id = enqueue(kinds.STEPS, params, created_by=researcher.id)
    sql("UPDATE jobs SET max_attempts = 1 WHERE id = %s", job_id)
    assert runner.run_job(job_id) in ("done", "failed")
    status = job_row(job_id)["status"]
    r = researcher.client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert r.status_code == 409
    assert r.json()["detail"] == f"Job {job_id} already {status}; there is nothing to cancel."
    assert job_row(job_id)["status"] == status


def test_the_list_is_newest_first_with_filters_and_keyset_pages(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    p, q = project_factory(items=0), project_factory(items=0)
    mine = {"created_by": researcher.id}
    a = enqueue(kinds.STEPS, {"steps": 1}, project_id=p["id"], **mine)
    b = enqueue(kinds.STEPS_IN_ONE_TRANSACTION, {"steps": 1}, project_id=q["id"], **mine)
    c = enqueue(kinds.STEPS, {"steps": 1}, project_id=q["id"], **mine)
    d = enqueue(kinds.STEPS, {"steps": 1}, **mine)
    assert runner.run_job(c) == "done"

    assert listed(researcher) == [d, c, b, a]
    assert listed(researcher, project_id=q["id"]) == [c, b]
    assert listed(researcher, status="succeeded") == [c]
    assert listed(researcher, status="queued", kind="test.steps") == [d, a]
    assert listed(researcher, kind="test.steps_tx") == [b]
    assert listed(researcher, kind="no.such.kind") == []

    first = researcher.client.get("/api/v1/jobs", params={"limit": 3}).json()
    assert [j["id"] for j in first["items"]] == [d, c, b]
    assert first["next_cursor"] == str(b)
    rest = researcher.client.get("/api/v1/jobs", params={"limit": 3, "cursor": b}).json()
    assert ([j["id"] for j in rest["items"]], rest["next_cursor"]) == ([a], None)

    job = first["items"][1]
    assert job["status"] == "succeeded" and job["result"] == {
        "steps": 1,
        "resumed_at": 0,
        "work_dir_had": [],
    }
    assert job["queue"] == "default" and job["max_attempts"] == 3
    assert job["progress_detail"] == {"step": 1, "of": 1}
    assert job["cancel_requested"] is False and job["created_by"] == researcher.id


@pytest.mark.parametrize(
    "params",
    [
        {"status": "sleeping"},
        {"project_id": 0},
        {"project_id": 2**63},
        {"kind": "Bad Kind"},
        {"kind": "x" * 101},
        {"limit": 0},
        {"cursor": "abc"},
    ],
)
def test_bad_list_filters_are_422(researcher: Actor, params: dict[str, Any]) -> None:
    r = researcher.client.get("/api/v1/jobs", params=params)
    assert r.status_code == 422, r.text


def test_job_ids_out_of_range_are_422_not_500(researcher: Actor) -> None:
    for path in (f"/api/v1/jobs/{2**63}", "/api/v1/jobs/0"):
        assert researcher.client.get(path).status_code == 422
        assert researcher.client.post(path + "/cancel").status_code == 422


def test_jobs_need_a_login(app_client_factory: Callable[[], Any]) -> None:
    with app_client_factory() as anonymous:
        assert anonymous.get("/api/v1/jobs").status_code == 401
        assert anonymous.post("/api/v1/jobs/1/cancel").status_code == 401
