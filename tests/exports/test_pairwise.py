"""Pairwise projects: preference (majority, ties, provenance, styles), unpaired and raw rows."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.exports.helpers import (
    add_ai_vote,
    annotate,
    export,
    export_bytes,
    items_of,
    pairwise_choice,
    pairwise_payload,
    snapshot,
)
from tests.helpers import Actor

# Votes by annotator (0, 1, 2) per item: the import position of the preferred response, or tie.
WANT: dict[str, tuple[int | str, int | str, int | str]] = {
    "x-0": (0, 0, 0),  # unanimous for response 0
    "x-1": (1, 1, 0),  # 2 of 3 for response 1
    "x-2": (0, 1, "tie"),  # a tie: as many votes each way
    "x-3": (0, 0, "tie"),  # humans 2 for response 0 + an AI vote for response 1
}
JUDGE = 7


@pytest.fixture
def pairwise(
    project_factory: Callable[..., dict[str, Any]], make_user: Callable[..., Actor]
) -> dict[str, Any]:
    annotators = [make_user("annotator") for _ in range(3)]
    project = project_factory("pairwise", items=4, members=tuple(annotators), overlap=3)
    pid = project["id"]
    for n, actor in enumerate(annotators):
        annotate(actor, pid, lambda t, n=n: pairwise_choice(t, WANT[t["item"]["external_id"]][n]))
    items = items_of(pid)
    iid, (r0, r1) = items["x-3"]
    add_ai_vote(pid, iid, JUDGE, pairwise_payload(r1, r0), [r1, r0])
    return {"id": pid, "annotators": annotators, "items": items}


def by_item(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {r["item_id"]: r for r in rows}


def test_preference_rows_are_majority_votes_with_provenance(
    researcher: Actor, pairwise: dict[str, Any]
) -> None:
    pid, items = pairwise["id"], pairwise["items"]
    rows = by_item(export(researcher, pid, schema="preference"))
    assert set(rows) == {items["x-0"][0], items["x-1"][0], items["x-3"][0]}  # x-2 is a tie

    unanimous = rows[items["x-0"][0]]
    assert unanimous["prompt"] == "prompt 0"
    assert unanimous["chosen"] == "response 0.0 🙂 日本"
    assert unanimous["rejected"] == "response 0.1 🙂 日本"
    assert (unanimous["votes_chosen"], unanimous["votes_rejected"], unanimous["votes_tie"]) == (
        3,
        0,
        0,
    )
    assert unanimous["agreement"] == 1.0
    assert unanimous["aggregation"] == "majority"
    assert unanimous["chosen_model"] == "m0"

    split = rows[items["x-1"][0]]
    assert split["chosen"] == "response 1.1 🙂 日本"
    assert split["agreement"] == pytest.approx(2 / 3)
    assert [v["choice"] for v in split["votes"]] == ["chosen", "chosen", "rejected"]
    annotator_ids = {a.id for a in pairwise["annotators"]}
    assert {v["annotator_id"] for v in split["votes"]} == annotator_ids
    assert all(v["source"] == "human" and v["judge"] is None for v in split["votes"])
    assert all(v["created_at"].endswith("Z") for v in split["votes"])

    mixed = rows[items["x-3"][0]]
    assert (mixed["votes_chosen"], mixed["votes_rejected"], mixed["votes_tie"]) == (2, 1, 1)
    assert mixed["agreement"] == 0.5
    ai = [v for v in mixed["votes"] if v["source"] == "ai"]
    assert ai == [
        {
            "annotation_id": ai[0]["annotation_id"],
            "source": "ai",
            "annotator_id": None,
            "judge": f"judge:{JUDGE}",
            # Inserted without a judge output (no run): no template to name.
            "judge_template_version": None,
            "choice": "rejected",
            "strength": None,
            "created_at": ai[0]["created_at"],
        }
    ]


def test_no_email_is_ever_exported(researcher: Actor, pairwise: dict[str, Any]) -> None:
    for schema in ("preference", "unpaired", "raw"):
        body = export_bytes(researcher, pairwise["id"], schema=schema).decode()
        assert "@" not in body, schema


def test_source_filter_changes_the_vote(researcher: Actor, pairwise: dict[str, Any]) -> None:
    pid, items = pairwise["id"], pairwise["items"]
    iid, (r0, r1) = items["x-3"]
    human = by_item(export(researcher, pid, source="human"))[iid]
    assert (human["n_votes"], human["chosen_id"], human["agreement"]) == (
        3,
        r0,
        pytest.approx(2 / 3),
    )
    ai = export(researcher, pid, source="ai")
    assert [(r["item_id"], r["chosen_id"], r["n_votes"]) for r in ai] == [(iid, r1, 1)]


def test_ties_are_left_out_and_counted_in_the_manifest(
    researcher: Actor, pairwise: dict[str, Any]
) -> None:
    done = snapshot(researcher, pairwise["id"], schema="preference")
    counts = done["manifest"]["counts"]
    assert counts["rows"] == 3
    assert counts["excluded"] == {"tie": 1}
    assert counts["items_with_votes"] == 4
    assert counts["votes"] == 10  # the tie item's 3 votes are not in any row
    assert counts["votes_by_source"] == {"ai": 1, "human": 9}
    assert counts["annotators"] == 3 and counts["judges"] == 1
    shown = counts["balance"]
    assert shown["votes_for_response_shown_first"] + shown["votes_for_response_shown_second"] == 9


def test_conversational_style_is_chat_messages(researcher: Actor, pairwise: dict[str, Any]) -> None:
    rows = export(researcher, pairwise["id"], style="conversational")
    first = rows[0]
    assert first["prompt"] == [{"role": "user", "content": "prompt 0"}]
    assert first["chosen"] == [{"role": "assistant", "content": "response 0.0 🙂 日本"}]
    assert first["rejected"] == [{"role": "assistant", "content": "response 0.1 🙂 日本"}]


def test_aggregate_none_gives_one_row_per_non_tie_vote(
    researcher: Actor, pairwise: dict[str, Any]
) -> None:
    rows = export(researcher, pairwise["id"], aggregate="none")
    assert len(rows) == 13 - 2  # 12 human votes + 1 AI vote, 2 of them ties
    assert all(r["n_votes"] == 1 and r["agreement"] == 1.0 for r in rows)
    assert all(r["aggregation"] == "none" and len(r["votes"]) == 1 for r in rows)
    assert len({r["votes"][0]["annotation_id"] for r in rows}) == 11


def test_unpaired_labels_winners_and_losers(researcher: Actor, pairwise: dict[str, Any]) -> None:
    pid, items = pairwise["id"], pairwise["items"]
    rows = export(researcher, pid, schema="unpaired")
    assert len(rows) == 6
    iid, (r0, r1) = items["x-1"]
    pair = [r for r in rows if r["item_id"] == iid]
    assert [(r["response_id"], r["label"], r["completion"]) for r in pair] == [
        (r1, True, "response 1.1 🙂 日本"),
        (r0, False, "response 1.0 🙂 日本"),
    ]
    assert [v["supports"] for v in pair[0]["votes"]] == [True, True, False]
    assert set(rows[0]) >= {"prompt", "completion", "label"}


def test_raw_rows_carry_every_field_and_the_shown_order(
    researcher: Actor, pairwise: dict[str, Any]
) -> None:
    pid, items = pairwise["id"], pairwise["items"]
    rows = export(researcher, pid, schema="raw")
    assert len(rows) == 13
    # Items in id order, and each item's annotations in id order.
    keys = [(r["item_id"], r["annotation_id"]) for r in rows]
    assert keys == sorted(keys)
    iid, rids = items["x-2"]
    tie = [r for r in rows if r["item_id"] == iid]
    assert len(tie) == 3
    for r in tie:
        assert sorted(r["shown_order"]) == sorted(rids)
        assert [x["id"] for x in r["responses"]] == rids
        assert r["time_spent_ms"] == 1234 and r["schema_version"] == 1
        assert r["assignment_id"] is not None and r["over_quota"] is False
        payload = json.loads(r["payload"])
        assert set(payload) == {"preferred", "rejected", "tie", "strength", "rationale", "aspects"}
    assert sorted(json.loads(r["payload"])["tie"] for r in tie) == [False, False, True]


def test_parquet_has_the_same_rows_as_jsonl(researcher: Actor, pairwise: dict[str, Any]) -> None:
    for schema in ("preference", "unpaired", "raw"):
        for style in ("standard", "conversational") if schema != "raw" else ("standard",):
            params: dict[str, Any] = {"schema": schema}
            if schema != "raw":
                params["style"] = style
            jsonl = export(researcher, pairwise["id"], **params)
            parquet = export(researcher, pairwise["id"], format="parquet", **params)
            assert parquet == jsonl, (schema, style)


def test_aspect_exports_the_per_aspect_preference(
    researcher: Actor,
    project_factory: Callable[..., dict[str, Any]],
    make_user: Callable[..., Actor],
) -> None:
    annotator = make_user("annotator")
    project = project_factory(
        "pairwise", items=2, members=(annotator,), aspects=["helpful", "harmless"]
    )

    def decide(task: dict[str, Any]) -> dict[str, Any]:
        first = pairwise_choice(task, 0)["choice"]
        second = "b" if first == "a" else "a"
        aspects = {"helpful": first} if task["item"]["external_id"] == "x-0" else {}
        return {"choice": second, "aspects": aspects}

    annotate(annotator, project["id"], decide)
    overall = export(researcher, project["id"])
    assert [r["chosen"].split(" ")[1][-1] for r in overall] == ["1", "1"]
    helpful = export(researcher, project["id"], aspect="helpful")
    assert [(r["external_id"], r["chosen"]) for r in helpful] == [("x-0", "response 0.0 🙂 日本")]
    assert export(researcher, project["id"], aspect="harmless") == []
