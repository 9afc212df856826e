import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from app.quality.bias import first_position_rate, length_bias, position_consistency
from app.quality.calibration import brier_score, expected_calibration_error, reliability_curve
from app.quality.labels import FIRST, SECOND, TIE
from app.quality.percentiles import p50_p95


def test_position_consistency_by_hand() -> None:
    verdict = [FIRST, FIRST, SECOND, TIE, FIRST]
    swapped = [FIRST, SECOND, SECOND, TIE, TIE]
    est = position_consistency(verdict, swapped)
    assert est.value == pytest.approx(3 / 5)
    assert est.n == 5


def test_first_position_rate_by_hand() -> None:
    assert first_position_rate([True, True, True, False]).value == pytest.approx(0.75)
    with pytest.raises(ValueError, match="booleans"):
        first_position_rate([0.5])


def test_length_bias_drops_equal_lengths() -> None:
    est = length_bias([100, 300, 50, 70, 70], [90, 200, 80, 60, 70])
    # Decisive votes with unequal lengths: 4; the longer won 3 of them.
    assert est.value == pytest.approx(3 / 4)
    assert est.n == 4


def test_brier_score_by_hand_and_against_scikit_learn() -> None:
    prob = [0.9, 0.8, 0.3, 0.5]
    outcome = [1, 0, 0, 1]
    # (0.01 + 0.64 + 0.09 + 0.25) / 4 = 0.2475
    assert brier_score(prob, outcome).value == pytest.approx(0.2475)
    rng = np.random.default_rng(2)
    p = rng.random(500)
    y = rng.random(500) < p
    assert brier_score(p, y, n_boot=0).value == pytest.approx(brier_score_loss(y, p))


def test_reliability_curve_equals_scikit_learns_bins() -> None:
    rng = np.random.default_rng(6)
    p = np.r_[rng.random(1000), [0.0, 0.1, 0.2, 1.0]]  # edges included
    y = rng.random(len(p)) < p**2  # overconfident
    bins = reliability_curve(p, y, n_bins=10)
    observed, predicted = calibration_curve(y, p, n_bins=10)
    assert [b.observed for b in bins] == pytest.approx(observed)
    assert [b.mean_prob for b in bins] == pytest.approx(predicted)
    assert sum(b.count for b in bins) == len(p)


def test_reliability_bins_and_calibration_error_by_hand() -> None:
    bins = reliability_curve([0.05, 0.15, 0.95, 0.85], [0, 1, 1, 1], n_bins=2)
    assert [(b.low, b.high, b.count) for b in bins] == [(0.0, 0.5, 2), (0.5, 1.0, 2)]
    assert bins[0].mean_prob == pytest.approx(0.1) and bins[0].observed == 0.5
    assert bins[1].mean_prob == pytest.approx(0.9) and bins[1].observed == 1.0
    assert expected_calibration_error(bins) == pytest.approx((2 * 0.4 + 2 * 0.1) / 4)
    assert reliability_curve([], [], 5) == [] and expected_calibration_error([]) is None


def test_probabilities_outside_zero_one_are_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        brier_score([1.2], [1])


def test_p50_p95_by_hand() -> None:
    summary = p50_p95(np.arange(1, 101))
    assert (summary.p50, summary.p95, summary.n) == (50.5, pytest.approx(95.05), 100)
    assert p50_p95([]).p50 is None
