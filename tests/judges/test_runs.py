"""Judge runs end to end on the simulated backend: votes with provenance, once per item."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers import Actor, sql
from tests.judges.helpers import (
    ai_votes,
    make_project,
    outputs,
    response_ids,
    run_inline,
    simulated,
)


def test_pairwise_run_stores_ai_votes_with_both_orders_and_probability(
    admin: Actor, researcher: Actor
) -> None:
    pid = make_project(researcher, "pairwise", 6)
    judge = simulated(admin)
    run = run_inline(researcher, pid, judge["id"])
    assert run["status"] == "succeeded", run
    assert (run["total"], run["done"], run["unparsed"], run["failed"]) == (6, 6, 0, 0)
    assert run["progress"] == 1.0
    assert run["tokens_in"] > 0 and run["cost"] > 0
    ids = response_ids(pid)
    votes = ai_votes(pid)
    assert len(votes) == 6
    for n, (item_id, judge_id, payload, shown) in enumerate(votes):
        first, second = ids[item_id]
        want = first if n % 2 == 0 else second  # the truth: "a" for even items
        assert judge_id == judge["id"]
        assert payload["preferred"] == want and payload["tie"] is False
        assert shown == [first, second]
    for n, out in enumerate(outputs(pid)):
        assert out["status"] == "parsed" and out["consistent"] is True
        # Both orders are kept, the second one swapped.
        first, second = ids[out["item_id"]]
        assert [r["shown"] for r in out["raw"]] == [[first, second], [second, first]]
        assert out["raw"][0]["text"] in ("A", "B")
        # P(first imported response is better), from the label tokens' log-probabilities.
        assert out["probability"] > 0.85 if n % 2 == 0 else out["probability"] < 0.15


def test_rerunning_adds_nothing(admin: Actor, researcher: Actor) -> None:
    pid = make_project(researcher, "pairwise", 4)
    judge = simulated(admin)
    run_inline(researcher, pid, judge["id"])
    again = run_inline(researcher, pid, judge["id"], items="all")
    assert again["status"] == "succeeded"
    assert (again["total"], again["done"], again["skipped"]) == (0, 0, 4)
    assert len(ai_votes(pid)) == 4
    assert sql("SELECT count(*) FROM judge_outputs")[0][0] == 4


def test_a_new_template_version_judges_again(admin: Actor, researcher: Actor) -> None:
    pid = make_project(researcher, "pairwise", 2)
    judge = simulated(admin)
    run_inline(researcher, pid, judge["id"])
    tpl = admin.client.get("/api/v1/judge-templates", params={"kind": "pairwise"}).json()["items"]
    assert [t["version"] for t in tpl] == [1] and tpl[0]["used"] is True
    # v1 was used: the edit is a new version, and v1 stays as it was.
    r = admin.client.patch(
        f"/api/v1/judge-templates/{tpl[0]['id']}",
        json={"user": "Be strict. {guidelines}\n{prompt}\nA: {response_a}\nB: {response_b}"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["id"] != tpl[0]["id"]
    assert admin.client.get(f"/api/v1/judge-templates/{tpl[0]['id']}").json() == tpl[0]
    run = run_inline(researcher, pid, judge["id"], template_version=2)
    assert (run["done"], run["template_version"]) == (2, 2)
    assert len(ai_votes(pid)) == 4
    old = run_inline(researcher, pid, judge["id"], template_version=1)
    assert old["done"] == 0


@pytest.mark.parametrize("kind", ["ranking", "span", "critique"])
def test_every_kind_is_parsed_into_votes(admin: Actor, researcher: Actor, kind: str) -> None:
    pid = make_project(researcher, kind, 4)
    judge = simulated(admin)
    run = run_inline(researcher, pid, judge["id"])
    assert run["status"] == "succeeded" and run["done"] == 4 and run["unparsed"] == 0, run
    ids = response_ids(pid)
    for item_id, _, payload, _ in ai_votes(pid):
        if kind == "ranking":
            r = ids[item_id]
            assert payload == {"order": [r[2], r[0], r[1]]}
        elif kind == "span":
            assert payload["spans"] == [{"start": 24, "end": 31, "label": "bad"}]
            assert payload["response_id"] == ids[item_id][0]
        else:
            assert payload["critique"] and 1 <= payload["rating"] <= 7


def test_a_quote_with_an_unknown_label_is_unparsed_not_a_vote(
    admin: Actor, researcher: Actor
) -> None:
    # The truth says "wrong", which is not one of this project's labels.
    pid = make_project(researcher, "span", 0, span_labels=["bad"])
    rows = [
        {
            "external_id": "s",
            "prompt": "p",
            "responses": [{"text": "one two three"}],
            "metadata": {"truth": {"spans": [{"start": 4, "end": 7, "label": "wrong"}]}},
        }
    ]
    assert researcher.client.post(f"/api/v1/projects/{pid}/items", json=rows).status_code == 201
    judge = simulated(admin)
    run = run_inline(researcher, pid, judge["id"])
    assert (run["status"], run["done"], run["unparsed"]) == ("succeeded", 1, 1)
    assert ai_votes(pid) == []
    (out,) = outputs(pid)
    assert out["status"] == "unparsed" and "wrong" in out["error"]
    assert json.loads(out["raw"][0]["text"])["spans"][0]["quote"] == "two"


def test_inconsistent_swaps_follow_the_template_rule(admin: Actor, researcher: Actor) -> None:
    pid = make_project(researcher, "pairwise", 30)
    # An unsure judge that always picks the first shown: every swap disagrees.
    judge = simulated(admin, accuracy=0.0, position_bias=1.0)
    run = run_inline(researcher, pid, judge["id"])
    assert run["inconsistent"] == 30 and run["done"] == 30
    assert ai_votes(pid) == []  # low_confidence (the default): no vote, never a guess
    assert {o["consistent"] for o in outputs(pid)} == {False}
    tpl = admin.client.get("/api/v1/judge-templates", params={"kind": "pairwise"}).json()
    r = admin.client.patch(
        f"/api/v1/judge-templates/{tpl['items'][0]['id']}", json={"inconsistent": "tie"}
    )
    assert r.json()["version"] == 2
    run = run_inline(researcher, pid, judge["id"], template_version=2)
    assert run["inconsistent"] == 0 and run["done"] == 30
    assert {v[2]["tie"] for v in ai_votes(pid)} == {True}


def test_a_list_of_items_judges_only_those(admin: Actor, researcher: Actor) -> None:
    pid = make_project(researcher, "critique", 5)
    judge = simulated(admin)
    some = sorted(response_ids(pid))[:2]
    run = run_inline(researcher, pid, judge["id"], items=some)
    assert run["done"] == 2 and run["items"] == some
    assert [v[0] for v in ai_votes(pid)] == some


def test_bad_run_requests_are_refused_and_store_nothing(admin: Actor, researcher: Actor) -> None:
    pid = make_project(researcher, "pairwise", 2)
    other = make_project(researcher, "pairwise", 1)
    judge = simulated(admin)
    foreign = sorted(response_ids(other))
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"judge_id": judge["id"], "items": foreign}, 422, "invalid"),
        ({"judge_id": 999999}, 422, "invalid"),
        ({"judge_id": judge["id"], "template_version": 9}, 422, "invalid"),
        ({"judge_id": judge["id"], "items": "some"}, 422, "validation_error"),
    ]
    for body, code, error in cases:
        r = researcher.client.post(f"/api/v1/projects/{pid}/judge-runs", json=body)
        assert (r.status_code, r.json()["error"]) == (code, error), (body, r.text)
    admin.client.patch(f"/api/v1/judges/{judge['id']}", json={"enabled": False})
    r = researcher.client.post(f"/api/v1/projects/{pid}/judge-runs", json={"judge_id": judge["id"]})
    assert (r.status_code, r.json()["error"]) == (409, "judge_disabled")
    assert sql("SELECT count(*) FROM judge_runs")[0][0] == 0
    assert sql("SELECT count(*) FROM jobs WHERE kind = 'judges.run'")[0][0] == 0


def test_a_judge_whose_server_is_down_fails_the_run_with_the_reason(
    admin: Actor, researcher: Actor
) -> None:
    pid = make_project(researcher, "pairwise", 3)
    body = {
        "name": "down",
        "backend": "openai",
        "model": "m",
        "params": {"base_url": "http://127.0.0.1:9/v1", "max_retries": 1, "backoff_s": 0.01},
    }
    r = admin.client.post("/api/v1/judges", json=body)
    assert r.status_code == 201, r.text
    run = run_inline(researcher, pid, r.json()["id"])
    assert run["status"] == "failed"
    assert "openai" in run["error"] and run["failed"] == 3 and run["done"] == 0
    assert sql("SELECT count(*) FROM judge_outputs")[0][0] == 0
    assert ai_votes(pid) == []


def test_ai_votes_are_exported_with_the_judge(admin: Actor, researcher: Actor) -> None:
    pid = make_project(researcher, "pairwise", 2)
    judge = simulated(admin, name="sim-export")
    run_inline(researcher, pid, judge["id"])
    r = researcher.client.get(
        f"/api/v1/projects/{pid}/export",
        params={"schema": "raw", "source": "ai", "judge_ids": str(judge["id"])},
    )
    assert r.status_code == 200, r.text
    rows = [json.loads(line) for line in r.text.splitlines()]
    assert len(rows) == 2
    assert {(row["source"], row["judge_id"]) for row in rows} == {("ai", judge["id"])}
