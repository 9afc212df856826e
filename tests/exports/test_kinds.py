"""Ranking (2, 3 and 16 responses), span (unicode offsets) and critique projects, every schema."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pytest

from tests.exports.helpers import annotate, export, items_of, snapshot
from tests.helpers import Actor

ProjectFactory = Callable[..., dict[str, Any]]


def ids_by_position(task: dict[str, Any]) -> list[int]:
    """The task's response ids in import order (their texts say "response {i}.{j} ...")."""
    responses = task["item"]["responses"]
    return [r["id"] for r in sorted(responses, key=lambda r: int(r["text"].split(".")[1][:2]))]


def ranking_items() -> list[dict[str, Any]]:
    sizes = {"r-0": 16, "r-1": 2, "r-2": 3}
    return [
        {
            "external_id": ext,
            "prompt": f"prompt {ext}",
            "responses": [{"text": f"response {n}.{j:02d} ✓", "model": f"m{j}"} for j in range(k)],
            "metadata": {"size": k},
        }
        for n, (ext, k) in enumerate(sizes.items())
    ]


# Per annotator, per item: the order as import positions, best first.
ORDERS = {
    "r-0": (list(range(16)), list(range(16)), list(range(15, -1, -1))),
    "r-1": ([0, 1], [1, 0], [0, 1]),
    "r-2": ([0, 1, 2], [1, 2, 0], [2, 0, 1]),  # a cycle: every Borda score is 3
}


@pytest.fixture
def ranking(
    researcher: Actor, project_factory: ProjectFactory, make_user: Callable[..., Actor]
) -> dict[str, Any]:
    annotators = [make_user("annotator") for _ in range(3)]
    project = project_factory("ranking", items=0, members=tuple(annotators), overlap=3)
    pid = project["id"]
    r = researcher.client.post(f"/api/v1/projects/{pid}/items", json=ranking_items())
    assert r.status_code == 201, r.text
    for n, actor in enumerate(annotators):

        def decide(task: dict[str, Any], n: int = n) -> dict[str, Any]:
            ids = ids_by_position(task)
            return {"order": [ids[p] for p in ORDERS[task["item"]["external_id"]][n]]}

        annotate(actor, pid, decide)
    return {"id": pid, "items": items_of(pid), "annotators": annotators}


@pytest.mark.parametrize(
    ("pairs", "expected"), [("all", 121), ("adjacent", 16), ("best_vs_rest", 16)]
)
def test_ranking_items_expand_to_preference_pairs(
    researcher: Actor, ranking: dict[str, Any], pairs: str, expected: int
) -> None:
    rows = export(researcher, ranking["id"], schema="preference", pairs=pairs)
    assert len(rows) == expected  # r-0: 120/15/15, r-1: 1, r-2: every pair is a Borda tie
    iid, rids = ranking["items"]["r-0"]
    big = [r for r in rows if r["item_id"] == iid]
    assert all(r["chosen_rank"] < r["rejected_rank"] for r in big)
    assert all(r["agreement"] == pytest.approx(2 / 3) for r in big)
    assert all((r["votes_chosen"], r["votes_rejected"]) == (2, 1) for r in big)
    first = big[0]
    assert (first["chosen_id"], first["rejected_id"]) == (rids[0], rids[1])
    assert (first["chosen"], first["rejected"]) == ("response 0.00 ✓", "response 0.01 ✓")
    assert first["kind"] == "ranking" and first["aggregation"] == "borda"
    if pairs == "best_vs_rest":
        assert {r["chosen_id"] for r in big} == {rids[0]}
    if pairs == "adjacent":
        assert [r["rejected_rank"] - r["chosen_rank"] for r in big] == [1] * 15


def test_borda_ties_are_left_out_and_counted(researcher: Actor, ranking: dict[str, Any]) -> None:
    done = snapshot(researcher, ranking["id"], schema="preference")
    assert done["rows"] == 121
    assert done["manifest"]["counts"]["excluded"] == {"tie": 3}


def test_ranking_rows_have_borda_order_and_every_annotators_order(
    researcher: Actor, ranking: dict[str, Any]
) -> None:
    rows = {r["external_id"]: r for r in export(researcher, ranking["id"], schema="ranking")}
    big = rows["r-0"]
    assert big["order"] == list(range(16))
    assert big["scores"] == [30 - j for j in range(16)]
    assert len(big["responses"]) == 16 and big["responses"][3] == "response 0.03 ✓"
    assert [v["order"] for v in big["votes"]] == [list(o) for o in ORDERS["r-0"]]
    assert {v["annotator_id"] for v in big["votes"]} == {a.id for a in ranking["annotators"]}
    assert big["agreement"] == pytest.approx(2 / 3)
    assert big["aggregation"] == "borda"
    two = rows["r-1"]
    assert (two["order"], two["scores"], two["n_votes"]) == ([0, 1], [2, 1], 3)
    cycle = rows["r-2"]
    assert cycle["scores"] == [3, 3, 3] and cycle["order"] == [0, 1, 2]
    assert Fraction(cycle["agreement"]).limit_denominator(100) == Fraction(5, 9)


def test_ranking_unpaired_labels_the_borda_best_and_last(
    researcher: Actor, ranking: dict[str, Any]
) -> None:
    rows = export(researcher, ranking["id"], schema="unpaired")
    got = [(r["external_id"], r["completion"], r["label"], r["agreement"]) for r in rows]
    assert got == [
        ("r-0", "response 0.00 ✓", True, pytest.approx(2 / 3)),
        ("r-0", "response 0.15 ✓", False, pytest.approx(2 / 3)),
        ("r-1", "response 1.00 ✓", True, pytest.approx(2 / 3)),
        ("r-1", "response 1.01 ✓", False, pytest.approx(2 / 3)),
    ]


def test_ranking_aggregate_none_expands_each_vote(
    researcher: Actor, ranking: dict[str, Any]
) -> None:
    rows = export(researcher, ranking["id"], schema="preference", aggregate="none")
    assert len(rows) == 3 * (120 + 1 + 3)
    assert all(r["n_votes"] == 1 and r["votes"][0]["choice"] == "chosen" for r in rows)


# --- spans ------------------------------------------------------------------------------------

SPAN_TEXT = "Hello 🙂 wörld 日本語 text"  # code points: 🙂 is [6, 7), 日本語 is [14, 17)
SPANS = (
    {
        "spans": [
            {"start": 6, "end": 7, "label": "bad", "comment": "emoji"},
            {"start": 14, "end": 17, "label": "good"},
        ],
        "overall": 6,
    },
    {"spans": [{"start": 6, "end": 13, "label": "bad"}], "overall": 2},
    {"spans": [], "overall": 5},
)


@pytest.fixture
def span(
    researcher: Actor, project_factory: ProjectFactory, make_user: Callable[..., Actor]
) -> dict[str, Any]:
    annotators = [make_user("annotator") for _ in range(3)]
    project = project_factory("span", items=0, members=tuple(annotators), overlap=3)
    pid = project["id"]
    item = {"external_id": "s-0", "prompt": "Say hello", "responses": [{"text": SPAN_TEXT}]}
    r = researcher.client.post(f"/api/v1/projects/{pid}/items", json=[item])
    assert r.status_code == 201, r.text
    for n, actor in enumerate(annotators):
        annotate(actor, pid, lambda t, n=n: SPANS[n])
    return {"id": pid, "annotators": annotators}


def test_spans_merge_by_label_overlap_in_code_points(
    researcher: Actor, span: dict[str, Any]
) -> None:
    [row] = export(researcher, span["id"], schema="spans")
    assert row["response"] == SPAN_TEXT and row["labels"] == ["bad", "good"]
    # Half of 3 annotators rounds up to 2: only the emoji was marked "bad" by two of them.
    assert row["spans"] == [{"start": 6, "end": 7, "label": "bad", "votes": 2, "agreement": 2 / 3}]
    assert SPAN_TEXT[6:7] == "🙂"
    assert row["n_votes"] == 3 and row["overall"] == pytest.approx(13 / 3)
    assert [v["spans"] for v in row["votes"]] == [
        [
            {"start": 6, "end": 7, "label": "bad", "comment": "emoji"},
            {"start": 14, "end": 17, "label": "good", "comment": None},
        ],
        [{"start": 6, "end": 13, "label": "bad", "comment": None}],
        [],
    ]
    # F1 per annotator pair: (1,2) 2*1/(4+7), (1,3) 0, (2,3) 0.
    assert row["agreement"] == pytest.approx((2 / 11) / 3)

    [loose] = export(researcher, span["id"], schema="spans", span_threshold=0.3)
    assert [(s["start"], s["end"], s["label"], s["votes"]) for s in loose["spans"]] == [
        (6, 13, "bad", 2),
        (14, 17, "good", 1),
    ]
    assert SPAN_TEXT[6:13] == "🙂 wörld" and SPAN_TEXT[14:17] == "日本語"


def test_span_rows_per_vote_and_unpaired_from_overall(
    researcher: Actor, span: dict[str, Any]
) -> None:
    rows = export(researcher, span["id"], schema="spans", aggregate="none")
    assert [len(r["spans"]) for r in rows] == [2, 1, 0]
    [row] = export(researcher, span["id"], schema="unpaired")
    assert (row["label"], row["rating"], row["completion"]) == (
        True,
        pytest.approx(13 / 3),
        SPAN_TEXT,
    )
    assert [v["supports"] for v in row["votes"]] == [True, False, True]


def test_spans_parquet_matches_jsonl(researcher: Actor, span: dict[str, Any]) -> None:
    assert export(researcher, span["id"], schema="spans", format="parquet") == export(
        researcher, span["id"], schema="spans"
    )


# --- critique ---------------------------------------------------------------------------------

CRITIQUES = {
    "x-0": (
        {"critique": "Clear.", "rewrite": "Better 🙂", "rating": 6},
        {"critique": "Wrong.", "rating": 2},
        {"critique": "Fine.", "rating": 6},
    ),
    "x-1": (
        {"critique": "Too long.", "rating": 2},
        {"critique": "Off topic.", "rating": 3},
        {"critique": "No rating here."},
    ),
}


@pytest.fixture
def critique(project_factory: ProjectFactory, make_user: Callable[..., Actor]) -> dict[str, Any]:
    annotators = [make_user("annotator") for _ in range(3)]
    project = project_factory("critique", items=2, members=tuple(annotators), overlap=3)
    for n, actor in enumerate(annotators):
        annotate(actor, project["id"], lambda t, n=n: CRITIQUES[t["item"]["external_id"]][n])
    return {"id": project["id"], "annotators": annotators}


def test_critique_rows_one_per_annotation(researcher: Actor, critique: dict[str, Any]) -> None:
    rows = export(researcher, critique["id"], schema="critique")
    assert len(rows) == 6
    first = rows[0]
    assert (first["prompt"], first["response"]) == ("prompt 0", "response 0.0 🙂 日本")
    assert (first["critique"], first["rewrite"], first["rating"]) == ("Clear.", "Better 🙂", 6)
    assert first["source"] == "human" and first["annotator_id"] == critique["annotators"][0].id
    assert [r["rating"] for r in rows] == [6, 2, 6, 2, 3, None]
    assert export(researcher, critique["id"], schema="critique", format="parquet") == rows


def test_critique_unpaired_thresholds_the_mean_rating(
    researcher: Actor, critique: dict[str, Any]
) -> None:
    done = snapshot(researcher, critique["id"], schema="unpaired")
    rows = export(researcher, critique["id"], schema="unpaired")
    assert [(r["external_id"], r["label"], r["n_votes"]) for r in rows] == [
        ("x-0", True, 3),
        ("x-1", False, 2),
    ]
    assert rows[0]["agreement"] == pytest.approx(2 / 3) and rows[1]["agreement"] == 1.0
    assert rows[0]["rating"] == pytest.approx(14 / 3)
    counts = done["manifest"]["counts"]
    assert counts["excluded"] == {"no_rating": 1}
    assert counts["balance"] == {"label_false": 1, "label_true": 1}
    # With a threshold of 5 the first item's mean (4.67) falls below it.
    high = export(researcher, critique["id"], schema="unpaired", rating_threshold=5)
    assert [r["label"] for r in high] == [False, False]
    per_vote = export(researcher, critique["id"], schema="unpaired", aggregate="none")
    assert [r["label"] for r in per_vote] == [True, False, True, False, False]
