import math

import numpy as np
import pytest

from app.quality.leaderboard import bradley_terry

TRUE = {
    "atlas": 1200.0,
    "boreal": 1100.0,
    "cirrus": 1000.0,
    "delta": 950.0,
    "ember": 900.0,
    "fjord": 800.0,
}


def simulate(seed: int, n: int, tie_rate: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Battles whose expected score (a tie = 1/2) is the Bradley-Terry probability."""
    rng = np.random.default_rng(seed)
    names = np.array(list(TRUE))
    rating = np.array(list(TRUE.values()))
    a = rng.integers(0, len(names), n)
    b = (a + rng.integers(1, len(names), n)) % len(names)
    p = 1.0 / (1.0 + 10 ** ((rating[b] - rating[a]) / 400.0))
    tie = tie_rate * np.minimum(p, 1 - p) * 2  # keeps win and loss probabilities non-negative
    u = rng.random(n)
    outcome = np.where(u < p - tie / 2, 1.0, np.where(u < p + tie / 2, 0.5, 0.0))
    return names[a], names[b], outcome


def test_three_wins_in_four_is_400_log10_3_points_apart() -> None:
    board = bradley_terry(["A"] * 4, ["B"] * 4, [1, 1, 1, 0], prior_sd=1e6, n_boot=0)
    scores = {r.model: r.score for r in board.ratings}
    assert scores["A"] - scores["B"] == pytest.approx(400 * math.log10(3), abs=1e-3)
    assert (scores["A"] + scores["B"]) / 2 == pytest.approx(1000.0)
    assert [r.model for r in board.ratings] == ["A", "B"]
    assert board.ratings[0].wins == 3.0 and board.ratings[0].battles == 4


def test_known_strengths_are_recovered_in_order_and_covered_by_the_intervals() -> None:
    a, b, outcome = simulate(seed=1, n=30_000)
    board = bradley_terry(a, b, outcome, n_boot=200, seed=3)
    centre = np.mean(list(TRUE.values()))
    assert [r.model for r in board.ratings] == list(TRUE)
    for r in board.ratings:
        truth = TRUE[r.model] - centre + 1000.0
        assert r.low is not None and r.high is not None
        assert r.low <= truth <= r.high, r
        assert r.high - r.low < 40
    assert [r.rank for r in board.ratings] == [1, 2, 3, 4, 5, 6]
    assert board.battles == 30_000 and board.ties > 0 and board.connected


def test_ties_count_half_a_win_each() -> None:
    board = bradley_terry(["x"] * 10, ["y"] * 10, [0.5] * 10, n_boot=50)
    assert board.ratings[0].score == pytest.approx(board.ratings[1].score)
    assert board.ratings[0].wins == 5.0
    assert board.ties == 10


def test_a_model_that_won_everything_stays_finite() -> None:
    board = bradley_terry(["x"] * 5, ["y"] * 5, [1] * 5, n_boot=50)
    assert all(math.isfinite(r.score) for r in board.ratings)
    assert board.ratings[0].model == "x"


def test_length_control_separates_a_verbose_model_from_a_strong_one() -> None:
    # Equal strength; "verbose" writes twice as long and voters favour longer answers.
    rng = np.random.default_rng(7)
    n = 20_000
    a = np.where(rng.random(n) < 0.5, "verbose", "terse")
    b = np.where(a == "verbose", "terse", "verbose")
    len_a = np.where(a == "verbose", 800.0, 400.0) * rng.uniform(0.5, 1.5, n)
    len_b = np.where(b == "verbose", 800.0, 400.0) * rng.uniform(0.5, 1.5, n)
    diff = (len_a - len_b) / (len_a + len_b)
    p = 1.0 / (1.0 + np.exp(-3.0 * diff))  # only length matters
    outcome = (rng.random(n) < p).astype(float)
    plain = {r.model: r.score for r in bradley_terry(a, b, outcome, n_boot=0).ratings}
    assert plain["verbose"] - plain["terse"] > 100
    board = bradley_terry(a, b, outcome, length_a=len_a, length_b=len_b, n_boot=100)
    controlled = {r.model: r for r in board.ratings}
    assert abs(controlled["verbose"].score - controlled["terse"].score) < 25
    low, high = controlled["verbose"].low, controlled["verbose"].high
    assert low is not None and high is not None and low <= 1000.0 <= high
    effect = board.length_effect
    assert effect is not None and effect.value is not None and effect.low is not None
    assert effect.value > 0 and effect.low > 0


def test_votes_within_one_model_are_skipped_and_disconnected_groups_flagged() -> None:
    board = bradley_terry(["a", "a", "c"], ["a", "b", "d"], [1, 1, 0], n_boot=20)
    assert board.skipped == 1 and board.battles == 2
    assert not board.connected


def test_no_battles_give_an_empty_board() -> None:
    board = bradley_terry([], [], [])
    assert board.ratings == [] and board.battles == 0


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="outcome"):
        bradley_terry(["a"], ["b"], [2])
    with pytest.raises(ValueError, match="both"):
        bradley_terry(["a"], ["b"], [1], length_a=[3])
    with pytest.raises(ValueError, match="negative"):
        bradley_terry(["a"], ["b"], [1], length_a=[-1], length_b=[2])
    with pytest.raises(ValueError, match="one length"):
        bradley_terry(["a", "b"], ["b"], [1])


def test_the_board_serialises_to_json() -> None:
    import json

    board = bradley_terry(
        ["a", "b"], ["b", "c"], [1, 0.5], length_a=[10, 20], length_b=[20, 20], n_boot=20
    )
    data = json.loads(json.dumps(board.as_dict(), allow_nan=False))
    assert [r["model"] for r in data["ratings"]] == [r.model for r in board.ratings]
    assert set(data["length_effect"]) == {"value", "low", "high", "n"}
