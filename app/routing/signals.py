"""Per-item inputs of a routing decision, read from the database for a batch of items.

Judge signals come from the pool's AI annotations on the items: each judge's probability that
the first response (as imported) is the better one, whether its answers disagree with each
other (a position swap that flipped), and the share of the pool against the pool's majority.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from app.routing.core import Signals

_ITEMS = text(
    """
    SELECT i.id, i.external_id, i.metadata, i.prompt,
           (SELECT array_agg(r.id ORDER BY r.position) FROM responses r WHERE r.item_id = i.id),
           (SELECT array_agg(r.text ORDER BY r.position) FROM responses r WHERE r.item_id = i.id)
    FROM items i WHERE i.id = ANY(:ids)
    """
)

_AI_VOTES = text(
    """
    SELECT a.item_id, a.judge_id, a.payload
    FROM annotations a
    WHERE a.item_id = ANY(:ids) AND a.source = 'ai' AND a.judge_id = ANY(:judges)
    ORDER BY a.id
    """
)


@dataclass(slots=True)
class ItemTexts:
    """What the learned router's features need besides the signals."""

    external_ids: list[str | None]
    prompts: list[str]
    responses: list[list[str]]


def judge_probability(payload: dict[str, Any], first_id: int) -> float | None:
    """A pairwise AI annotation's P(first response better): its stored probability if any,
    else 1/0/0.5 from its verdict. None when it carries no verdict."""
    prob = payload.get("probability")
    preferred = payload.get("preferred", "missing")
    if isinstance(prob, int | float) and math.isfinite(prob):
        # Stored as P(preferred wins) or P(first wins), as `probability_of` says.
        if payload.get("probability_of") == "preferred" and preferred not in (None, "missing"):
            return float(prob) if preferred == first_id else 1.0 - float(prob)
        return float(prob)
    if preferred == "missing":
        return None
    if preferred is None:
        return 0.5
    return 1.0 if preferred == first_id else 0.0


def read(
    conn: Connection, item_ids: Sequence[int], judge_ids: Sequence[int]
) -> tuple[Signals, ItemTexts]:
    """Signals for `item_ids` (in that order) from the judge pool's AI annotations."""
    rows = {r[0]: r for r in conn.execute(_ITEMS, {"ids": list(item_ids)})}
    ids = [i for i in item_ids if i in rows]
    first = {i: (rows[i][4] or [None])[0] for i in ids}
    probs: dict[int, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    swap_flag: dict[int, bool] = defaultdict(bool)
    if judge_ids:
        for item_id, judge_id, payload in conn.execute(
            _AI_VOTES, {"ids": ids, "judges": list(judge_ids)}
        ):
            p = judge_probability(payload, first[item_id])
            if p is not None:
                probs[item_id][judge_id].append(p)
            if payload.get("consistent") is False:
                swap_flag[item_id] = True
    n = len(ids)
    prob_first = np.full(n, np.nan)
    inconsistent = np.zeros(n, dtype=bool)
    disagreement = np.zeros(n)
    for k, item_id in enumerate(ids):
        per_judge = probs.get(item_id)
        if not per_judge:
            continue
        means = [float(np.mean(v)) for v in per_judge.values()]
        prob_first[k] = float(np.mean(means))
        # One judge's answers that point both ways (e.g. the two orders of a swap).
        flips = any(min(v) < 0.5 < max(v) for v in per_judge.values() if len(v) > 1)
        inconsistent[k] = swap_flag[item_id] or flips
        votes = [1 if m > 0.5 else (-1 if m < 0.5 else 0) for m in means]
        if len(votes) > 1:
            majority = max(set(votes), key=votes.count)
            disagreement[k] = sum(v != majority for v in votes) / len(votes)
    signals = Signals(
        item_ids=np.asarray(ids, dtype=np.int64),
        metadata=[rows[i][2] or {} for i in ids],
        prob_first=prob_first,
        swap_inconsistent=inconsistent,
        disagreement=disagreement,
    )
    texts = ItemTexts(
        external_ids=[rows[i][1] for i in ids],
        prompts=[rows[i][3] for i in ids],
        responses=[list(rows[i][5] or []) for i in ids],
    )
    return signals, texts
