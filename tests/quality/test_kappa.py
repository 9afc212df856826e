import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from app.quality.kappa import (
    cohen_kappa,
    fleiss_kappa,
    fleiss_kappa_table,
    rater_pair_kappas,
    versus_majority,
)
from app.quality.labels import FIRST, SECOND, TIE


def test_cohens_textbook_example() -> None:
    # 50 grant proposals, two readers: yes/yes 20, yes/no 5, no/yes 10, no/no 15.
    # p_o = 0.7, p_e = 0.5, kappa = 0.4.
    a = [0] * 25 + [1] * 25
    b = [0] * 20 + [1] * 5 + [0] * 10 + [1] * 15
    est = cohen_kappa(a, b, 2)
    assert est.value == pytest.approx(0.4)
    assert est.n == 50
    assert est.low is not None and est.high is not None
    assert est.low < 0.4 < est.high


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_cohen_kappa_equals_scikit_learn(weights: str | None) -> None:
    rng = np.random.default_rng(5)
    a = rng.integers(0, 5, 300)
    b = np.clip(a + rng.integers(-1, 2, 300), 0, 4)
    ours = cohen_kappa(a, b, 5, weights=weights, n_boot=0).value  # type: ignore[arg-type]
    assert ours == pytest.approx(cohen_kappa_score(a, b, weights=weights))


def test_kappa_is_undefined_when_both_raters_only_ever_say_one_thing() -> None:
    assert cohen_kappa([1, 1, 1], [1, 1, 1], 3).value is None


def test_every_rater_pair_gets_scikit_learns_kappa_on_its_shared_items() -> None:
    rng = np.random.default_rng(9)
    items, raters, labels = [], [], []
    for item in range(300):
        for rater in rng.choice(6, 3, replace=False):
            items.append(item)
            raters.append(rater)
            labels.append(int(rng.integers(0, 3)) if rater != 5 else item % 3)
    items_a, raters_a, labels_a = map(np.array, (items, raters, labels))
    pairs = rater_pair_kappas(items_a, raters_a, labels_a, 3, min_items=10, n_boot=200)
    assert len(pairs.n) == 15
    for i in range(len(pairs.n)):
        ra, rb = pairs.rater_a[i], pairs.rater_b[i]
        assert ra < rb
        on_a = dict(zip(items_a[raters_a == ra], labels_a[raters_a == ra], strict=True))
        on_b = dict(zip(items_a[raters_a == rb], labels_a[raters_a == rb], strict=True))
        shared = sorted(set(on_a) & set(on_b))
        assert pairs.n[i] == len(shared)
        expected = cohen_kappa_score([on_a[s] for s in shared], [on_b[s] for s in shared])
        assert pairs.kappa[i] == pytest.approx(expected)
        assert pairs.low[i] <= pairs.kappa[i] <= pairs.high[i]
    rows = pairs.as_rows()
    assert set(rows[0]) == {"rater_a", "rater_b", "n", "kappa", "low", "high"}


def test_pairs_below_the_minimum_of_shared_items_are_left_out() -> None:
    pairs = rater_pair_kappas([1, 1, 2, 2, 2], [1, 2, 1, 2, 3], [0, 0, 1, 1, 0], 2, min_items=2)
    assert list(zip(pairs.rater_a, pairs.rater_b, strict=True)) == [(1, 2)]
    assert pairs.kappa[0] == pytest.approx(1.0)


def test_a_repeated_vote_by_one_rater_on_one_item_is_refused() -> None:
    with pytest.raises(ValueError, match="more than one vote"):
        rater_pair_kappas([1, 1], [7, 7], [0, 1], 2)


def test_judge_against_the_human_majority() -> None:
    human_items = [1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 4, 5, 5, 5]
    human_labels = [FIRST, FIRST, SECOND, SECOND, SECOND, TIE, FIRST, SECOND, TIE, TIE, FIRST,
                    FIRST, FIRST, FIRST]  # fmt: skip
    # Majorities: 1 FIRST, 2 SECOND, 3 none (1-1), 4 TIE, 5 FIRST; item 6 has no human votes.
    judge_items = [1, 2, 3, 4, 5, 6]
    judge_labels = [FIRST, FIRST, FIRST, TIE, FIRST, SECOND]
    result = versus_majority(judge_items, judge_labels, human_items, human_labels, 3)
    assert result.items == 4
    assert result.no_majority == 1
    assert result.agreement.value == pytest.approx(3 / 4)
    expected = cohen_kappa_score([FIRST, FIRST, TIE, FIRST], [FIRST, SECOND, TIE, FIRST])
    assert result.kappa.value == pytest.approx(expected)


def test_a_judge_with_two_labels_on_one_item_is_refused() -> None:
    with pytest.raises(ValueError, match="one judge label per item"):
        versus_majority([1, 1], [0, 1], [1], [0], 2)


# Fleiss (1971)'s statistic on the worked example of Wikipedia's "Fleiss' kappa" article:
# 10 subjects, 14 raters each, 5 categories. P-bar = 0.378, P_e = 0.213, kappa = 0.210.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_worked_example() -> None:
    est = fleiss_kappa_table(FLEISS_TABLE)
    assert est.value == pytest.approx(0.20993, abs=1e-5)
    assert est.n == 10
    assert est.low is not None and est.high is not None
    assert est.low < est.value < est.high


def test_fleiss_from_votes_equals_the_table() -> None:
    items, labels = [], []
    for subject, row in enumerate(FLEISS_TABLE):
        for category, count in enumerate(row):
            items += [subject] * count
            labels += [category] * count
    assert fleiss_kappa(items, labels, 5, n_boot=0).value == pytest.approx(0.20993, abs=1e-5)


def test_fleiss_with_two_raters_per_item_is_scotts_pi() -> None:
    # With two raters Fleiss' kappa reduces to Scott's pi: (p_o - p_e) / (1 - p_e) with p_e
    # from the pooled marginals. Here p_o = 0.6 and the pooled shares are 0.5/0.5.
    table = [[2, 0]] * 3 + [[0, 2]] * 3 + [[1, 1]] * 4
    assert fleiss_kappa_table(table).value == pytest.approx((0.6 - 0.5) / 0.5)


def test_fleiss_leaves_out_single_ratings_and_refuses_bad_tables() -> None:
    assert fleiss_kappa_table([[1, 0], [0, 1]]).value is None
    with pytest.raises(ValueError, match="non-negative"):
        fleiss_kappa_table([[1, -1]])
