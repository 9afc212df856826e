"""Generate a world: items to import and, kept apart, the truth about each (no database here).

A generated world is decided by its config and seed alone; item n depends only on the seed,
n and the config, so a bigger world of the same config starts with the smaller one's items.

How an item is made (pairwise: 2 responses, ranking: `responses`):
1. categories drawn from `mix` (e.g. safety none/mild/moderate, complexity easy/moderate/hard);
2. difficulty in (0, 1): logit-normal around a mean set by complexity (easy 0.25, moderate
   0.45, hard 0.65; sd 0.8 on the logit scale);
3. distinct models from a pool of `models` with strengths evenly spaced in [-1, 1]; the true
   order is a Plackett-Luce draw on those strengths (so a leaderboard over the truth recovers
   them);
4. latent rewards in that order, neighbours `-ln(difficulty)` apart on average (times a
   uniform 0.6 to 1.4): difficulty is exp(-expected gap), close rewards are hard calls;
5. lengths: log word count = ln 60 + 0.45 * z, z correlated with the standardised reward by
   `length_correlation` within the item (pairwise: the better response is the longer with
   probability Phi(sqrt(2) rho / sqrt(1 - rho^2)), e.g. 0.66 at rho = 0.3);
6. templated texts (app/simulate/texts.py) of those lengths, about topics set by the
   categories; categories go in the item's metadata, difficulty and rewards only in the truth.

`world_from_rows` makes a world of given prompts and responses instead, the truth being the
scores of a gold reward (app/simulate/rewards.py).
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.errors import Invalid
from app.simulate import texts
from app.simulate.draws import Draws, logit, sigmoid
from app.simulate.rewards import GoldReward
from app.simulate.truth import ItemTruth, TruthResponse, text_digest

WorldKind = Literal["pairwise", "ranking"]

DEFAULT_MIX: dict[str, dict[str, float]] = {
    "safety": {"none": 0.7, "mild": 0.2, "moderate": 0.1},
    "complexity": {"easy": 0.5, "moderate": 0.3, "hard": 0.2},
}
# Levels that shape the generated text and difficulty; other category keys are metadata only.
BUILT_IN_LEVELS = {"safety": tuple(texts.TASKS), "complexity": tuple(texts.PROMPT_FORMS)}
DIFFICULTY_MEAN = {"easy": 0.25, "moderate": 0.45, "hard": 0.65}
DIFFICULTY_LOGIT_SD = 0.8
MEDIAN_WORDS = 60
LENGTH_SIGMA = 0.45
MIN_WORDS, MAX_WORDS = 12, 220
MODEL_NAMES = (
    "simlm-alpha",
    "simlm-bravo",
    "simlm-charlie",
    "simlm-delta",
    "simlm-echo",
    "simlm-foxtrot",
    "simlm-golf",
    "simlm-hotel",
    "simlm-india",
    "simlm-juliet",
    "simlm-kilo",
    "simlm-lima",
)
# A reward gap this size makes a pair as hard as difficulty 1/e in a world of given rows.
DEFAULT_MARGIN_SCALE = 0.1

Level = Annotated[str, Field(min_length=1, max_length=64)]


class WorldConfig(BaseModel):
    """What decides a generated world (`size` only says how many of its items to make)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: WorldKind = "pairwise"
    size: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    seed: int = 0
    responses: Annotated[int, Field(ge=2, le=8)] = 2
    mix: dict[Level, dict[Level, Annotated[float, Field(ge=0)]]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_MIX.items()}
    )
    length_correlation: Annotated[float, Field(ge=-0.95, le=0.95)] = 0.3
    models: Annotated[int, Field(ge=2, le=len(MODEL_NAMES))] = 6
    gold_fraction: Annotated[float, Field(ge=0, le=0.5)] = 0.0

    @field_validator("mix")
    @classmethod
    def _mix(cls, mix: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for key, levels in mix.items():
            if not levels or sum(levels.values()) <= 0:
                raise ValueError(f"category {key!r} needs at least one level with a weight > 0")
            known = BUILT_IN_LEVELS.get(key)
            unknown = sorted(set(levels) - set(known)) if known else []
            if unknown:
                raise ValueError(
                    f"category {key!r} has no level {', '.join(map(repr, unknown))}"
                    f" (its levels: {', '.join(known or ())})"
                )
        return mix

    @model_validator(mode="after")
    def _counts(self) -> WorldConfig:
        if self.kind == "pairwise" and self.responses != 2:
            raise ValueError("a pairwise world has 2 responses per item")
        if self.models < self.responses:
            raise ValueError(f"{self.responses} responses per item need at least as many models")
        return self

    def world_id(self) -> str:
        """A short name of everything but the size: external ids of two different worlds in
        one project never collide, and the same world imported again is recognised."""
        decided = self.model_dump(exclude={"size"}, mode="json")
        digest = hashlib.sha256(orjson.dumps(decided, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return "w" + digest[:6]


@dataclass(frozen=True, slots=True)
class World:
    world_id: str
    kind: WorldKind
    items: list[dict[str, Any]]  # rows as the import takes them
    truths: list[ItemTruth]
    model_strengths: dict[str, float]
    reward: str | None = None

    def stats(self) -> dict[str, Any]:
        """Counts a manifest records: categories, difficulty, how often longer wins."""
        categories: dict[str, Counter[str]] = {}
        for t in self.truths:
            for key, level in t.categories.items():
                categories.setdefault(key, Counter())[level] += 1
        longer = decided = 0
        for t in self.truths:
            chars = {r.id: r.chars for r in t.responses}
            best, second = chars[t.order[0]], chars[t.order[1]]
            if best != second:
                decided += 1
                longer += best > second
        n = len(self.truths)
        return {
            "items": n,
            "gold_items": sum(1 for i in self.items if i.get("is_gold")),
            "mean_difficulty": round(sum(t.difficulty for t in self.truths) / n, 4) if n else None,
            "categories": {k: dict(sorted(v.items())) for k, v in sorted(categories.items())},
            "best_is_longer": round(longer / decided, 4) if decided else None,
        }


def _strengths(count: int) -> dict[str, float]:
    if count == 1:
        return {MODEL_NAMES[0]: 0.0}
    return {MODEL_NAMES[m]: round(1.0 - 2.0 * m / (count - 1), 4) for m in range(count)}


def _difficulty(draws: Draws, complexity: str) -> float:
    mean = DIFFICULTY_MEAN.get(complexity, DIFFICULTY_MEAN["moderate"])
    value = sigmoid(logit(mean) + DIFFICULTY_LOGIT_SD * draws.gauss())
    return round(min(0.999, max(0.001, value)), 4)


def _standardised(values: list[float]) -> list[float]:
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return [(v - mean) / sd if sd > 0 else 0.0 for v in values]


def _gold_answer(kind: str, order_positions: list[int]) -> dict[str, Any]:
    if kind == "pairwise":
        return {"choice": "a" if order_positions[0] == 0 else "b"}
    return {"order": order_positions}


def _item(
    config: WorldConfig, world_id: str, strengths: dict[str, float], n: int
) -> tuple[dict[str, Any], ItemTruth]:
    draws = Draws(config.seed, "item", n)
    categories = {
        key: draws.weighted(list(levels), list(levels.values()))
        for key, levels in sorted(config.mix.items())
    }
    safety = categories.get("safety", "none")
    complexity = categories.get("complexity", "moderate")
    difficulty = _difficulty(draws, complexity)
    k = config.responses
    models = draws.sample(list(strengths), k)  # models[j] wrote the response at position j
    # Plackett-Luce by the Gumbel trick: positions sorted by strength + Gumbel noise.
    keys = [strengths[m] + draws.gumbel() for m in models]
    order_positions = sorted(range(k), key=lambda j: -keys[j])
    gap = max(0.002, -math.log(difficulty))
    base = sum(strengths[m] for m in models) / k + 0.25 * draws.gauss()
    ladder = [0.0]
    for _ in range(k - 1):
        ladder.append(ladder[-1] - gap * draws.uniform(0.6, 1.4))
    shift = base - sum(ladder) / k
    reward_at = {pos: round(ladder[rank] + shift, 4) for rank, pos in enumerate(order_positions)}
    rewards = [reward_at[j] for j in range(k)]
    rho = config.length_correlation
    z_reward = _standardised(rewards)
    prompt, name = texts.prompt_for(draws, safety, complexity)
    external_id = f"{world_id}-{n + 1:06d}"
    responses: list[dict[str, Any]] = []
    seen: set[str] = set()
    for j in range(k):
        z = rho * z_reward[j] + math.sqrt(1 - rho * rho) * draws.gauss()
        target = round(MEDIAN_WORDS * math.exp(LENGTH_SIGMA * z))
        target = min(MAX_WORDS, max(MIN_WORDS, target))
        attempt = 0
        while True:  # texts of one item must differ: annotators find responses by their text
            text = texts.response_text(Draws(config.seed, "text", n, j, attempt), name, target)
            if text not in seen:
                break
            attempt += 1
        seen.add(text)
        responses.append({"id": f"{external_id}-r{j}", "text": text, "model": models[j]})
    row: dict[str, Any] = {
        "external_id": external_id,
        "prompt": prompt,
        "responses": responses,
        "metadata": dict(categories),
    }
    if config.gold_fraction and draws.chance(config.gold_fraction):
        row["is_gold"] = True
        row["gold_answer"] = _gold_answer(config.kind, order_positions)
    truth = ItemTruth(
        external_id=external_id,
        kind=config.kind,
        order=tuple(responses[j]["id"] for j in order_positions),
        scores={responses[j]["id"]: rewards[j] for j in range(k)},
        difficulty=difficulty,
        categories=categories,
        responses=tuple(
            TruthResponse(r["id"], r["model"], len(r["text"]), text_digest(r["text"]))
            for r in responses
        ),
    )
    return row, truth


def generate_world(config: WorldConfig) -> World:
    world_id = config.world_id()
    strengths = _strengths(config.models)
    items: list[dict[str, Any]] = []
    truths: list[ItemTruth] = []
    for n in range(config.size):
        row, truth = _item(config, world_id, strengths, n)
        items.append(row)
        truths.append(truth)
    return World(world_id, config.kind, items, truths, strengths)


# -- a world of given prompts and responses, judged by a gold reward --------------------------


def _given_responses(row: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    raw = row.get("responses")
    if not isinstance(raw, list) or not raw:
        raise Invalid(f"{where}: responses must be a non-empty list.")
    out = []
    for j, r in enumerate(raw):
        if isinstance(r, str):
            out.append({"text": r})
        elif isinstance(r, dict) and isinstance(r.get("text"), str):
            out.append({k: r[k] for k in ("id", "text", "model") if r.get(k) is not None})
        else:
            raise Invalid(f"{where}: response {j} must be a text or an object with a text.")
    return out


def world_from_rows(
    rows: Iterable[Mapping[str, Any]],
    reward: GoldReward,
    *,
    kind: WorldKind | None = None,
    margin_scale: float = DEFAULT_MARGIN_SCALE,
    source: str = "",
) -> World:
    """A world of given rows `{prompt, responses: [text | {text, model?, id?}], external_id?,
    metadata?}`, whose truth is the reward's score of each response.

    Difficulty is exp(-mean gap between neighbouring scores / margin_scale): equal scores are
    a coin flip for an annotator, a gap of margin_scale a fairly clear call. `source` (e.g.
    the file's sha256) names the world when rows carry no external ids.
    """
    if margin_scale <= 0:
        raise Invalid("margin_scale must be positive.")
    listed = list(rows)
    if not listed:
        raise Invalid("There are no rows to build a world from.")
    digest = hashlib.sha256(f"{source}|{reward.label}|{margin_scale}".encode()).hexdigest()
    world_id = "r" + digest[:6]
    items: list[dict[str, Any]] = []
    truths: list[ItemTruth] = []
    seen_ids: set[str] = set()
    world_kind: WorldKind | None = kind
    for n, row in enumerate(listed):
        where = f"row {n + 1}"
        if not isinstance(row, Mapping) or not isinstance(row.get("prompt"), str):
            raise Invalid(f"{where}: expected an object with a prompt.")
        responses = _given_responses(row, where)
        this_kind: WorldKind = "pairwise" if len(responses) == 2 else "ranking"
        world_kind = world_kind or this_kind
        if world_kind == "pairwise" and len(responses) != 2:
            raise Invalid(f"{where}: a pairwise world needs 2 responses per row.")
        if len(responses) < 2:
            raise Invalid(f"{where}: a world compares at least 2 responses per row.")
        external_id = str(row.get("external_id") or f"{world_id}-{n + 1:06d}")
        if external_id in seen_ids:
            raise Invalid(f"{where}: external_id {external_id} repeats an earlier row.")
        seen_ids.add(external_id)
        if len({r["text"] for r in responses}) != len(responses):
            raise Invalid(f"{where}: the responses of one row must have different texts.")
        for j, r in enumerate(responses):
            r.setdefault("id", f"{external_id}-r{j}")
        prompt = row["prompt"]
        scores = {r["id"]: reward.score(prompt, r["text"]) for r in responses}
        ids = [r["id"] for r in responses]
        if len(set(ids)) != len(ids):
            raise Invalid(f"{where}: response ids must be unique within a row.")
        order = sorted(ids, key=lambda i: -scores[i])
        ranked = [scores[i] for i in order]
        mean_gap = (ranked[0] - ranked[-1]) / (len(ranked) - 1)
        metadata = dict(row.get("metadata") or {})
        items.append(
            {
                "external_id": external_id,
                "prompt": prompt,
                "responses": responses,
                "metadata": metadata,
            }
        )
        truths.append(
            ItemTruth(
                external_id=external_id,
                kind=world_kind,
                order=tuple(order),
                scores=scores,
                difficulty=round(math.exp(-mean_gap / margin_scale), 4),
                categories={k: str(v) for k, v in metadata.items() if isinstance(v, str)},
                responses=tuple(
                    TruthResponse(r["id"], r.get("model"), len(r["text"]), text_digest(r["text"]))
                    for r in responses
                ),
            )
        )
    assert world_kind is not None
    return World(world_id, world_kind, items, truths, {}, reward=reward.label)
