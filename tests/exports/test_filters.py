"""Export filters: source, agreement, votes, gold, annotators, judges, time, metadata; 422s."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.exports.helpers import (
    add_ai_vote,
    annotate,
    export,
    items_of,
    pairwise_choice,
    pairwise_payload,
    snapshot,
)
from tests.helpers import Actor, sql

ProjectFactory = Callable[..., dict[str, Any]]

ITEMS = [
    {"external_id": "en-1", "metadata": {"lang": "en", "n": 3}},
    {"external_id": "en-2", "metadata": {"lang": "en", "n": 4}},
    {"external_id": "de-1", "metadata": {"lang": "de", "n": 3}},
    {"external_id": "gold", "metadata": {"lang": "en"}, "gold_answer": {"choice": "a"}},
]
# Annotator n's vote per item (import position preferred): en-1 is unanimous, the others 2 to 1.
WANT = {"en-1": (0, 0, 0), "en-2": (0, 1, 1), "de-1": (1, 1, 0), "gold": (0, 0, 1)}


@pytest.fixture
def project(
    researcher: Actor, project_factory: ProjectFactory, make_user: Callable[..., Actor]
) -> dict[str, Any]:
    annotators = [make_user("annotator") for _ in range(3)]
    p = project_factory("pairwise", items=0, members=tuple(annotators), overlap=3)
    rows = [
        {
            **spec,
            "prompt": f"prompt {n}",
            "responses": [{"text": f"response {n}.{j} ok"} for j in range(2)],
        }
        for n, spec in enumerate(ITEMS)
    ]
    r = researcher.client.post(f"/api/v1/projects/{p['id']}/items", json=rows)
    assert r.status_code == 201, r.text
    for n, actor in enumerate(annotators):
        annotate(
            actor, p["id"], lambda t, n=n: pairwise_choice(t, WANT[t["item"]["external_id"]][n])
        )
    items = items_of(p["id"])
    for judge in (1, 2):
        iid, (r0, r1) = items["en-1"]
        add_ai_vote(p["id"], iid, judge, pairwise_payload(r1, r0), [r0, r1])
    return {"id": p["id"], "items": items, "annotators": annotators}


def ext_ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["external_id"] for r in rows]


def test_gold_items_are_left_out_unless_asked_for(
    researcher: Actor, project: dict[str, Any]
) -> None:
    pid = project["id"]
    assert ext_ids(export(researcher, pid)) == ["en-1", "en-2", "de-1"]
    assert ext_ids(export(researcher, pid, gold="only")) == ["gold"]
    rows = export(researcher, pid, gold="include")
    assert ext_ids(rows) == ["en-1", "en-2", "de-1", "gold"]
    assert [r["is_gold"] for r in rows] == [False, False, False, True]


def test_min_agreement_and_min_votes(researcher: Actor, project: dict[str, Any]) -> None:
    pid = project["id"]
    # en-1: 3 humans for response 0, 2 judges for response 1: 3/5 = 0.6.
    assert ext_ids(export(researcher, pid, min_agreement=0.6)) == ["en-1", "en-2", "de-1"]
    assert ext_ids(export(researcher, pid, min_agreement=0.61)) == ["en-2", "de-1"]
    assert ext_ids(export(researcher, pid, min_agreement=0.9, source="human")) == ["en-1"]
    assert ext_ids(export(researcher, pid, min_votes=4)) == ["en-1"]
    assert ext_ids(export(researcher, pid, min_votes=4, source="human")) == []


def test_source_annotators_and_judges(researcher: Actor, project: dict[str, Any]) -> None:
    pid = project["id"]
    a0, a1, _ = project["annotators"]
    rows = export(researcher, pid, annotator_ids=f"{a0.id},{a1.id}", source="human")
    # en-2 is a 1-1 tie between a0 and a1.
    assert [(r["external_id"], r["n_votes"]) for r in rows] == [("en-1", 2), ("de-1", 2)]
    assert all({v["annotator_id"] for v in r["votes"]} == {a0.id, a1.id} for r in rows)
    only_judge = export(researcher, pid, judge_ids=2)
    assert [(r["external_id"], [v["judge"] for v in r["votes"]]) for r in only_judge] == [
        ("en-1", ["judge:2"])
    ]
    # en-1 becomes a 1-1 tie between a0 and judge 1.
    both = export(researcher, pid, annotator_ids=[a0.id], judge_ids=[1])
    assert [(r["external_id"], r["n_votes"]) for r in both] == [("en-2", 1), ("de-1", 1)]
    ai = export(researcher, pid, source="ai")
    assert [(r["external_id"], r["n_votes"]) for r in ai] == [("en-1", 2)]


def test_created_after_before_and_max_annotation_id(
    researcher: Actor, project: dict[str, Any]
) -> None:
    pid = project["id"]
    iid = project["items"]["de-1"][0]
    sql("UPDATE annotations SET created_at = '2030-01-01T00:00:00Z' WHERE project_id = %s", pid)
    sql("UPDATE annotations SET created_at = '2020-06-01T12:00:00Z' WHERE item_id = %s", iid)
    assert ext_ids(export(researcher, pid, created_before="2025-01-01T00:00:00Z")) == ["de-1"]
    assert ext_ids(export(researcher, pid, created_after="2025-01-01T00:00:00+00:00")) == [
        "en-1",
        "en-2",
    ]
    # A time without a zone is UTC.
    assert ext_ids(export(researcher, pid, created_before="2020-06-01T12:00:01")) == ["de-1"]
    assert export(researcher, pid, created_before="2020-06-01T12:00:00")[:1] == []
    rows = export(researcher, pid, source="human")
    assert rows[0]["votes"][0]["created_at"] == "2030-01-01T00:00:00.000000Z"
    ids = sorted(r[0] for r in sql("SELECT id FROM annotations WHERE project_id = %s", pid))
    kept = export(researcher, pid, schema="raw", gold="include", max_annotation_id=ids[3])
    assert sorted(r["annotation_id"] for r in kept) == ids[:4]


def test_metadata_equality_filters(researcher: Actor, project: dict[str, Any]) -> None:
    pid = project["id"]
    assert ext_ids(export(researcher, pid, metadata="lang=en")) == ["en-1", "en-2"]
    assert ext_ids(export(researcher, pid, metadata=["lang=en", "n=3"])) == ["en-1"]
    assert ext_ids(export(researcher, pid, metadata="n=3")) == ["en-1", "de-1"]
    assert ext_ids(export(researcher, pid, metadata='n="3"')) == []  # the string "3"
    done = snapshot(
        researcher, pid, schema="raw", source="human", metadata={"lang": "de"}, min_votes=2
    )
    assert done["rows"] == 3 and done["manifest"]["options"]["metadata"] == {"lang": "de"}
    assert done["manifest"]["counts"]["votes_by_source"] == {"human": 3}


@pytest.mark.parametrize(
    "params",
    [
        {"schema": "pairs"},
        {"format": "csv"},
        {"source": "robots"},
        {"min_agreement": "1.5"},
        {"min_agreement": "high"},
        {"min_votes": "0"},
        {"gold": "maybe"},
        {"pairs": "some"},
        {"style": "chatty"},
        {"annotator_ids": "abc"},
        {"created_after": "yesterday"},
        {"created_after": "2025-01-02", "created_before": "2025-01-01"},
        {"metadata": "lang"},
        {"schema": "spans"},  # a pairwise project has no spans
        {"schema": "ranking"},
        {"schema": "critique", "pairs": "adjacent"},
        {"schema": "raw", "min_agreement": "0.5"},
        {"aspect": "style"},  # not one of the project's aspects
        {"source": "human", "judge_ids": "1"},
        {"min_agreemnt": "0.5"},  # a typo is not silently ignored
    ],
)
def test_invalid_filters_are_422(
    researcher: Actor, project_factory: ProjectFactory, params: dict[str, str]
) -> None:
    pid = project_factory("pairwise", items=1, aspects=["helpful"])["id"]
    r = researcher.client.get(f"/api/v1/projects/{pid}/export", params=params)
    assert r.status_code == 422, (params, r.status_code, r.text)
    assert r.json()["detail"]
    body: dict[str, Any] = {k: v for k, v in params.items() if k != "metadata"}
    before = sql("SELECT count(*) FROM jobs")[0][0]
    r = researcher.client.post(f"/api/v1/projects/{pid}/exports", json=body)
    if params == {"metadata": "lang"}:
        return  # the body takes an object; nothing to send that means the same
    assert r.status_code == 422, (body, r.status_code, r.text)
    assert sql("SELECT count(*) FROM jobs")[0][0] == before
    assert sql("SELECT count(*) FROM exports")[0][0] == 0
