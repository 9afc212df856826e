"""The review queue lists divided items; a reviewer's label wins the export, with provenance."""

from __future__ import annotations

import itertools
import json

from app.auth.models import User
from app.db import session_scope
from tests.exports.helpers import export
from tests.factories import add_member, create_annotation, create_item, create_project, create_user
from tests.helpers import Actor
from tests.stats.helpers import insert_pairwise_votes, refresh


def _project(researcher: Actor, kind: str = "pairwise") -> int:
    project = create_project(kind)
    with session_scope() as s:
        add_member(project, s.get_one(User, researcher.id))
    return project.id


def test_divided_items_are_queued_and_the_reviewer_label_wins(researcher: Actor) -> None:
    from app.projects.models import Project

    pid = _project(researcher)
    with session_scope() as s:
        project = s.get_one(Project, pid)
        s.expunge(project)
    users = [create_user() for _ in range(3)]
    split = create_item(project)  # 2 votes for a, 1 for b: share 0.67 -> below 0.7
    clear = create_item(project)  # unanimous
    insert_pairwise_votes(
        pid,
        [(split, users[0].id, None, "a", None), (split, users[1].id, None, "a", None)]
        + [(split, users[2].id, None, "b", None)]
        + [(clear, u.id, None, "a", None) for u in users],
    )
    url = f"/api/v1/projects/{pid}/review"
    # The queue is read from the stats snapshot: none yet, nothing listed, a refresh asked for.
    first = researcher.client.get(url).json()
    assert first["items"] == [] and first["snapshot_at"] is None
    refresh(researcher, pid)
    queue = researcher.client.get(url, params={"below": 0.7}).json()
    assert [i["item_id"] for i in queue["items"]] == [split.id]
    [entry] = queue["items"]
    assert entry["votes"] == 3 and abs(entry["top_share"] - 2 / 3) < 1e-9
    assert entry["answers"] == {str(split.response_ids[0]): 2, str(split.response_ids[1]): 1}
    assert [r["id"] for r in entry["responses"]] == split.response_ids
    # The default threshold (0.6: no clear majority) leaves a 2-to-1 item out.
    assert researcher.client.get(url).json()["items"] == []

    # The reviewer overrules the majority.
    put = f"/api/v1/projects/{pid}/items/{split.id}/adjudication"
    r = researcher.client.put(put, json={"preferred": split.response_ids[1], "note": "b is right"})
    assert r.status_code == 200, r.text
    assert r.json()["payload"] == {"preferred": split.response_ids[1], "tie": False}
    again = researcher.client.put(put, json={"preferred": split.response_ids[1], "note": "b"})
    assert again.status_code == 200 and again.json()["note"] == "b"  # replaced, not doubled
    assert researcher.client.get(url, params={"below": 0.7}).json()["items"] == []

    rows = {r["item_id"]: r for r in export(researcher, pid, schema="preference")}
    decided = rows[split.id]
    assert decided["aggregation"] == "adjudicated"
    assert decided["chosen_id"] == split.response_ids[1]
    assert (decided["votes_chosen"], decided["votes_rejected"]) == (1, 2)
    provenance = json.loads(decided["adjudication"])
    assert provenance["decided_by"] == researcher.id and provenance["note"] == "b"
    assert provenance["decided_at"].endswith("Z")
    assert rows[clear.id]["aggregation"] == "majority" and rows[clear.id]["adjudication"] is None
    # aggregate=none shows the votes as they are.
    raw = export(researcher, pid, schema="preference", aggregate="none")
    assert {r["aggregation"] for r in raw} == {"none"}

    # Undo: the majority is back.
    assert researcher.client.delete(put).status_code == 204
    rows = {r["item_id"]: r for r in export(researcher, pid, schema="preference")}
    assert rows[split.id]["aggregation"] == "majority"


def test_ranking_adjudication_sets_the_order(researcher: Actor) -> None:
    from app.projects.models import Project

    pid = _project(researcher, "ranking")
    with session_scope() as s:
        project = s.get_one(Project, pid)
        s.expunge(project)
    item = create_item(project)
    ids = item.response_ids
    for user, order in ((create_user(), [0, 1, 2, 3]), (create_user(), [3, 2, 1, 0])):
        create_annotation(
            item, user=user, answer={"kind": "ranking", "order": [ids[i] for i in order]}
        )
    stats = refresh(researcher, pid)
    # Opposite orders: Kendall's tau -1 with each other.
    assert [a["peer_agreement"] for a in stats["annotators"]] == [-1.0, -1.0]
    queue = researcher.client.get(f"/api/v1/projects/{pid}/review").json()
    assert [i["item_id"] for i in queue["items"]] == [item.id]
    want = [ids[2], ids[0], ids[1], ids[3]]
    r = researcher.client.put(
        f"/api/v1/projects/{pid}/items/{item.id}/adjudication", json={"order": want}
    )
    assert r.status_code == 200, r.text
    rows = export(researcher, pid, schema="preference", pairs="adjacent")
    assert [(r["chosen_id"], r["rejected_id"]) for r in rows] == list(itertools.pairwise(want))
    assert {r["aggregation"] for r in rows} == {"adjudicated"}


def test_bad_adjudications_are_refused_and_change_nothing(researcher: Actor) -> None:
    from app.projects.models import Project

    pid = _project(researcher)
    with session_scope() as s:
        project = s.get_one(Project, pid)
        s.expunge(project)
    item = create_item(project)
    other = create_item(project)
    url = f"/api/v1/projects/{pid}/items/{item.id}/adjudication"
    for body in (
        {"preferred": other.response_ids[0]},  # a response of another item
        {},  # nothing decided
        {"preferred": item.response_ids[0], "tie": True},  # both
        {"order": item.response_ids},  # a ranking answer on a pairwise item
    ):
        r = researcher.client.put(url, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"] in ("invalid", "validation_error")
    r = researcher.client.put(url, json={"preferred": "1"})
    assert r.status_code == 422
    r = researcher.client.put(
        f"/api/v1/projects/{pid}/items/999999/adjudication", json={"tie": True}
    )
    assert r.status_code == 404
    from tests.helpers import sql_value

    assert sql_value("SELECT count(*) FROM adjudications") == 0


def _loaded(pid: int) -> object:
    from app.projects.models import Project

    with session_scope() as s:
        project = s.get_one(Project, pid)
        s.expunge(project)
    return project


TEXT = "The moon is made of cheese and it orbits Mars."


def test_span_items_are_queued_by_low_span_f1_and_the_reviewer_spans_win(
    researcher: Actor,
) -> None:
    pid = _project(researcher, "span")
    project = _loaded(pid)
    split = create_item(project, [TEXT], external_id="split")  # [12, 28) vs [36, 46)
    agreed = create_item(project, [TEXT], external_id="agreed")  # the same span twice
    users = [create_user(), create_user()]
    marks = [
        (split, ([(12, 28, "bad")], [(36, 46, "bad")])),
        (agreed, ([(12, 28, "bad")], [(12, 28, "bad")])),
    ]
    ids: dict[int, list[int]] = {}
    for item, (first, second) in marks:
        for user, spans in zip(users, (first, second), strict=True):
            answer = {
                "kind": "span",
                "spans": [{"start": a, "end": b, "label": c} for a, b, c in spans],
                "overall": 3,
            }
            made = create_annotation(item, user=user, answer=answer)
            ids.setdefault(item.id, []).append(made.id)
    stats = refresh(researcher, pid)
    # Each annotator agrees fully on one item (F1 1) and not at all on the other (F1 0).
    assert [a["peer_agreement"] for a in stats["annotators"]] == [0.5, 0.5]
    queue = researcher.client.get(f"/api/v1/projects/{pid}/review").json()
    assert queue["kind"] == "span" and queue["span_labels"] == ["bad", "good"]
    [entry] = queue["items"]
    assert entry["item_id"] == split.id and entry["top_share"] == 0.0 and entry["votes"] == 2
    assert entry["answers"] == {str(a): 1 for a in ids[split.id]}
    assert [a["annotation_id"] for a in entry["annotations"]] == ids[split.id]
    assert entry["annotations"][0]["spans"] == [{"start": 12, "end": 28, "label": "bad"}]

    url = f"/api/v1/projects/{pid}/items/{split.id}/adjudication"
    # Refused, changing nothing: a span past the response, an unknown label, a pairwise field,
    # an annotation of another item, nothing decided.
    for body in (
        {"spans": [{"start": 40, "end": 99, "label": "bad"}]},
        {"spans": [{"start": 0, "end": 3, "label": "ugly"}]},
        {"preferred": split.response_ids[0]},
        {"from_annotation": ids[agreed.id][0]},
        {},
        {"critique": "x"},
    ):
        r = researcher.client.put(url, json=body)
        assert r.status_code == 422, (body, r.text)
    # Pick the second annotator's spans as they are: the first becomes the final label.
    r = researcher.client.put(url, json={"from_annotation": ids[split.id][1], "note": "Mars"})
    assert r.status_code == 200, r.text
    assert r.json()["payload"] == {
        "spans": [{"start": 36, "end": 46, "label": "bad"}],
        "overall": 3,
        "from_annotation": ids[split.id][1],
        "edited": False,
    }
    assert researcher.client.get(f"/api/v1/projects/{pid}/review").json()["items"] == []
    # Then edit: both spans, and an overall rating of the reviewer's own.
    final = [
        {"start": 36, "end": 46, "label": "bad"},
        {"start": 12, "end": 28, "label": "bad", "comment": "false"},
    ]
    body = {"spans": final, "overall": 1, "from_annotation": ids[split.id][1]}
    r = researcher.client.put(url, json=body)
    assert r.status_code == 200 and r.json()["payload"]["edited"] is True

    rows = {r["external_id"]: r for r in export(researcher, pid, schema="spans")}
    decided = rows["split"]
    assert decided["aggregation"] == "adjudicated" and decided["overall"] == 1
    assert decided["spans"] == [
        {"start": 12, "end": 28, "label": "bad", "votes": 1, "agreement": 0.5},
        {"start": 36, "end": 46, "label": "bad", "votes": 1, "agreement": 0.5},
    ]
    assert decided["agreement"] == 0.0 and len(decided["votes"]) == 2
    provenance = json.loads(decided["adjudication"])
    assert provenance["decided_by"] == researcher.id and provenance["note"] == ""
    assert provenance["from_annotation"] == ids[split.id][1] and provenance["edited"] is True
    assert rows["agreed"]["aggregation"] == "overlap" and rows["agreed"]["adjudication"] is None
    # min_agreement filters computed labels, never a reviewer's.
    kept = export(researcher, pid, schema="spans", min_agreement=0.9)
    assert {r["external_id"]: r["aggregation"] for r in kept} == {
        "split": "adjudicated",
        "agreed": "overlap",
    }
    raw = export(researcher, pid, schema="spans", aggregate="none")
    assert {r["aggregation"] for r in raw} == {"none"} and len(raw) == 4


def test_critique_items_are_queued_and_the_reviewer_critique_wins(researcher: Actor) -> None:
    pid = _project(researcher, "critique")
    project = _loaded(pid)
    split = create_item(project, external_id="split")
    close = create_item(project, external_id="close")
    users = [create_user(), create_user()]
    ids = []
    for user, rating, text in ((users[0], 2, "Wrong facts."), (users[1], 7, "Perfect.")):
        answer = {"kind": "critique", "critique": text, "rewrite": f"{text} v2", "rating": rating}
        ids.append(create_annotation(split, user=user, answer=answer).id)
    for user in users:
        answer = {"kind": "critique", "critique": "Fine.", "rating": 5}
        create_annotation(close, user=user, answer=answer)
    refresh(researcher, pid)
    queue = researcher.client.get(f"/api/v1/projects/{pid}/review").json()
    # Ratings 2 and 7: agreement 1 - 5/6; the unanimous item is not listed.
    [entry] = queue["items"]
    assert entry["item_id"] == split.id and abs(entry["top_share"] - 1 / 6) < 1e-9
    assert entry["answers"] == {str(ids[0]): 2, str(ids[1]): 7}
    assert [a["critique"] for a in entry["annotations"]] == ["Wrong facts.", "Perfect."]

    url = f"/api/v1/projects/{pid}/items/{split.id}/adjudication"
    for body in ({"critique": "   "}, {"spans": []}, {"rating": 9, "critique": "x"}, {}):
        assert researcher.client.put(url, json=body).status_code == 422, body
    # Start from the first critique, with the reviewer's own rating.
    r = researcher.client.put(url, json={"from_annotation": ids[0], "rating": 3})
    assert r.status_code == 200, r.text
    assert r.json()["payload"] == {
        "critique": "Wrong facts.",
        "rewrite": "Wrong facts. v2",
        "rating": 3,
        "from_annotation": ids[0],
        "edited": True,
    }
    rows = export(researcher, pid, schema="critique")
    by_item: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        by_item.setdefault(str(row["external_id"]), []).append(row)
    [decided] = by_item["split"]
    assert (decided["critique"], decided["rating"], decided["aggregation"]) == (
        "Wrong facts.",
        3,
        "adjudicated",
    )
    assert decided["annotation_id"] == ids[0] and decided["annotator_id"] == users[0].id
    assert decided["n_votes"] == 2
    assert json.loads(str(decided["adjudication"]))["from_annotation"] == ids[0]
    assert [r["aggregation"] for r in by_item["close"]] == ["none", "none"]
    # Written anew: no annotation behind it.
    body = {"critique": "Both miss the units.", "rewrite": "42 km", "note": "n"}
    assert researcher.client.put(url, json=body).status_code == 200
    [decided] = [r for r in export(researcher, pid, schema="critique") if r["item_id"] == split.id]
    assert decided["critique"] == "Both miss the units." and decided["rating"] is None
    assert decided["annotation_id"] is None and decided["source"] is None
    provenance = json.loads(decided["adjudication"])
    assert provenance["from_annotation"] is None and provenance["edited"] is None
    # aggregate=none keeps every annotation.
    every = export(researcher, pid, schema="critique", aggregate="none")
    assert len(every) == 4 and {r["aggregation"] for r in every} == {"none"}


def test_ranking_schema_takes_the_adjudicated_order(researcher: Actor) -> None:
    pid = _project(researcher, "ranking")
    item = create_item(_loaded(pid))
    ids = item.response_ids
    for user, order in ((create_user(), [0, 1, 2, 3]), (create_user(), [3, 2, 1, 0])):
        create_annotation(
            item, user=user, answer={"kind": "ranking", "order": [ids[i] for i in order]}
        )
    want = [ids[2], ids[0], ids[1], ids[3]]
    url = f"/api/v1/projects/{pid}/items/{item.id}/adjudication"
    assert researcher.client.put(url, json={"order": want, "note": "n"}).status_code == 200
    [row] = export(researcher, pid, schema="ranking", min_agreement=0.9)
    assert row["aggregation"] == "adjudicated" and row["order"] == [2, 0, 1, 3]
    assert json.loads(row["adjudication"])["note"] == "n"
    [plain] = export(researcher, pid, schema="ranking", aggregate="none")[:1]
    assert plain["aggregation"] == "none" and plain["adjudication"] is None
