import numpy as np
import pytest
from scipy.stats import binomtest

from app.errors import Invalid
from app.quality.gold import GoldPolicy, gold_accuracy, gold_check, wilson_interval


def test_accuracy_per_annotator_with_partial_credit() -> None:
    acc = gold_accuracy([7, 7, 7, 3, 3], [1.0, 0.0, 0.5, 1.0, 1.0])
    assert acc.raters.tolist() == [3, 7]
    assert acc.answered.tolist() == [2, 3]
    assert acc.accuracy.tolist() == pytest.approx([1.0, 0.5])


@pytest.mark.parametrize(("k", "n"), [(0, 5), (3, 10), (17, 20), (20, 20), (120, 200)])
def test_wilson_interval_equals_scipy(k: int, n: int) -> None:
    low, high = wilson_interval(np.array([k]), np.array([n]))
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert (low[0], high[0]) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_statuses_follow_the_policy() -> None:
    raters = [1] * 5 + [2] * 40 + [3] * 40 + [4] * 40
    scores = (
        [0.0] * 5  # too few answers to judge
        + [1.0] * 36 + [0.0] * 4  # 90%: ok
        + [1.0] * 26 + [0.0] * 14  # 65%: below 70%, but not clearly below 50%
        + [1.0] * 10 + [0.0] * 30  # 25%: the whole interval is below 50%
    )  # fmt: skip
    policy = GoldPolicy(warn_below=0.7, pause_below=0.5, min_answers=10)
    verdicts = {v.rater: v for v in gold_check(gold_accuracy(raters, scores), policy)}
    assert [verdicts[r].status for r in (1, 2, 3, 4)] == ["too_few", "ok", "warning", "pause"]
    assert "clearly below 50%" in verdicts[4].reason
    assert verdicts[4].high < 0.5 < verdicts[3].high


def test_without_a_pause_threshold_nobody_is_paused() -> None:
    verdicts = gold_check(gold_accuracy([1] * 50, [0.0] * 50), GoldPolicy())
    assert verdicts[0].status == "warning"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"warn_below": 1.5},
        {"pause_below": -0.1},
        {"min_answers": 0},
        {"warn_below": 0.5, "pause_below": 0.6},
    ],
)
def test_bad_policies_are_refused_with_a_sentence(kwargs: dict[str, float]) -> None:
    with pytest.raises(Invalid):
        GoldPolicy(**kwargs)  # type: ignore[arg-type]


def test_scores_outside_zero_one_are_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        gold_accuracy([1], [1.5])
