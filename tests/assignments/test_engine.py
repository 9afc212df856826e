"""The assignment engine through the API: leases, resume, expiry, skip, idempotent submit, gold."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.helpers import Actor, sql


def _next(actor: Actor, pid: object) -> dict[str, Any] | None:
    r = actor.client.post(f"/api/v1/projects/{pid}/tasks/next")
    if r.status_code == 204:
        return None
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _expire(assignment_id: int) -> None:
    sql(
        "UPDATE assignments SET expires_at = now() - interval '1 second' WHERE id = %s",
        assignment_id,
    )


def test_next_returns_a_shuffled_item_without_model_names(
    make_user: Callable[..., Actor], project_factory: Callable[..., dict[str, Any]]
) -> None:
    ann = make_user()
    p = project_factory("ranking", items=1, members=(ann,))
    task = _next(ann, p["id"])
    assert task is not None
    assert task["kind"] == "ranking" and task["project_id"] == p["id"]
    shown = [r["id"] for r in task["item"]["responses"]]
    assert all(set(r) == {"id", "text"} for r in task["item"]["responses"])
    [(stored,)] = sql("SELECT shown_order FROM assignments WHERE id = %s", task["assignment_id"])
    assert stored == shown


def test_asking_again_resumes_the_same_lease(
    make_user: Callable[..., Actor], project_factory: Callable[..., dict[str, Any]]
) -> None:
    ann = make_user()
    p = project_factory(items=3, members=(ann,))
    first, second = _next(ann, p["id"]), _next(ann, p["id"])
    assert first is not None and second is not None
    assert first["assignment_id"] == second["assignment_id"]
    assert first["item"]["responses"] == second["item"]["responses"]


def test_pairwise_choice_is_stored_as_the_response_shown_in_that_position(
    make_user: Callable[..., Actor], project_factory: Callable[..., dict[str, Any]]
) -> None:
    ann = make_user()
    p = project_factory(items=1, members=(ann,), aspects=["honesty"])
    task = _next(ann, p["id"])
    assert task is not None
    a_id, b_id = (r["id"] for r in task["item"]["responses"])
    r = ann.client.post(
        f"/api/v1/assignments/{task['assignment_id']}/submit",
        json={
            "payload": {"choice": "b", "strength": 2, "aspects": {"honesty": "a"}},
            "time_spent_ms": 1234,
        },
    )
    assert r.status_code == 201, r.text
    [(payload, shown, ms)] = sql(
        "SELECT payload, shown_order, time_spent_ms FROM annotations WHERE id = %s",
        r.json()["annotation_id"],
    )
    assert payload["preferred"] == b_id and payload["rejected"] == a_id
    assert payload["aspects"] == {"honesty": a_id}
    assert shown == [a_id, b_id] and ms == 1234


def test_items_with_fewer_annotations_and_higher_priority_come_first(
    make_user: Callable[..., Actor], researcher: Actor
) -> None:
    a1, a2 = make_user(), make_user()
    pid = researcher.client.post(
        "/api/v1/projects", json={"name": "p", "kind": "critique", "overlap": 2}
    ).json()["id"]
    rows = [
        {"external_id": "low", "prompt": "p", "responses": [{"text": "t"}]},
        {"external_id": "high", "prompt": "p", "responses": [{"text": "t"}], "priority": 5},
        {"external_id": "mid", "prompt": "p", "responses": [{"text": "t"}]},
    ]
    assert researcher.client.post(f"/api/v1/projects/{pid}/items", json=rows).status_code == 201
    for m in (a1, a2):
        researcher.client.post(f"/api/v1/projects/{pid}/members", json={"user_id": m.id})
    seen = []
    for actor in (a1, a2, a1):
        task = _next(actor, pid)
        assert task is not None
        seen.append(task["item"]["external_id"])
        actor.client.post(
            f"/api/v1/assignments/{task['assignment_id']}/submit",
            json={"payload": {"critique": "ok"}},
        )
    # priority first; then the item nobody has started over the half-done one
    assert seen == ["high", "high", "low"]


def test_expired_lease_is_served_again_to_someone_else(
    make_user: Callable[..., Actor], project_factory: Callable[..., dict[str, Any]]
) -> None:
    a1, a2 = make_user(), make_user()
    p = project_factory(items=1, members=(a1, a2))
    t1 = _next(a1, p["id"])
    assert t1 is not None
    assert _next(a2, p["id"]) is None  # the only slot is leased
    _expire(t1["assignment_id"])
    t2 = _next(a2, p["id"])
    assert t2 is not None and t2["item"]["id"] == t1["item"]["id"]


def test_own_expired_lease_comes_back_with_its_draft_and_order(
    make_user: Callable[..., Actor], project_factory: Callable[..., dict[str, Any]]
) -> None:
    ann = make_user()
    p = project_factory(items=2, members=(ann,))
    t1 = _next(ann, p["id"])
    assert t1 is not None
    r = ann.client.put(
        f"/api/v1/assignments/{t1['assignment_id']}/draft",
        json={"draft": {"choice": "a", "rationale": "half-writ"}},
    )
    assert r.status_code == 200, r.text
    _expire(t1["assignment_id"])
    again = _next(ann, p["id"])
    assert again is not None
    assert again["assignment_id"] == t1["assignment_id"]
    assert again["item"]["responses"] == t1["item"]["responses"]
    assert again["draft"] == {"choice": "a", "rationale": "half-writ"}


def test_late_submit_with_free_slot_counts(
    make_user: Callable[..., Actor], project_factory: Callable[..., dict[str, Any]]
) -> None:
    a1, a2 = make_user(), make_user()
    p = project_factory(items=1, members=(a1, a2))
    t1 = _next(a1, p["id"])
    assert t1 is not None
    _expire(t1["assignment_id"])
    # a2's request reclaims a1's expired lease and takes the only slot...
    t2 = _next(a2, p["id"])
    assert t2 is not None and t2["item"]["id"] == t1["item"]["id"]
    assert sql("SELECT status FROM assignments WHERE id = %s", t1["assignment_id"]) == [
        ("expired",)
    ]
    # ...then gives it back, so a1's late answer finds the slot free and is counted.
    skipped = a2.client.post(
        f"/api/v1/assignments/{t2['assignment_id']}/skip", json={"reason": "unsure"}
    )
    assert skipped.status_code == 200, skipped.text
    r = a1.client.post(
        f"/api/v1/assignments/{t1['assignment_id']}/submit", json={"payload": {"choice": "a"}}
    )
    assert r.status_code == 201 and r.json()["over_quota"] is False
    [(remaining,)] = sql("SELECT remaining FROM items")
    assert remaining == 0


def test_late_submit_whose_slot_was_retaken_is_kept_and_flagged(
    make_user: Callable[..., Actor], project_factory: Callable[..., dict[str, Any]]
) -> None:
    a1, a2 = make_user(), make_user()
    p = project_factory(items=1, members=(a1, a2))
    t1 = _next(a1, p["id"])
    assert t1 is not None
    _expire(t1["assignment_id"])
    t2 = _next(a2, p["id"])
    assert t2 is not None
    late = a1.client.post(
        f"/api/v1/assignments/{t1['assignment_id']}/submit", json={"payload": {"choice": "a"}}
    )
    assert late.status_code == 201 and late.json()["over_quota"] is True
    on_time = a2.client.post(
        f"/api/v1/assignments/{t2['assignment_id']}/submit", json={"payload": {"choice": "b"}}
    )
    assert on_time.status_code == 201 and on_time.json()["over_quota"] is False
    rows = sql("SELECT user_id, over_quota FROM annotations ORDER BY id")
    assert [tuple(r) for r in rows] == [(a1.id, True), (a2.id, False)]


def test_expired_lease_not_retaken_is_still_accepted(
    make_user: Callable[..., Actor], project_factory: Callable[..., dict[str, Any]]
) -> None:
    ann = make_user()
    p = project_factory(items=1, members=(ann,))
    t = _next(ann, p["id"])
    assert t is not None
    _expire(t["assignment_id"])
    r = ann.client.post(
        f"/api/v1/assignments/{t['assignment_id']}/submit", json={"payload": {"choice": "tie"}}
    )
    assert r.status_code == 201 and r.json()["over_quota"] is False


def test_double_submit_returns_the_first_annotation(
    make_user: Callable[..., Actor], project_factory: Callable[..., dict[str, Any]]
) -> None:
    ann = make_user()
    p = project_factory(items=1, members=(ann,))
    t = _next(ann, p["id"])
    assert t is not None
    url = f"/api/v1/assignments/{t['assignment_id']}/submit"
    first = ann.client.post(url, json={"payload": {"choice": "a"}, "client_submission_id": "c-1"})
    second = ann.client.post(url, json={"payload": {"choice": "b"}, "client_submission_id": "c-1"})
    third = ann.client.post(url, json={"payload": {"choice": "b"}})
    assert first.status_code == 201 and second.status_code == 200 and third.status_code == 200
    assert (
        first.json()["annotation_id"]
        == second.json()["annotation_id"]
        == third.json()["annotation_id"]
    )
    assert sql("SELECT count(*) FROM annotations")[0][0] == 1


def test_reused_client_submission_id_on_another_assignment_is_409(
    make_user: Callable[..., Actor], project_factory: Callable[..., dict[str, Any]]
) -> None:
    ann = make_user()
    p = project_factory(items=2, members=(ann,))
    for n in range(2):
        t = _next(ann, p["id"])
        assert t is not None
        r = ann.client.post(
            f"/api/v1/assignments/{t['assignment_id']}/submit",
            json={"payload": {"choice": "a"}, "client_submission_id": "same"},
        )
        assert r.status_code == (201 if n == 0 else 409)
        if n == 1:
            assert "client_submission_id" in r.json()["detail"]


def test_skipped_item_is_never_served_to_that_annotator_again(
    make_user: Callable[..., Actor], project_factory: Callable[..., dict[str, Any]]
) -> None:
    a1, a2 = make_user(), make_user()
    p = project_factory(items=1, members=(a1, a2))
    t = _next(a1, p["id"])
    assert t is not None
    r = a1.client.post(f"/api/v1/assignments/{t['assignment_id']}/skip")
    assert r.status_code == 200 and r.json()["status"] == "skipped"
    assert _next(a1, p["id"]) is None
    assert _next(a2, p["id"]) is not None  # the slot went back to the pool
    submit = a1.client.post(
        f"/api/v1/assignments/{t['assignment_id']}/submit", json={"payload": {"choice": "a"}}
    )
    assert submit.status_code == 409


def test_submitting_someone_elses_assignment_is_403(
    make_user: Callable[..., Actor], project_factory: Callable[..., dict[str, Any]]
) -> None:
    a1, a2 = make_user(), make_user()
    p = project_factory(items=1, members=(a1, a2))
    t = _next(a1, p["id"])
    assert t is not None
    r = a2.client.post(
        f"/api/v1/assignments/{t['assignment_id']}/submit", json={"payload": {"choice": "a"}}
    )
    assert r.status_code == 403
    assert a2.client.post(f"/api/v1/assignments/{t['assignment_id']}/skip").status_code == 403
    assert (
        a2.client.put(
            f"/api/v1/assignments/{t['assignment_id']}/draft", json={"draft": {}}
        ).status_code
        == 403
    )
    assert sql("SELECT count(*) FROM annotations")[0][0] == 0


def test_everything_is_done_gives_204_and_overlap_is_reached(
    make_user: Callable[..., Actor], project_factory: Callable[..., dict[str, Any]]
) -> None:
    annotators = [make_user() for _ in range(3)]
    p = project_factory(items=4, members=tuple(annotators), overlap=2)
    for ann in annotators:
        while (t := _next(ann, p["id"])) is not None:
            r = ann.client.post(
                f"/api/v1/assignments/{t['assignment_id']}/submit",
                json={"payload": {"choice": "a"}},
            )
            assert r.status_code == 201
    counts = sql("SELECT item_id, count(*) FROM annotations GROUP BY item_id")
    assert len(counts) == 4 and all(c == 2 for _, c in counts)
    assert sql("SELECT count(*) FROM items WHERE remaining <> 0")[0][0] == 0


def test_gold_items_are_served_and_scored(
    make_user: Callable[..., Actor], researcher: Actor
) -> None:
    ann = make_user()
    pid = researcher.client.post("/api/v1/projects", json={"name": "g", "kind": "pairwise"}).json()[
        "id"
    ]
    rows = [
        {
            "prompt": "2+2?",
            "responses": [{"text": "4"}, {"text": "5"}],
            "gold_answer": {"choice": "a"},
        }
    ]
    assert researcher.client.post(f"/api/v1/projects/{pid}/items", json=rows).status_code == 201
    researcher.client.post(f"/api/v1/projects/{pid}/members", json={"user_id": ann.id})
    t = _next(ann, pid)
    assert t is not None
    correct = next(i for i, r in enumerate(t["item"]["responses"]) if r["text"] == "4")
    choice = "ab"[correct]
    ann.client.post(
        f"/api/v1/assignments/{t['assignment_id']}/submit", json={"payload": {"choice": choice}}
    )
    assert sql("SELECT gold_score FROM annotations")[0][0] == 1.0


def test_span_offsets_are_code_points(make_user: Callable[..., Actor], researcher: Actor) -> None:
    ann = make_user()
    pid = researcher.client.post(
        "/api/v1/projects", json={"name": "s", "kind": "span", "span_labels": ["wrong"]}
    ).json()["id"]
    text_ = "ok 🙂 日本語 done"
    rows = [{"prompt": "p", "responses": [{"text": text_}]}]
    researcher.client.post(f"/api/v1/projects/{pid}/items", json=rows)
    researcher.client.post(f"/api/v1/projects/{pid}/members", json={"user_id": ann.id})
    t = _next(ann, pid)
    assert t is not None
    start = text_.index("日")
    ok = ann.client.post(
        f"/api/v1/assignments/{t['assignment_id']}/submit",
        json={
            "payload": {
                "spans": [{"start": start, "end": start + 3, "label": "wrong"}],
                "overall": 4,
            }
        },
    )
    assert ok.status_code == 201, ok.text
    [(payload,)] = sql("SELECT payload FROM annotations")
    span = payload["spans"][0]
    assert text_[span["start"] : span["end"]] == "日本語"


def test_span_end_may_reach_the_last_code_point_but_not_beyond(
    make_user: Callable[..., Actor], researcher: Actor
) -> None:
    ann = make_user()
    pid = researcher.client.post(
        "/api/v1/projects", json={"name": "s", "kind": "span", "span_labels": ["wrong"]}
    ).json()["id"]
    text_ = "🙂🙂"  # 2 code points, 4 UTF-16 units, 8 UTF-8 bytes
    researcher.client.post(
        f"/api/v1/projects/{pid}/items", json=[{"prompt": "p", "responses": [{"text": text_}]}]
    )
    researcher.client.post(f"/api/v1/projects/{pid}/members", json={"user_id": ann.id})
    t = _next(ann, pid)
    assert t is not None
    url = f"/api/v1/assignments/{t['assignment_id']}/submit"
    bad = ann.client.post(
        url, json={"payload": {"spans": [{"start": 0, "end": 3, "label": "wrong"}]}}
    )
    assert bad.status_code == 422 and "end <= 2" in bad.json()["detail"]
    ok = ann.client.post(
        url, json={"payload": {"spans": [{"start": 1, "end": 2, "label": "wrong"}]}}
    )
    assert ok.status_code == 201
