"""The routing decision itself, on arrays: the same code serves the route job and the benchmark.

Given per-item signals (judge pool probability, swap consistency, pool disagreement, metadata)
and a policy, `plan` orders the items that want human labels by priority (audit sample first,
then per-category minimum human fractions, then the strategy's own ranking) and says what each
item gets if the budget does not reach it; `allocate` cuts that order where the granted human
units run out. The route job asks the ledger for units chunk by chunk in this same order, so
under a short budget the best candidates are the ones kept. numpy only: the web process may
import it (dry runs are jobs, but nothing here is heavy).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from app.routing.models import Decision, Strategy
from app.routing.schemas import (
    LearnedParams,
    RandomParams,
    RulesParams,
    UncertaintyParams,
    parse_params,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# Reason codes written on decisions (README "Routing" lists them).
AUDIT = "audit"
MIN_HUMAN = "min_human"
OVER_BUDGET = "over_budget"
# Priority classes: lower first.
_P_AUDIT, _P_MIN, _P_STRATEGY = 0, 1, 2


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """What a policy version says, as the decision needs it."""

    strategy: Strategy
    params: Mapping[str, Any]
    human_overlap: int
    audit_fraction: float = 0.0
    min_human: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


@dataclass(slots=True)
class Signals:
    """Per-item inputs, aligned by position. NaN probability: no judge answered the item."""

    item_ids: npt.NDArray[np.int64]
    metadata: Sequence[Mapping[str, Any]]
    # The pool's probability that the first response (as imported) is the better one.
    prob_first: FloatArray
    swap_inconsistent: BoolArray
    disagreement: FloatArray  # share of the pool's judges against the pool's majority label

    def __len__(self) -> int:
        return len(self.item_ids)

    @property
    def margin(self) -> FloatArray:
        m = np.abs(2 * self.prob_first - 1)
        return np.where(np.isnan(m), 0.0, m)


@dataclass(slots=True)
class Plan:
    """Per item: the decision if the budget reaches it (`wanted`), else `fallback`."""

    wanted: list[Decision]
    reason: list[str]
    score: FloatArray  # the strategy's score (uncertainty, predicted gain, ...), NaN if none
    gain: FloatArray  # predicted gain of a human label: P(the AI label is wrong), NaN if unknown
    priority: list[int]  # positions of items wanting humans, best first
    note: str = ""  # e.g. the learned router's fallback, for the job's result

    def needs_human(self, i: int) -> bool:
        return self.wanted[i] is not Decision.ai


def uncertainty(signals: Signals, params: UncertaintyParams) -> tuple[FloatArray, BoolArray]:
    """A score in [0, 1] (higher: less sure) and whether each item counts as uncertain."""
    margin = signals.margin
    score = 1.0 - margin
    uncertain = margin < params.margin_threshold
    if params.use_swap:
        score = np.where(signals.swap_inconsistent, 1.0, score)
        uncertain |= signals.swap_inconsistent
    if params.use_disagreement:
        score = np.maximum(score, np.minimum(1.0, 2 * signals.disagreement))
        uncertain |= signals.disagreement > 0
    return score, uncertain


def estimated_gain(signals: Signals) -> FloatArray:
    """Without a learned model: P(AI wrong) read off the pool's probability (if calibrated)."""
    p = signals.prob_first
    gain = np.minimum(p, 1 - p)
    gain = np.where(signals.swap_inconsistent, np.maximum(gain, 0.5), gain)
    return np.where(np.isnan(gain), 0.5, gain)


def _metadata_value(meta: Mapping[str, Any], key: str) -> str | None:
    if key not in meta or meta[key] is None:
        return None
    value = meta[key]
    return value if isinstance(value, str) else str(value).lower()


def plan(
    spec: PolicySpec,
    signals: Signals,
    rng: np.random.Generator,
    learned_gain: FloatArray | None = None,
    note: str = "",
) -> Plan:
    """Decide what each item wants and the order in which human candidates get the budget.

    `learned_gain` is the learned router's prediction (None for other strategies, or when it
    fell back to uncertainty: then `note` says why).
    """
    n = len(signals)
    wanted = [Decision.ai] * n
    reason = [spec.strategy.value] * n
    score = np.full(n, np.nan)
    gain = estimated_gain(signals)
    params = parse_params(spec.strategy, dict(spec.params))
    klass = [_P_STRATEGY + 1] * n  # items that want no human sort last
    rank = np.zeros(n)  # within a class, higher first

    strategy = spec.strategy
    if strategy is Strategy.all_human:
        wanted = [Decision.human] * n
        klass = [_P_STRATEGY] * n
    elif strategy is Strategy.random:
        assert isinstance(params, RandomParams)
        draw = rng.random(n)
        for i in np.flatnonzero(draw < params.fraction).tolist():
            wanted[i] = Decision.human
            klass[i] = _P_STRATEGY
        rank = -draw
        reason = ["random"] * n
    elif strategy is Strategy.rules:
        assert isinstance(params, RulesParams)
        for i, meta in enumerate(signals.metadata):
            route, why = params.default, "rule:default"
            for r_no, rule in enumerate(params.rules, start=1):
                if _metadata_value(meta, rule.key) in rule.values:
                    route, why = rule.route, f"rule:{r_no}"
                    break
            wanted[i], reason[i] = route, why
            if route is not Decision.ai:
                klass[i] = _P_STRATEGY
    elif strategy in (Strategy.uncertainty, Strategy.learned):
        assert isinstance(params, UncertaintyParams)
        if learned_gain is not None:
            assert isinstance(params, LearnedParams)
            score = learned_gain.astype(np.float64)
            gain = score
            # Items with a positive predicted gain are candidates, by predicted gain plus
            # `uncertainty_weight` times the uncertainty score: the model learns from the
            # items that routing sent to humans, mostly uncertain ones, so where it has seen
            # few (the judge's confident answers) the uncertainty signals still order them.
            weight = params.uncertainty_weight
            for i in range(n):
                if score[i] > 0:
                    wanted[i], reason[i], klass[i] = Decision.human, "learned", _P_STRATEGY
                else:
                    reason[i] = "learned_no_gain"
            rank = score + weight * uncertainty(signals, params)[0] if weight else score
        else:
            score, uncertain = uncertainty(signals, params)
            prefix = "fallback_" if strategy is Strategy.learned else ""
            for i in range(n):
                if uncertain[i]:
                    wanted[i], reason[i], klass[i] = (
                        Decision.human,
                        f"{prefix}uncertain",
                        _P_STRATEGY,
                    )
                else:
                    reason[i] = f"{prefix}confident"
            rank = score
    # all_ai: every item stays with AI.

    for key, cells in spec.min_human.items():
        for value, fraction in cells.items():
            cell = [i for i, m in enumerate(signals.metadata) if _metadata_value(m, key) == value]
            need = math.ceil(fraction * len(cell) - 1e-9)
            have = sum(1 for i in cell if wanted[i] is not Decision.ai)
            if have >= need:
                # Those already wanted count toward the minimum: make sure they come first.
                chosen = sorted(
                    (i for i in cell if wanted[i] is not Decision.ai), key=lambda i: -rank[i]
                )[:need]
            else:
                # Top up with the cell's best-ranked items that wanted none.
                extra = sorted(
                    (i for i in cell if wanted[i] is Decision.ai), key=lambda i: -rank[i]
                )[: need - have]
                chosen = [i for i in cell if wanted[i] is not Decision.ai] + extra
            for i in chosen:
                if wanted[i] is Decision.ai:
                    wanted[i] = Decision.human
                    reason[i] = MIN_HUMAN
                klass[i] = min(klass[i], _P_MIN)

    if spec.audit_fraction > 0:
        audit = rng.random(n) < spec.audit_fraction
        for i in np.flatnonzero(audit).tolist():
            wanted[i], reason[i], klass[i] = Decision.both, AUDIT, _P_AUDIT

    candidates = [i for i in range(n) if wanted[i] is not Decision.ai]
    # Stable: equal class and rank keep item order (oldest first).
    candidates.sort(key=lambda i: (klass[i], -rank[i]))
    return Plan(wanted, reason, score, gain, candidates, note)


def allocate(p: Plan, granted_units: int, human_overlap: int) -> list[Decision]:
    """Final decisions: candidates in priority order while units last, the rest to AI."""
    final = list(p.wanted)
    left = granted_units
    for i in p.priority:
        if left >= human_overlap:
            left -= human_overlap
        else:
            final[i] = Decision.ai
            p.reason[i] = OVER_BUDGET
    return final


def units_for(budget: float, human_cost: float) -> int:
    """Human annotations a budget buys (unbounded cost 0 buys as many as wanted)."""
    if human_cost <= 0:
        return 2**62
    return math.floor(budget / human_cost + 1e-9)
