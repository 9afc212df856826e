"""Projects: settings and their validation, overlap shifts, visibility, members, the audit log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers import Actor, make_items, sql

API = "/api/v1/projects"


def remaining_mismatches(project_id: int) -> list[tuple[Any, ...]]:
    """Items whose remaining is not overlap - live leases - counted human annotations."""
    return sql(
        """
        SELECT i.id, i.remaining, p.overlap
            - (SELECT count(*) FROM assignments a WHERE a.item_id = i.id AND a.status = 'leased')
            - (SELECT count(*) FROM annotations n
               WHERE n.item_id = i.id AND n.source = 'human' AND NOT n.over_quota)
        FROM items i JOIN projects p ON p.id = i.project_id
        WHERE i.project_id = %s AND i.remaining <> p.overlap
            - (SELECT count(*) FROM assignments a WHERE a.item_id = i.id AND a.status = 'leased')
            - (SELECT count(*) FROM annotations n
               WHERE n.item_id = i.id AND n.source = 'human' AND NOT n.over_quota)
        """,
        project_id,
    )


def remaining_by_item(project_id: int) -> dict[int, int]:
    rows = sql("SELECT id, remaining FROM items WHERE project_id = %s", project_id)
    return {r[0]: r[1] for r in rows}


def test_create_with_every_setting_reads_back(researcher: Actor) -> None:
    body = {
        "name": "  Helpfulness A/B  ",
        "kind": "pairwise",
        "guidelines": "# Pick the *more helpful* answer\n\nIgnore length.",
        "overlap": 3,
        "aspects": ["honesty", "clarity"],
        "allow_tie": False,
        "lease_seconds": 120,
    }
    r = researcher.client.post(API, json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["name"] == "Helpfulness A/B"
    for field in ("kind", "guidelines", "overlap", "aspects", "allow_tie", "lease_seconds"):
        assert created[field] == body[field], field
    assert created["span_labels"] == []
    assert created["created_by"] == researcher.id

    r = researcher.client.get(f"{API}/{created['id']}")
    assert r.status_code == 200
    assert r.json() == created


def test_create_span_project_keeps_labels_in_order(researcher: Actor) -> None:
    r = researcher.client.post(
        API, json={"name": "spans", "kind": "span", "span_labels": ["wrong", "unsafe", "vague"]}
    )
    assert r.status_code == 201, r.text
    assert r.json()["span_labels"] == ["wrong", "unsafe", "vague"]


@pytest.mark.parametrize("kind", ["pairwise", "ranking", "critique"])
def test_defaults_are_overlap_1_tie_allowed_and_15_minute_leases(
    researcher: Actor, kind: str
) -> None:
    r = researcher.client.post(API, json={"name": "p", "kind": kind})
    assert r.status_code == 201, r.text
    p = r.json()
    assert (p["overlap"], p["allow_tie"], p["lease_seconds"]) == (1, True, 900)
    assert (p["guidelines"], p["span_labels"], p["aspects"]) == ("", [], [])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "p", "kind": "bogus"}, "kind"),
        ({"name": "p"}, "kind"),
        ({"kind": "pairwise"}, "name"),
        ({"name": "   ", "kind": "pairwise"}, "name"),
        ({"name": "p", "kind": "pairwise", "overlap": 0}, "overlap"),
        ({"name": "p", "kind": "pairwise", "overlap": "many"}, "overlap"),
        ({"name": "p", "kind": "pairwise", "lease_seconds": 1}, "lease_seconds"),
        ({"name": "p", "kind": "span"}, "span_labels"),
        ({"name": "p", "kind": "span", "span_labels": []}, "span_labels"),
        ({"name": "p", "kind": "span", "span_labels": ["ok", ""]}, "span_labels"),
        ({"name": "p", "kind": "pairwise", "span_labels": ["bad"]}, "span_labels"),
        ({"name": "p", "kind": "ranking", "aspects": ["style"]}, "aspects"),
        ({"name": "p", "kind": "span", "span_labels": ["x"], "aspects": ["y"]}, "aspects"),
        ({"name": "p", "kind": "span", "span_labels": ["bad", "bad"]}, "span_labels"),
        ({"name": "p", "kind": "pairwise", "aspects": ["tone", "tone"]}, "aspects"),
        ({"name": "p", "kind": "pairwise", "colour": "red"}, "colour"),
    ],
)
def test_invalid_settings_are_422_naming_the_field(
    researcher: Actor, body: dict[str, object], field: str
) -> None:
    r = researcher.client.post(API, json=body)
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"]
    assert sql("SELECT count(*) FROM projects") == [(0,)]


def test_malformed_json_body_is_400(researcher: Actor) -> None:
    r = researcher.client.post(
        API, content=b'{"name": "p", "kind":', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    assert "JSON" in r.json()["detail"]


def test_annotators_cannot_create_projects(make_user: Callable[..., Actor]) -> None:
    annotator = make_user("annotator")
    r = annotator.client.post(API, json={"name": "p", "kind": "pairwise"})
    assert r.status_code == 403
    assert "researcher" in r.json()["detail"]
    assert sql("SELECT count(*) FROM projects") == [(0,)]


def test_unauthenticated_requests_are_401(researcher: Actor) -> None:
    r = researcher.client.get(API, headers={"Authorization": ""})
    assert r.status_code == 401


def test_patch_changes_settings(researcher: Actor) -> None:
    pid = researcher.client.post(API, json={"name": "p", "kind": "pairwise"}).json()["id"]
    changes = {
        "name": "renamed",
        "guidelines": "new rules",
        "aspects": ["safety"],
        "allow_tie": False,
        "lease_seconds": 60,
        "overlap": 2,
    }
    r = researcher.client.patch(f"{API}/{pid}", json=changes)
    assert r.status_code == 200, r.text
    got = researcher.client.get(f"{API}/{pid}").json()
    for field, value in changes.items():
        assert got[field] == value, field
    # Fields left out of a PATCH keep their value.
    r = researcher.client.patch(f"{API}/{pid}", json={"guidelines": "v3"})
    assert r.status_code == 200
    assert r.json()["name"] == "renamed"
    assert r.json()["aspects"] == ["safety"]


def test_patch_span_labels_of_a_span_project(researcher: Actor) -> None:
    pid = researcher.client.post(
        API, json={"name": "s", "kind": "span", "span_labels": ["a"]}
    ).json()["id"]
    r = researcher.client.patch(f"{API}/{pid}", json={"span_labels": ["a", "b"]})
    assert r.status_code == 200
    assert r.json()["span_labels"] == ["a", "b"]
    r = researcher.client.patch(f"{API}/{pid}", json={"span_labels": []})
    assert r.status_code == 422
    assert "span_labels" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "ranking"}, "kind"),
        ({"overlap": 0}, "overlap"),
        ({"span_labels": ["x"]}, "span_labels"),
        ({"aspects": ["a", "a"]}, "aspects"),
        ({"name": ""}, "name"),
        ({"owner": 3}, "owner"),
    ],
)
def test_patch_rejects_bad_changes_and_changes_nothing(
    researcher: Actor, body: dict[str, object], field: str
) -> None:
    before = researcher.client.post(API, json={"name": "p", "kind": "pairwise"}).json()
    r = researcher.client.patch(f"{API}/{before['id']}", json=body)
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"]
    assert researcher.client.get(f"{API}/{before['id']}").json() == before


def test_aspects_on_a_non_pairwise_project_cannot_be_patched_in(researcher: Actor) -> None:
    pid = researcher.client.post(API, json={"name": "r", "kind": "ranking"}).json()["id"]
    r = researcher.client.patch(f"{API}/{pid}", json={"aspects": ["style"]})
    assert r.status_code == 422
    assert "aspects" in r.json()["detail"]


def test_annotator_member_cannot_patch(
    project_factory: Callable[..., dict[str, Any]], make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    p = project_factory(items=0, members=(annotator,))
    r = annotator.client.patch(f"{API}/{p['id']}", json={"overlap": 5})
    assert r.status_code == 403
    assert sql("SELECT overlap FROM projects WHERE id = %s", p["id"]) == [(1,)]


def test_changing_overlap_shifts_remaining_exactly(
    researcher: Actor,
    project_factory: Callable[..., dict[str, Any]],
    make_user: Callable[..., Actor],
) -> None:
    annotators = [make_user("annotator") for _ in range(3)]
    p = project_factory(items=4, members=tuple(annotators), overlap=3)
    pid = p["id"]
    # Two annotators take and submit a task, the third holds a live lease: the items now carry
    # annotations and leases, and the overlap shifts must keep them counted.
    for who in annotators[:2]:
        for _ in range(2):
            task = who.client.post(f"{API}/{pid}/tasks/next").json()
            r = who.client.post(
                f"/api/v1/assignments/{task['assignment_id']}/submit",
                json={"payload": {"choice": "a"}},
            )
            assert r.status_code == 201, r.text
    assert annotators[2].client.post(f"{API}/{pid}/tasks/next").status_code == 200
    assert remaining_mismatches(pid) == []
    before = remaining_by_item(pid)

    for overlap in (1, 5, 2, 3):
        r = researcher.client.patch(f"{API}/{pid}", json={"overlap": overlap})
        assert r.status_code == 200, r.text
        assert remaining_mismatches(pid) == []
    assert remaining_by_item(pid) == before

    # Lowered to 1, only items nobody has touched are served.
    researcher.client.patch(f"{API}/{pid}", json={"overlap": 1})
    assert min(remaining_by_item(pid).values()) < 0
    untouched = {i for i, n in remaining_by_item(pid).items() if n == 1}
    fresh = make_user("annotator")
    researcher.client.post(f"{API}/{pid}/members", json={"user_id": fresh.id})
    served = set()
    while (r := fresh.client.post(f"{API}/{pid}/tasks/next")).status_code == 200:
        task = r.json()
        served.add(task["item"]["id"])
        fresh.client.post(
            f"/api/v1/assignments/{task['assignment_id']}/submit",
            json={"payload": {"choice": "b"}},
        )
    assert r.status_code == 204
    assert served == untouched
    assert remaining_mismatches(pid) == []


def test_same_overlap_patch_leaves_remaining_alone(
    researcher: Actor, project_factory: Callable[..., dict[str, Any]]
) -> None:
    p = project_factory(items=3, overlap=2)
    r = researcher.client.patch(f"{API}/{p['id']}", json={"overlap": 2, "name": "same"})
    assert r.status_code == 200
    assert set(remaining_by_item(p["id"]).values()) == {2}


def test_list_is_keyset_paginated_and_shows_only_my_projects(
    researcher: Actor, make_user: Callable[..., Actor], admin: Actor
) -> None:
    mine = [
        researcher.client.post(API, json={"name": f"mine {i}", "kind": "critique"}).json()["id"]
        for i in range(5)
    ]
    other = make_user("researcher")
    theirs = [
        other.client.post(API, json={"name": f"theirs {i}", "kind": "critique"}).json()["id"]
        for i in range(2)
    ]
    # A member (not the creator) sees the project too.
    other.client.post(f"{API}/{theirs[0]}/members", json={"user_id": researcher.id})

    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = researcher.client.get(API, params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 2
        seen += [p["id"] for p in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted([*mine, theirs[0]])

    everything = admin.client.get(API, params={"limit": 500}).json()
    assert [p["id"] for p in everything["items"]] == sorted(mine + theirs)
    assert everything["next_cursor"] is None

    annotator = make_user("annotator")
    assert annotator.client.get(API).json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 501}, {"cursor": "abc"}])
def test_list_rejects_bad_paging_parameters(researcher: Actor, params: dict[str, Any]) -> None:
    r = researcher.client.get(API, params=params)
    assert r.status_code == 422
    assert next(iter(params)) in r.json()["detail"]


def test_members_add_list_remove(
    researcher: Actor,
    project_factory: Callable[..., dict[str, Any]],
    make_user: Callable[..., Actor],
) -> None:
    p = project_factory(items=2)
    pid = p["id"]
    annotator = make_user("annotator")
    assert annotator.client.get(f"{API}/{pid}").status_code == 404

    r = researcher.client.post(f"{API}/{pid}/members", json={"user_id": annotator.id})
    assert r.status_code == 201
    assert r.json() == {"project_id": pid, "user_id": annotator.id}
    # Adding again is harmless.
    assert (
        researcher.client.post(f"{API}/{pid}/members", json={"user_id": annotator.id}).status_code
        == 201
    )

    members = researcher.client.get(f"{API}/{pid}/members").json()
    assert [(m["user_id"], m["email"], m["role"]) for m in members] == [
        (researcher.id, researcher.email, "researcher"),
        (annotator.id, annotator.email, "annotator"),
    ]
    assert annotator.client.get(f"{API}/{pid}").status_code == 200
    assert annotator.client.post(f"{API}/{pid}/tasks/next").status_code == 200

    r = researcher.client.delete(f"{API}/{pid}/members/{annotator.id}")
    assert r.status_code == 204
    assert [m["user_id"] for m in researcher.client.get(f"{API}/{pid}/members").json()] == [
        researcher.id
    ]
    assert annotator.client.get(f"{API}/{pid}").status_code == 404
    assert annotator.client.post(f"{API}/{pid}/tasks/next").status_code == 404
    assert researcher.client.delete(f"{API}/{pid}/members/{annotator.id}").status_code == 404


def test_adding_an_unknown_user_is_404(
    researcher: Actor, project_factory: Callable[..., dict[str, Any]]
) -> None:
    p = project_factory(items=0)
    r = researcher.client.post(f"{API}/{p['id']}/members", json={"user_id": 987654})
    assert r.status_code == 404
    assert "987654" in r.json()["detail"]
    r = researcher.client.post(f"{API}/{p['id']}/members", json={"user_id": "me"})
    assert r.status_code == 422


def _project_routes(pid: int, uid: int) -> list[tuple[str, str, dict[str, Any]]]:
    item = make_items("pairwise", 1, prefix="intruder")
    return [
        ("GET", f"{API}/{pid}", {}),
        ("PATCH", f"{API}/{pid}", {"json": {"overlap": 7}}),
        ("GET", f"{API}/{pid}/members", {}),
        ("POST", f"{API}/{pid}/members", {"json": {"user_id": uid}}),
        ("DELETE", f"{API}/{pid}/members/{uid}", {}),
        ("GET", f"{API}/{pid}/items", {}),
        ("POST", f"{API}/{pid}/items", {"json": item}),
        ("POST", f"{API}/{pid}/tasks/next", {}),
    ]


def _snapshot(pid: int) -> tuple[Any, ...]:
    return (
        sql("SELECT overlap, name FROM projects WHERE id = %s", pid),
        sql("SELECT user_id FROM project_members WHERE project_id = %s ORDER BY 1", pid),
        sql("SELECT count(*) FROM items WHERE project_id = %s", pid),
        sql("SELECT count(*) FROM assignments WHERE project_id = %s", pid),
    )


def test_non_member_researcher_gets_404_on_every_project_route(
    researcher: Actor,
    project_factory: Callable[..., dict[str, Any]],
    make_user: Callable[..., Actor],
) -> None:
    p = project_factory(items=2)
    outsider = make_user("researcher")
    before = _snapshot(p["id"])
    for method, path, kw in _project_routes(p["id"], outsider.id):
        r = outsider.client.request(method, path, **kw)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert str(p["id"]) in r.json()["detail"]
    # The same answer as for a project that does not exist: ids leak nothing.
    for method, path, kw in _project_routes(999_999, outsider.id):
        r = outsider.client.request(method, path, **kw)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
    assert _snapshot(p["id"]) == before


def test_annotator_of_one_project_gets_nothing_of_another(
    researcher: Actor,
    project_factory: Callable[..., dict[str, Any]],
    make_user: Callable[..., Actor],
) -> None:
    annotator = make_user("annotator")
    a = project_factory(items=2, members=(annotator,))
    b = project_factory(items=2)
    before = _snapshot(b["id"])
    for method, path, kw in _project_routes(b["id"], annotator.id):
        r = annotator.client.request(method, path, **kw)
        assert r.status_code in (403, 404), (method, path, r.status_code, r.text)
    assert _snapshot(b["id"]) == before
    # Reading project B itself and asking for its tasks are 404, exactly as for a missing id.
    assert annotator.client.get(f"{API}/{b['id']}").status_code == 404
    assert annotator.client.post(f"{API}/{b['id']}/tasks/next").status_code == 404
    # Project A still works for them.
    assert annotator.client.get(f"{API}/{a['id']}").status_code == 200
    assert annotator.client.post(f"{API}/{a['id']}/tasks/next").status_code == 200


def test_admin_sees_and_manages_any_project(
    project_factory: Callable[..., dict[str, Any]], admin: Actor, make_user: Callable[..., Actor]
) -> None:
    p = project_factory(items=2)
    assert admin.client.get(f"{API}/{p['id']}").status_code == 200
    assert admin.client.patch(f"{API}/{p['id']}", json={"overlap": 2}).status_code == 200
    annotator = make_user("annotator")
    r = admin.client.post(f"{API}/{p['id']}/members", json={"user_id": annotator.id})
    assert r.status_code == 201
    assert len(admin.client.get(f"{API}/{p['id']}/items").json()["items"]) == 2


def test_audit_log_records_create_update_and_member_changes(
    researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    pid = researcher.client.post(API, json={"name": "audited", "kind": "pairwise"}).json()["id"]
    researcher.client.patch(f"{API}/{pid}", json={"overlap": 2, "guidelines": "g"})
    researcher.client.post(f"{API}/{pid}/members", json={"user_id": annotator.id})
    researcher.client.delete(f"{API}/{pid}/members/{annotator.id}")
    # Rejected requests leave no trace.
    researcher.client.patch(f"{API}/{pid}", json={"overlap": 0})
    researcher.client.post(f"{API}/{pid}/members", json={"user_id": 424242})

    rows = sql(
        "SELECT action, actor_id, target_type, target_id, details FROM audit_log"
        " WHERE action LIKE 'project.%%' ORDER BY id"
    )
    assert rows == [
        ("project.create", researcher.id, "project", str(pid), {"name": "audited"}),
        ("project.update", researcher.id, "project", str(pid), {"overlap": 2, "guidelines": "g"}),
        ("project.member_add", researcher.id, "project", str(pid), {"user_id": annotator.id}),
        ("project.member_remove", researcher.id, "project", str(pid), {"user_id": annotator.id}),
    ]
