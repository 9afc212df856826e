import numpy as np
import pytest

from app.quality.bootstrap import (
    MEAN_LEVELS,
    Estimate,
    bootstrap,
    mean,
    multinomial_per_group,
    ratio,
    resampled_sums,
)


def test_mean_of_shares_has_the_normal_interval_of_a_proportion() -> None:
    x = np.r_[np.ones(600), np.zeros(400)]
    est = mean(x, n_boot=4000, seed=1)
    se = np.sqrt(0.6 * 0.4 / 1000)
    assert est.value == pytest.approx(0.6)
    assert est.n == 1000
    assert est.low == pytest.approx(0.6 - 1.96 * se, abs=0.006)
    assert est.high == pytest.approx(0.6 + 1.96 * se, abs=0.006)


def test_grouped_multinomial_draws_match_resampling_units_one_by_one() -> None:
    rng = np.random.default_rng(3)
    rows = np.column_stack([rng.integers(0, 4, 500).astype(float), np.ones(500)])
    fast = ratio(resampled_sums(rows, n_boot=3000, seed=5))
    naive = np.array([rows[rng.integers(0, 500, 500)].sum(axis=0) for _ in range(3000)])
    naive_means = naive[:, 0] / naive[:, 1]
    assert fast.mean() == pytest.approx(naive_means.mean(), abs=0.01)
    assert fast.std() == pytest.approx(naive_means.std(), rel=0.08)


def test_counts_weigh_rows_like_repeated_units() -> None:
    rows = np.array([[0.0, 1.0], [1.0, 1.0]])  # in np.unique's order: the same categories
    grouped = bootstrap(rows, ratio, counts=np.array([70, 30]), n_boot=500, seed=2)
    expanded = bootstrap(np.repeat(rows, [70, 30], axis=0)[::-1], ratio, n_boot=500, seed=2)
    assert grouped == expanded
    assert grouped.value == pytest.approx(0.3)
    assert grouped.n == 100


def test_the_same_seed_gives_the_same_interval_and_another_seed_another() -> None:
    x = np.random.default_rng(0).random(200)
    assert mean(x, seed=7) == mean(x, seed=7)
    assert mean(x, seed=7).low != mean(x, seed=8).low


def test_undefined_statistics_are_none_never_nan() -> None:
    assert mean([]) == Estimate(None, None, None, 0)
    zeros = bootstrap(np.zeros((5, 2)), ratio)
    assert zeros == Estimate(None, None, None, 5)
    no_interval = mean([1.0, 0.0], n_boot=0)
    assert no_interval == Estimate(0.5, None, None, 2)


def test_a_single_unit_has_a_degenerate_interval() -> None:
    assert mean([0.25]) == Estimate(0.25, 0.25, 0.25, 1)


def test_non_finite_values_are_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        mean([1.0, float("nan")])


def test_many_distinct_values_give_the_interval_of_the_exact_bootstrap() -> None:
    x = np.random.default_rng(12).beta(2, 5, 20_000)
    assert len(np.unique(x)) > MEAN_LEVELS
    rounded = mean(x, n_boot=2000, seed=1)
    exact = bootstrap(np.column_stack([x, np.ones_like(x)]), ratio, n_boot=2000, seed=1)
    assert rounded.value == pytest.approx(x.mean(), abs=1e-15)
    # Two bootstraps differ by Monte Carlo noise only: a few percent of the half-width here.
    half_width = 1.96 * x.std() / np.sqrt(len(x))
    for est in (rounded, exact):
        assert est.low == pytest.approx(x.mean() - half_width, abs=half_width * 0.15)
        assert est.high == pytest.approx(x.mean() + half_width, abs=half_width * 0.15)
    assert rounded.low == pytest.approx(exact.low, abs=half_width * 0.15)


def test_multinomial_per_group_draws_have_multinomial_moments() -> None:
    rng = np.random.default_rng(0)
    n = np.array([5, 40, 0])
    p = np.array([[0.2, 0.3, 0.5], [0.9, 0.1, 0.0], [0.5, 0.25, 0.25]])
    drawn = multinomial_per_group(rng, n, p, 20_000)
    assert drawn.shape == (20_000, 3, 3)
    assert (drawn.sum(axis=2) == n).all()
    assert drawn.mean(axis=0) == pytest.approx(n[:, None] * p, abs=0.05)
    assert drawn.var(axis=0) == pytest.approx(n[:, None] * p * (1 - p), rel=0.05, abs=0.02)
