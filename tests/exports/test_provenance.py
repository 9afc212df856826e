"""Judge provenance in exports: raw rows of AI votes carry their judge output, human rows null."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.exports.helpers import annotate, export
from tests.helpers import Actor, sql
from tests.judges.helpers import make_project, outputs, run_inline, simulated

PROVENANCE = (
    "judge_model",
    "judge_template_id",
    "judge_template_version",
    "judge_probability",
    "judge_consistent",
    "judge_tokens_in",
    "judge_tokens_out",
    "judge_latency_s",
    "judge_cost",
    "judge_raw",
)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_raw_export_carries_judge_provenance_of_ai_rows_only(
    admin: Actor, researcher: Actor, make_user: Callable[..., Actor], fmt: str
) -> None:
    pid = make_project(researcher, "pairwise", 3)
    human = make_user("annotator")
    r = researcher.client.post(f"/api/v1/projects/{pid}/members", json={"user_id": human.id})
    assert r.status_code in (200, 201), r.text
    assert len(annotate(human, pid, lambda t: {"choice": "a"})) == 3
    judge = simulated(admin, name="provenance-sim")
    run = run_inline(researcher, pid, judge["id"])
    assert run["status"] == "succeeded", run

    rows = export(researcher, pid, schema="raw", format=fmt)
    ai = [row for row in rows if row["source"] == "ai"]
    people = [row for row in rows if row["source"] == "human"]
    assert len(ai) == 3 and len(people) == 3
    for row in people:
        assert row["judge"] is None
        assert {c: row[c] for c in PROVENANCE} == dict.fromkeys(PROVENANCE)

    template = sql(
        "SELECT DISTINCT t.id, t.version FROM judge_outputs o"
        " JOIN judge_templates t ON t.id = o.template_id WHERE o.project_id = %s",
        pid,
    )
    assert len(template) == 1
    (template_id, version), by_item = template[0], {o["item_id"]: o for o in outputs(pid)}
    stored = {
        r[0]: r[1:]
        for r in sql(
            "SELECT annotation_id, model, tokens_in, tokens_out, latency_s, cost"
            " FROM judge_outputs WHERE project_id = %s",
            pid,
        )
    }
    for row in ai:
        out = by_item[row["item_id"]]
        assert row["judge"] == "judge:provenance-sim"
        assert (row["judge_template_id"], row["judge_template_version"]) == (template_id, version)
        assert (row["judge_model"], row["judge_tokens_in"], row["judge_tokens_out"]) == (
            stored[row["annotation_id"]][:3]
        )
        assert row["judge_tokens_in"] > 0 and row["judge_cost"] > 0
        assert (row["judge_latency_s"], row["judge_cost"]) == stored[row["annotation_id"]][3:]
        assert row["judge_probability"] == out["probability"]
        assert row["judge_consistent"] is True
        # Both orders' raw answers, as stored.
        raw = json.loads(row["judge_raw"])
        assert raw == out["raw"] and len(raw) == 2
        assert raw[0]["shown"] == list(reversed(raw[1]["shown"]))


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_aggregated_votes_name_the_judge_and_template_version(
    admin: Actor, researcher: Actor, make_user: Callable[..., Actor], fmt: str
) -> None:
    pid = make_project(researcher, "pairwise", 2)
    human = make_user("annotator")
    r = researcher.client.post(f"/api/v1/projects/{pid}/members", json={"user_id": human.id})
    assert r.status_code in (200, 201), r.text
    annotate(human, pid, lambda t: {"choice": "a"})
    judge = simulated(admin, name="provenance-pref")
    assert run_inline(researcher, pid, judge["id"])["status"] == "succeeded"
    [(version,)] = sql(
        "SELECT DISTINCT t.version FROM judge_outputs o"
        " JOIN judge_templates t ON t.id = o.template_id WHERE o.project_id = %s",
        pid,
    )

    rows = export(researcher, pid, schema="preference", aggregate="none", format=fmt)
    votes = [v for row in rows for v in row["votes"]]
    assert {v["source"] for v in votes} == {"human", "ai"}
    for v in votes:
        if v["source"] == "ai":
            assert (v["judge"], v["judge_template_version"]) == ("judge:provenance-pref", version)
        else:
            assert (v["judge"], v["judge_template_version"]) == (None, None)
