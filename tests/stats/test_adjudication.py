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
    refresh(researcher, pid)
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
    spans = _project(researcher, "span")
    r = researcher.client.get(f"/api/v1/projects/{spans}/review")
    assert r.status_code == 422 and "pairwise and ranking" in r.json()["detail"]
    from tests.helpers import sql_value

    assert sql_value("SELECT count(*) FROM adjudications") == 0
