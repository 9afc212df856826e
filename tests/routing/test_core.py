"""The decision on arrays: strategies' orders, audit and minimum fractions first, budget cuts."""

from __future__ import annotations

import numpy as np

from app.routing import core
from app.routing.models import Decision, Strategy


def _signals(
    probs: list[float], swaps: list[bool] | None = None, meta: list[dict[str, str]] | None = None
) -> core.Signals:
    n = len(probs)
    return core.Signals(
        item_ids=np.arange(1, n + 1, dtype=np.int64),
        metadata=meta or [{} for _ in range(n)],
        prob_first=np.array(probs, dtype=float),
        swap_inconsistent=np.array(swaps or [False] * n),
        disagreement=np.zeros(n),
    )


def _spec(strategy: Strategy, **kw: object) -> core.PolicySpec:
    return core.PolicySpec(strategy=strategy, human_overlap=1, **kw)  # type: ignore[arg-type]


def test_uncertainty_sends_low_margins_and_swaps_to_humans_least_sure_first() -> None:
    s = _signals(
        [0.95, 0.55, 0.7, 0.1, 0.5, float("nan")], swaps=[False, False, False, True, False, False]
    )
    p = core.plan(
        _spec(Strategy.uncertainty, params={"margin_threshold": 0.5}), s, np.random.default_rng(0)
    )
    # margins: .9, .1, .4, .8 (but swapped), 0, no judge (0)
    assert [p.wanted[i] for i in range(6)] == [
        Decision.ai,
        Decision.human,
        Decision.human,
        Decision.human,
        Decision.human,
        Decision.human,
    ]
    assert p.priority[:3] == [3, 4, 5] or set(p.priority[:3]) == {3, 4, 5}
    assert p.priority[-1] == 2  # margin .4 is the surest of the uncertain
    final = core.allocate(p, granted_units=2, human_overlap=1)
    assert final.count(Decision.human) == 2
    assert p.reason[2] == core.OVER_BUDGET
    assert p.reason[0] == "confident"


def test_learned_gains_rank_the_candidates() -> None:
    s = _signals([0.9] * 5)
    gain = np.array([0.1, 0.6, 0.3, 0.9, 0.2])
    p = core.plan(
        _spec(Strategy.learned, params={}), s, np.random.default_rng(0), learned_gain=gain
    )
    assert p.priority == [3, 1, 2, 4, 0]
    assert core.allocate(p, 2, 1) == [
        Decision.ai,
        Decision.human,
        Decision.ai,
        Decision.human,
        Decision.ai,
    ]


def test_learned_adds_the_uncertainty_score_to_the_gain_unless_its_weight_is_zero() -> None:
    # A swap-flipped item (uncertainty 1) with a small gain, a confident one (0.1) with more.
    s = _signals([0.5, 0.95, 0.6], swaps=[True, False, False])
    gain = np.array([0.2, 0.5, -0.1])
    p = core.plan(
        _spec(Strategy.learned, params={}), s, np.random.default_rng(0), learned_gain=gain
    )
    assert p.priority == [0, 1]  # 0.2 + 1 before 0.5 + 0.1; no gain, no candidate
    assert p.reason == ["learned", "learned", "learned_no_gain"]
    assert list(p.score) == list(gain)  # decisions record the model's gain itself
    p = core.plan(
        _spec(Strategy.learned, params={"uncertainty_weight": 0}),
        s,
        np.random.default_rng(0),
        learned_gain=gain,
    )
    assert p.priority == [1, 0]


def test_learned_without_a_model_falls_back_to_uncertainty() -> None:
    s = _signals([0.9, 0.5])
    p = core.plan(_spec(Strategy.learned, params={}), s, np.random.default_rng(0), note="few")
    assert p.reason == ["fallback_confident", "fallback_uncertain"]
    assert p.note == "few"


def test_audit_then_minimum_fractions_come_before_the_strategy() -> None:
    meta = [{"safety": "moderate"} if i % 4 == 0 else {"safety": "none"} for i in range(40)]
    s = _signals([0.5] * 40, meta=meta)  # all uncertain
    spec = _spec(
        Strategy.uncertainty,
        params={},
        audit_fraction=0.1,
        min_human={"safety": {"moderate": 1.0}},
    )
    p = core.plan(spec, s, np.random.default_rng(1))
    audit = [i for i in range(40) if p.reason[i] == core.AUDIT]
    assert audit and all(p.wanted[i] is Decision.both for i in audit)
    first = p.priority[: len(audit)]
    assert set(first) == set(audit)
    moderate = [i for i in range(40) if i % 4 == 0 and i not in audit]
    assert set(p.priority[len(audit) : len(audit) + len(moderate)]) == set(moderate)


def test_all_human_rules_and_random_are_deterministic_given_the_seed() -> None:
    s = _signals([0.5] * 100)
    a = core.plan(_spec(Strategy.random, params={"fraction": 0.25}), s, np.random.default_rng(7))
    b = core.plan(_spec(Strategy.random, params={"fraction": 0.25}), s, np.random.default_rng(7))
    assert a.wanted == b.wanted
    assert 10 <= a.wanted.count(Decision.human) <= 40
    h = core.plan(_spec(Strategy.all_human, params={}), s, np.random.default_rng(0))
    assert h.priority == list(range(100))
    assert core.units_for(10, 3) == 3
    assert core.units_for(10, 0) > 10**9
