import numpy as np
import pytest
from scipy.stats import spearmanr

from app.quality.labels import FIRST, SECOND, TIE, majority, pairwise_codes
from app.quality.trust import dawid_skene


def simulate(
    seed: int, n_items: int, accuracy: np.ndarray, per_item: int, n_labels: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each vote is right with its annotator's accuracy, else a uniformly wrong label."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_labels, n_items)
    items = np.repeat(np.arange(n_items), per_item)
    raters = np.concatenate(
        [rng.choice(len(accuracy), per_item, replace=False) for _ in range(n_items)]
    )
    right = rng.random(len(items)) < accuracy[raters]
    wrong = (truth[items] + rng.integers(1, n_labels, len(items))) % n_labels
    return items, raters, np.where(right, truth[items], wrong), truth


def majority_accuracy(items: np.ndarray, labels: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Majority vote with ties broken at random, in expectation: a k-way tie is right 1/k times."""
    counts = np.zeros((len(truth), k))
    np.add.at(counts, (items, labels), 1)
    top = counts == counts.max(axis=1, keepdims=True)
    return float((top[np.arange(len(truth)), truth] / top.sum(axis=1)).mean())


def test_dawid_skene_recovers_annotator_accuracy_and_beats_majority_vote() -> None:
    accuracy = np.random.default_rng(1).uniform(0.4, 0.95, 25)
    items, raters, labels, truth = simulate(2, 2000, accuracy, 5, 3)
    trust = dawid_skene(items + 1000, raters + 50, labels, 3)
    assert trust.raters.tolist() == list(range(50, 75))
    assert trust.items[0] == 1000
    assert spearmanr(trust.accuracy, accuracy).statistic >= 0.8
    assert np.abs(trust.accuracy - accuracy).max() < 0.1
    ds = float((trust.label == truth).mean())
    mv = majority_accuracy(items, labels, truth, 3)
    assert ds > mv
    assert trust.posterior.sum(axis=1) == pytest.approx(np.ones(2000))
    assert trust.confusion.sum(axis=2) == pytest.approx(np.ones((25, 3)), abs=1e-6)
    assert trust.votes.sum() == len(items)
    rows = trust.rater_rows()
    assert rows[0]["rater"] == 50 and len(rows[0]["confusion"]) == 3  # type: ignore[arg-type]


def test_pairwise_votes_with_ties_through_codes() -> None:
    # Overlap 3, as projects usually run. With 3,000 items Dawid-Skene beat majority vote on
    # each of the ten seeds tried (it can lose on small samples, when its nine parameters per
    # annotator are poorly estimated).
    accuracy = np.random.default_rng(100).uniform(0.45, 0.9, 15)
    items, raters, codes, truth = simulate(0, 3000, accuracy, 3, 3)
    # Back to stored form: responses 2i (first) and 2i+1 (second), preferred id or -1 (tie).
    first, second = items * 2, items * 2 + 1
    preferred = np.select([codes == FIRST, codes == SECOND], [first, second], -1)
    back = pairwise_codes(preferred, first, second)
    assert (back == codes).all()
    trust = dawid_skene(items, raters, back, 3)
    assert spearmanr(trust.accuracy, accuracy).statistic >= 0.8
    assert (trust.label == truth).mean() > majority_accuracy(items, back, truth, 3)
    assert set(np.unique(trust.label)) <= {FIRST, SECOND, TIE}


def test_gold_answers_anchor_the_estimates() -> None:
    # Two annotators who always disagree: without gold the model cannot tell who is right.
    items = np.repeat(np.arange(40), 2)
    raters = np.tile([1, 2], 40)
    labels = np.where(raters == 1, items % 2, 1 - items % 2)
    trust = dawid_skene(
        items, raters, labels, 2, gold_items=np.arange(10), gold_labels=np.arange(10) % 2
    )
    assert trust.accuracy[0] > 0.9 > 0.1 > trust.accuracy[1]
    assert (trust.label == np.arange(40) % 2).all()


def test_a_label_nobody_used_has_no_prior() -> None:
    trust = dawid_skene([1, 1, 2, 2], [1, 2, 1, 2], [0, 0, 2, 2], 4)
    assert trust.prior[1] == 0.0 and trust.prior[3] == 0.0
    assert trust.posterior.shape == (2, 4)


def test_no_votes_give_empty_estimates() -> None:
    trust = dawid_skene([], [], [], 2)
    assert len(trust.items) == 0 and len(trust.raters) == 0 and trust.iterations == 0


def test_majority_marks_shared_tops() -> None:
    result = majority([1, 1, 2, 2, 2, 3], [0, 1, 1, 1, 0, 2], 3)
    assert result.items.tolist() == [1, 2, 3]
    assert result.label.tolist() == [-1, 1, 2]
    assert result.share.tolist() == pytest.approx([0.5, 2 / 3, 1.0])


def test_pairwise_codes_refuse_a_stranger_response() -> None:
    with pytest.raises(ValueError, match="neither"):
        pairwise_codes([5], [1], [2])
