"""Aggregation rules on their own: majority, Borda, pairs, span merging, ratings."""

from __future__ import annotations

import pytest

from app.quality import aggregate as agg


@pytest.mark.parametrize(
    ("votes", "winner", "agreement"),
    [
        ([1, 1, 2], 1, 2 / 3),
        ([2, 2, None], 2, 2 / 3),
        ([1, 2], None, 0.5),  # as many votes each way
        ([1, None, None], None, 2 / 3),  # tie votes outnumber each response
        ([1, 1, None, None], 1, 0.5),  # equal to the ties is enough
        ([None], None, 1.0),
    ],
)
def test_majority(votes: list[int | None], winner: int | None, agreement: float) -> None:
    m = agg.majority(votes, 1, 2)
    assert m.winner == winner
    assert m.agreement == pytest.approx(agreement)
    assert m.n == len(votes)


def test_borda_consensus_and_pair_agreement() -> None:
    orders = [[10, 11, 12], [11, 10, 12], [10, 12, 11]]
    points = agg.borda(orders, [10, 11, 12])
    assert points == {10: 5, 11: 3, 12: 1}
    order = agg.consensus_order(points, [10, 11, 12])
    assert order == [10, 11, 12]
    ranks = [agg.ranks(o) for o in orders]
    # (10,11): 2/3, (10,12): 3/3, (11,12): 2/3
    assert agg.pair_agreement(order, ranks) == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)
    # Equal points keep the import order.
    assert agg.consensus_order({1: 1, 2: 1, 3: 1}, [3, 1, 2]) == [3, 1, 2]


def test_ranking_pairs() -> None:
    assert agg.ranking_pairs([5, 6, 7], "all") == [(0, 1), (0, 2), (1, 2)]
    assert agg.ranking_pairs([5, 6, 7], "adjacent") == [(0, 1), (1, 2)]
    assert agg.ranking_pairs([5, 6, 7], "best_vs_rest") == [(0, 1), (0, 2)]
    assert len(agg.ranking_pairs(list(range(16)), "all")) == 120


def span(start: int, end: int, label: str = "bad") -> dict[str, object]:
    return {"start": start, "end": end, "label": label}


def test_merge_spans_by_label_overlap() -> None:
    votes = [[span(0, 5), span(3, 8)], [span(4, 10)], [span(20, 22, "good")]]
    # Annotator 1's own overlapping spans count once: coverage 1 on [0,4), 2 on [4,8), 1 on [8,10).
    assert agg.merge_spans(votes, 0.5) == [
        {"start": 4, "end": 8, "label": "bad", "votes": 2, "agreement": 2 / 3}
    ]
    assert agg.merge_spans(votes, 0.01) == [
        {"start": 0, "end": 10, "label": "bad", "votes": 2, "agreement": 2 / 3},
        {"start": 20, "end": 22, "label": "good", "votes": 1, "agreement": 1 / 3},
    ]
    # Touching spans of two annotators make one run where each position has a vote.
    assert agg.merge_spans([[span(0, 3)], [span(3, 6)]], 0.5) == [
        {"start": 0, "end": 6, "label": "bad", "votes": 1, "agreement": 0.5}
    ]
    assert agg.merge_spans([[], []], 0.5) == []
    assert agg.merge_spans([], 0.5) == []


def test_span_agreement_is_mean_pairwise_f1() -> None:
    assert agg.span_agreement([[span(0, 4)]]) == 1.0
    assert agg.span_agreement([[], []]) == 1.0
    assert agg.span_agreement([[span(0, 4)], [span(0, 4)]]) == 1.0
    assert agg.span_agreement([[span(0, 4)], [span(2, 6)]]) == pytest.approx(0.5)
    assert agg.span_agreement([[span(0, 4)], [span(0, 4, "good")]]) == 0.0


def test_rating_side() -> None:
    side = agg.rating_side([6, 2, 6], 4.0)
    assert side.above is True and side.agreement == pytest.approx(2 / 3)
    assert agg.rating_side([4, 4], 4.0).above is None
    assert agg.rating_side([1, 3], 4.0).above is False
