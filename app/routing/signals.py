"""Per-item inputs of a routing decision, read from the database for a batch of items.

Judge signals come from the pool's judge outputs on the items (app/judges: one per item, judge
and template version): each judge's probability that the first response (as imported) is the
better one, whether its two orders disagreed (a position swap that flipped), and the share of
the pool against the pool's majority.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, text

from app.routing.core import Signals

_ITEMS = text("SELECT i.id, i.external_id, i.metadata FROM items i WHERE i.id = ANY(:ids)")
# Only the learned router reads texts.
_TEXTS = text(
    """
    SELECT i.id, i.prompt, array_agg(r.text ORDER BY r.position)
    FROM items i JOIN responses r ON r.item_id = i.id
    WHERE i.id = ANY(:ids) GROUP BY i.id
    """
)


# Each pool judge's latest output per item (the newest template version it judged it with),
# as app.judges stores it: P(first imported response better) and whether both orders agreed.
_OUTPUTS = text(
    """
    SELECT DISTINCT ON (o.item_id, o.judge_id) o.item_id, o.judge_id, o.status, o.probability,
           o.consistent
    FROM judge_outputs o
    WHERE o.item_id = ANY(:ids) AND o.judge_id = ANY(:judges)
    ORDER BY o.item_id, o.judge_id, o.template_id DESC
    """
)


@dataclass(slots=True)
class ItemTexts:
    """What the learned router's features need besides the signals."""

    external_ids: list[str | None]
    prompts: list[str]
    responses: list[list[str]]


def read(
    conn: Connection, item_ids: Sequence[int], judge_ids: Sequence[int], texts: bool = True
) -> tuple[Signals, ItemTexts]:
    """Signals for `item_ids` (in that order) from the judge pool's AI annotations."""
    rows = {r[0]: r for r in conn.execute(_ITEMS, {"ids": list(item_ids)})}
    ids = [i for i in item_ids if i in rows]
    probs: dict[int, dict[int, float]] = defaultdict(dict)
    swap_flag: dict[int, bool] = defaultdict(bool)
    if judge_ids:
        for item_id, judge_id, status, probability, consistent in conn.execute(
            _OUTPUTS, {"ids": ids, "judges": list(judge_ids)}
        ):
            if consistent is False or status == "inconsistent":
                swap_flag[item_id] = True
            if probability is not None and math.isfinite(probability):
                probs[item_id][judge_id] = float(probability)
            elif status == "inconsistent":
                probs[item_id][judge_id] = 0.5  # the template's rule: a tie, never a guess
    n = len(ids)
    prob_first = np.full(n, np.nan)
    inconsistent = np.zeros(n, dtype=bool)
    disagreement = np.zeros(n)
    for k, item_id in enumerate(ids):
        per_judge = probs.get(item_id)
        if not per_judge:
            continue
        means = list(per_judge.values())
        prob_first[k] = float(np.mean(means))
        inconsistent[k] = swap_flag[item_id]
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
    found: dict[int, tuple[str, list[str]]] = {}
    if texts:
        found = {r[0]: (r[1], list(r[2])) for r in conn.execute(_TEXTS, {"ids": ids})}
    return signals, ItemTexts(
        external_ids=[rows[i][1] for i in ids],
        prompts=[found[i][0] for i in ids] if texts else [],
        responses=[found[i][1] for i in ids] if texts else [],
    )
