"""Where simulated annotators get the truth of a task: a world's truth file, or a gold reward.

An annotator sees what the server shows (prompt, responses in shown order with their ids and
texts) and nothing else; the oracle turns that into the true order of the shown responses.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any, Protocol

from app.simulate.behaviour import ItemFacts, Knowledge
from app.simulate.rewards import GoldReward
from app.simulate.truth import ItemTruth
from app.simulate.world import DEFAULT_MARGIN_SCALE


def content_key(item: Mapping[str, Any]) -> str:
    """An item by its content: prompt and response texts, in an order that does not depend on
    the shuffle shown, so that it is the same item in any database, whatever ids it got."""
    texts = sorted(str(r["text"]) for r in item["responses"])
    content = json.dumps([str(item.get("prompt", "")), texts], ensure_ascii=False)
    return "sha256:" + hashlib.sha256(content.encode()).hexdigest()


def item_key(item: Mapping[str, Any]) -> str:
    """An item by its external id (a world's items: the id its truth is filed under), else by
    its content."""
    external = item.get("external_id")
    return str(external) if external else content_key(item)


class Oracle(Protocol):
    def key(self, item: Mapping[str, Any]) -> str:
        """What an annotator's draws on the item are seeded by (behaviour.Panel.decide): the
        same item must get the same key in any database, so the same labels."""

    def know(self, item: Mapping[str, Any]) -> Knowledge | None:
        """The truth about a task's item (`{external_id, prompt, responses: [{id, text}]}`,
        responses in shown order), or None when the oracle has none."""

    def facts(self) -> list[ItemFacts]:
        """The items annotators are calibrated on."""


def _shown(item: Mapping[str, Any]) -> list[tuple[int, str]]:
    return [(int(r["id"]), str(r["text"])) for r in item["responses"]]


class TruthOracle:
    """Answers from a truth file (app/simulate/truth.py), matching shown texts by sha256."""

    def __init__(self, truths: Mapping[str, ItemTruth]) -> None:
        self.truths = truths

    def key(self, item: Mapping[str, Any]) -> str:
        return item_key(item)

    def know(self, item: Mapping[str, Any]) -> Knowledge | None:
        truth = self.truths.get(str(item.get("external_id")))
        if truth is None:
            return None
        rank = truth.rank()
        place: dict[int, int] = {}
        lengths: dict[int, int] = {}
        for rid, text in _shown(item):
            found = truth.response_for_text(text)
            if found is None:
                return None  # the item was changed, or the truth is of another world
            place[rid] = rank[found.id]
            lengths[rid] = len(text)
        if len(place) != len(truth.responses):
            return None
        order = sorted(place, key=place.__getitem__)
        return Knowledge(order, truth.difficulty, truth.categories, lengths)

    def facts(self) -> list[ItemFacts]:
        out = []
        for t in self.truths.values():
            chars = {r.id: r.chars for r in t.responses}
            pairs = [
                (chars[better], chars[worse])
                for i, better in enumerate(t.order)
                for worse in t.order[i + 1 :]
            ]
            out.append(ItemFacts(t.difficulty, t.categories, pairs))
        return out


class RewardOracle:
    """Answers by a gold reward's score of each shown response (AlpacaFarm-style).

    Difficulty is exp(-mean gap between neighbouring scores / margin_scale). The panel is
    calibrated on a clear-cut item (difficulty 0), so a configured accuracy is the accuracy on
    well-separated responses and falls toward chance as their scores get closer.
    """

    def __init__(self, reward: GoldReward, margin_scale: float = DEFAULT_MARGIN_SCALE) -> None:
        self.reward = reward
        self.margin_scale = margin_scale

    def key(self, item: Mapping[str, Any]) -> str:
        # By content: a reward judges texts, and a generated item's external id names the
        # job that made it (`gen-<job>-...`), which differs between runs of the same demo.
        return content_key(item)

    def know(self, item: Mapping[str, Any]) -> Knowledge | None:
        prompt = str(item.get("prompt", ""))
        shown = _shown(item)
        scores = {rid: self.reward.score(prompt, text) for rid, text in shown}
        texts = dict(shown)
        # Equal scores are ordered by text, not by the shown (shuffled) order: the truth, and so
        # an annotator's answer, must not depend on the display shuffle.
        order = sorted(scores, key=lambda rid: (-scores[rid], texts[rid]))
        ranked = [scores[rid] for rid in order]
        gap = (ranked[0] - ranked[-1]) / (len(ranked) - 1) if len(ranked) > 1 else 0.0
        difficulty = math.exp(-gap / self.margin_scale)
        return Knowledge(order, difficulty, {}, {rid: len(text) for rid, text in shown})

    def facts(self) -> list[ItemFacts]:
        return [ItemFacts(0.0, {}, [(1, 1)])]
