import numpy as np
import pytest
from scipy.stats import kendalltau

from app.quality.rankings import (
    item_mean_tau,
    kendall_tau,
    paired_tau,
    ranking_agreement,
    ranking_versus,
)


def test_kendall_tau_is_scipys_and_none_when_undefined() -> None:
    # One swap among 4: 5 concordant, 1 discordant pair -> tau = 4/6.
    assert kendall_tau([0, 1, 2, 3], [1, 0, 2, 3]) == pytest.approx(4 / 6)
    assert kendall_tau([1, 1, 1], [1, 2, 3]) is None
    assert kendall_tau([1], [1]) is None


def test_paired_tau_equals_scipy_on_random_permutations() -> None:
    rng = np.random.default_rng(4)
    a = [list(rng.permutation(k) + 100) for k in (2, 3, 5, 8, 16) for _ in range(20)]
    b = [list(rng.permutation(order)) for order in a]
    ours = paired_tau(a, b)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        # Ranks of each response id in both orders.
        ids = sorted(x)
        rank_x = [x.index(r) for r in ids]
        rank_y = [y.index(r) for r in ids]
        assert ours[i] == pytest.approx(kendalltau(rank_x, rank_y).statistic)


def test_item_mean_tau_averages_the_rater_pairs_of_each_item() -> None:
    items = [1, 1, 1, 2, 2, 3]
    orders = [[10, 11, 12], [10, 11, 12], [12, 11, 10], [5, 6], [6, 5], [7, 8]]
    ids, tau = item_mean_tau(items, orders)
    # Item 1: pairs (1, 2) = 1, (1, 3) = -1, (2, 3) = -1 -> -1/3. Item 2: -1. Item 3: one ranking.
    assert ids.tolist() == [1, 2]
    assert tau == pytest.approx([-1 / 3, -1.0])


def test_ranking_agreement_is_one_when_everyone_agrees() -> None:
    items = np.repeat(np.arange(50), 3)
    orders = [[3, 1, 2, 4]] * 150
    est = ranking_agreement(items, orders)
    assert (est.value, est.low, est.high, est.n) == (1.0, 1.0, 1.0, 50)


def test_ranking_agreement_interval_covers_the_mean_of_noisy_rankers() -> None:
    rng = np.random.default_rng(8)
    items, orders = [], []
    for item in range(400):
        base = list(range(item * 10, item * 10 + 4))
        for _ in range(3):
            order = list(base)
            if rng.random() < 0.5:  # a swap of the first two: tau 2/3 with the base order
                order[0], order[1] = order[1], order[0]
            items.append(item)
            orders.append(order)
    est = ranking_agreement(items, orders)
    assert est.low is not None and est.high is not None
    assert est.low < est.value < est.high
    assert 0.7 < est.value < 0.9


def test_rankings_of_different_responses_are_refused() -> None:
    with pytest.raises(ValueError, match="same responses"):
        item_mean_tau([1, 1], [[1, 2, 3], [1, 2, 4]])
    with pytest.raises(ValueError, match="twice"):
        item_mean_tau([1], [[1, 1, 2]])


def test_judge_against_each_human_ranking() -> None:
    human_items = [1, 1, 2, 3]
    human_orders = [[1, 2, 3], [2, 1, 3], [5, 6], [7, 8]]
    judge_items = [1, 2, 4]
    judge_orders = [[1, 2, 3], [6, 5], [9, 10]]
    est = ranking_versus(judge_items, judge_orders, human_items, human_orders)
    # Item 1: tau 1 with the first human, 1/3 with the second -> 2/3; item 2: -1; item 4: no human.
    assert est.n == 2
    assert est.value == pytest.approx((2 / 3 - 1) / 2)
    with pytest.raises(ValueError, match="one judge order per item"):
        ranking_versus([1, 1], [[1, 2], [2, 1]], [1], [[1, 2]])
    assert ranking_versus([1], [[1, 2]], [], []).value is None
