import krippendorff
import numpy as np
import pytest

from app.quality.alpha import alpha_from_coincidences, coincidence_rows, krippendorff_alpha
from app.quality.labels import label_counts

nan = np.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers,
# 12 units, values 1..5, missing values. Published: nominal .743, ordinal .815, interval .849.
K2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ]
)


def long_form(reliability: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    coder, unit = np.nonzero(~np.isnan(reliability))
    return unit, reliability[coder, unit]


@pytest.mark.parametrize(
    ("level", "published"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)]
)
def test_krippendorffs_worked_example(level: str, published: float) -> None:
    units, values = long_form(K2011)
    est = krippendorff_alpha(units, values, level=level)  # type: ignore[arg-type]
    assert est.value == pytest.approx(published, abs=5e-4)
    # Unit 12 has a single value: not pairable.
    assert est.n == 11
    assert est.low is not None and est.high is not None
    assert est.low <= est.value <= est.high


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_bootstrap_formula_equals_the_package_on_random_data(level: str) -> None:
    rng = np.random.default_rng(11)
    domain = np.array([1.0, 2.0, 4.0, 7.0])  # unequal steps: interval differs from ordinal
    units = rng.integers(0, 60, 400)
    # Correlated values so alpha is far from 0.
    truth = rng.integers(0, 4, 60)
    codes = np.clip(truth[units] + rng.integers(-1, 2, 400), 0, 3)
    _, counts = label_counts(units, codes, 4)
    rows, freq = coincidence_rows(counts)
    mine = alpha_from_coincidences((freq @ rows).reshape(1, -1), level, domain)[0]  # type: ignore[arg-type]
    reference = krippendorff.alpha(
        value_counts=counts, value_domain=domain, level_of_measurement=level
    )
    assert mine == pytest.approx(reference, abs=1e-12)
    assert krippendorff_alpha(units, domain[codes], level=level).value == pytest.approx(reference)  # type: ignore[arg-type]


def test_unused_scale_points_change_interval_alpha_only_through_their_values() -> None:
    units = [0, 0, 1, 1, 2, 2]
    ratings = [1, 2, 6, 7, 3, 3]
    with_domain = krippendorff_alpha(units, ratings, level="interval", domain=range(1, 8))
    without = krippendorff_alpha(units, ratings, level="interval")
    assert with_domain.value == pytest.approx(without.value)


def test_alpha_is_undefined_without_pairable_items_or_without_variation() -> None:
    assert krippendorff_alpha([1, 2, 3], [0, 1, 0]).value is None
    same = krippendorff_alpha([1, 1, 2, 2], [3, 3, 3, 3], level="ordinal", domain=[1, 2, 3])
    assert same.value is None and same.n == 2


def test_perfect_agreement_is_one_with_a_degenerate_interval() -> None:
    est = krippendorff_alpha([1, 1, 2, 2, 3, 3], [0, 0, 1, 1, 0, 0])
    assert (est.value, est.low, est.high) == (1.0, 1.0, 1.0)


def test_values_outside_the_domain_are_refused() -> None:
    with pytest.raises(ValueError, match="domain"):
        krippendorff_alpha([1, 1], [1, 9], level="ordinal", domain=[1, 2, 3])
    with pytest.raises(ValueError, match="increasing"):
        krippendorff_alpha([1, 1], [1, 2], level="ordinal", domain=[3, 2, 1])
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha([1, 1], [1, 2], level="ratio")  # type: ignore[arg-type]
