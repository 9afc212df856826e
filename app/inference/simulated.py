"""The `simulated` backend: a seeded judge with configured accuracy and biases (AlpacaFarm-style).

It reads the facts of the question from `GenerationRequest.context` (`app.inference.context`),
looks the true answer up (a JSONL truth file keyed by the item's external_id, or a key of the
item's metadata), and answers with the text a real model would give, so that judges parse all
backends the same way:

* pairwise: the label of the chosen response (`A` or `B`), one token, whose log-probability
  and alternative carry the judge's confidence;
* ranking: the labels best first, joined by ` > ` (`B > A > C`);
* span: JSON `{"spans": [{"quote": "<exact text of the response>", "label": "<label>"}]}`;
* critique: JSON `{"critique": "<sentence>", "rating": <1..rating_scale>}`.

The model of the judge. Per item the judge is either sure (it answers the truth) or unsure (it
answers like a guess: chance level). The share of sure items is set so that the judge's
accuracy is the configured one: P(correct) = accuracy when the responses' positions and
lengths carry no information about the truth, where chance is 1/2 for pairwise, for each pair
of a ranking and for each true span found, and 1/rating_scale for critique ratings. An unsure
pairwise or ranking judge follows its biases: with weight |2*position_bias - 1| it prefers
the first shown (the last when below 0.5), with weight |2*length_bias - 1| the longer (the
shorter when below 0.5), otherwise it picks at random. So, among its wrong pairwise answers,
the share that picked the first shown response is `position_bias` and the share that picked
the longer one is `length_bias`. Whether an item is sure is drawn once per (seed, item): both
orders of a position swap agree on sure items and may disagree on unsure ones, as with real
judges. Reported confidence is `confidence_sure` or `confidence_unsure` (± 0.03).

Everything is drawn from the seed and the item, so a judge answers the same question the same
way every time. Completions name the model `simulated:<seed>`; their token counts are counts
of words and punctuation marks.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.inference.base import BackendError, Completion, GenerationRequest, TokenLogprob
from app.inference.context import DEFAULT_RATING_SCALE, default_labels
from app.inference.registry import BackendParams, register

_JITTER = 0.03
_WORD = re.compile(r"\w+|[^\w\s]")
_CRITIQUES = (
    (6, "The response is accurate, complete and clearly written."),
    (4, "The response is mostly correct but misses some details of the request."),
    (2, "The response contains errors and leaves part of the request unanswered."),
    (1, "The response is wrong or does not address the request."),
)


class AccuracyTable(BaseModel):
    """Accuracy by the value of one metadata key, e.g. {"by": "category", "accuracy": {...}}."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    by: str = Field(min_length=1)
    accuracy: dict[str, float]
    default: float = Field(default=0.8, ge=0, le=1)  # items whose value is not listed

    @model_validator(mode="after")
    def _probabilities(self) -> AccuracyTable:
        bad = [k for k, v in self.accuracy.items() if not 0 <= v <= 1]
        if bad:
            raise ValueError(f"accuracies must be between 0 and 1 (for {', '.join(bad)})")
        return self


class TruthSource(BaseModel):
    """Where the true answers are: exactly one of `file` and `metadata_key`.

    A truth file has one JSON object per line: `external_id` and the truth. The truth (in the
    file, or the metadata value) is, by kind: pairwise `{"winner": "<response id>"}` or
    `{"choice": "a"|"b"|"tie"}` (positions as imported, like a gold answer); ranking
    `{"order": [ids or imported positions, best first]}` or `{"scores": {id: number}}` (either
    also serves pairwise); span `{"spans": [{"start", "end", "label"}]}`; critique
    `{"rating": n}`.

    `gold_reward` (a name of app.simulate.rewards, e.g. "on_topic") needs no stored truth: the
    true order is by that reward's score of each shown response against the prompt
    (AlpacaFarm's simulated annotators; for pairwise and ranking questions). It judges text
    nobody labelled, such as a policy's samples in a training run's evaluation.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    file: str | None = None
    metadata_key: str | None = None
    gold_reward: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> TruthSource:
        given = [x for x in (self.file, self.metadata_key, self.gold_reward) if x is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of truth.file, truth.metadata_key, truth.gold_reward"
            )
        if self.gold_reward is not None:
            from app.errors import Invalid
            from app.simulate.rewards import get_reward

            try:
                get_reward(self.gold_reward)
            except Invalid as exc:
                raise ValueError(exc.message) from None
        return self


class SimulatedParams(BackendParams):
    truth: TruthSource
    seed: int = 0
    accuracy: float | AccuracyTable = Field(default=0.8)
    position_bias: float = Field(default=0.5, ge=0, le=1)
    length_bias: float = Field(default=0.5, ge=0, le=1)
    confidence_sure: float = Field(default=0.95, ge=0.5, le=1)
    confidence_unsure: float = Field(default=0.55, ge=0.5, le=1)

    @model_validator(mode="after")
    def _consistent(self) -> SimulatedParams:
        if isinstance(self.accuracy, float) and not 0 <= self.accuracy <= 1:
            raise ValueError("accuracy must be between 0 and 1")
        if abs(2 * self.position_bias - 1) + abs(2 * self.length_bias - 1) > 1 + 1e-9:
            raise ValueError(
                "position_bias and length_bias together leave no room: "
                "|2*position_bias - 1| + |2*length_bias - 1| must be at most 1"
            )
        return self


def load_truth_file(path: str) -> dict[str, Mapping[str, Any]]:
    truths: dict[str, Mapping[str, Any]] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BackendError(f"Truth file {path}, line {number}: {exc.msg}.") from None
                if not isinstance(row, dict) or not isinstance(row.get("external_id"), str):
                    raise BackendError(
                        f"Truth file {path}, line {number}: expected an object with an external_id."
                    )
                truths[row["external_id"]] = row
    except OSError as exc:
        raise BackendError(f"Cannot read the truth file {path}: {exc.strerror}.") from None
    return truths


class SimulatedJudge:
    name = "simulated"

    def __init__(self, model: str, params: SimulatedParams) -> None:
        self.model = model
        self.params = params
        self.model_name = f"simulated:{params.seed}"
        file = params.truth.file
        self._truths = load_truth_file(str(Path(file).expanduser())) if file else None

    def close(self) -> None:
        """Holds nothing."""

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        return [self._answer(request) for request in requests]

    # -- one request ---------------------------------------------------------------------

    def _answer(self, request: GenerationRequest) -> list[Completion]:
        started = time.perf_counter()
        ctx = request.context
        kind = ctx.get("kind")
        responses = ctx.get("responses")
        if kind not in ("pairwise", "ranking", "span", "critique") or not responses:
            raise BackendError(
                "The simulated judge needs context.kind (pairwise, ranking, span or critique) "
                "and context.responses."
            )
        item = _item_key(ctx)
        truth = self._truth(ctx, item)
        accuracy = self._accuracy(ctx)
        prompt_text = request.prompt or "\n".join(m.content for m in request.messages)
        tokens_in = len(_WORD.findall(prompt_text))
        completions = []
        for sample in range(request.params.n):
            shown = "/".join(str(r.get("id", r.get("text"))) for r in responses)
            rng = random.Random(f"{self.params.seed}|{item}|{shown}|{request.params.seed}|{sample}")
            if kind in ("pairwise", "ranking"):
                text, logprobs = self._order(ctx, truth, item, accuracy, rng)
            elif kind == "span":
                text, logprobs = self._spans(ctx, truth, item, accuracy, rng)
            else:
                text, logprobs = self._critique(ctx, truth, item, accuracy, rng)
            k = request.params.top_logprobs
            completions.append(
                Completion(
                    text=text,
                    tokens_in=tokens_in,
                    tokens_out=len(_WORD.findall(text)),
                    latency_s=time.perf_counter() - started,
                    model=self.model_name,
                    logprobs=None
                    if k is None
                    else tuple(TokenLogprob(t.token, t.logprob, t.top[:k]) for t in logprobs),
                )
            )
        return completions

    def _truth(self, ctx: Mapping[str, Any], item: str) -> Mapping[str, Any]:
        source = self.params.truth
        if source.gold_reward is not None:
            from app.simulate.rewards import get_reward

            reward, prompt = get_reward(source.gold_reward), str(ctx.get("prompt") or "")
            shown = ctx["responses"]
            return {"scores": {str(r.get("id")): reward.score(prompt, r["text"]) for r in shown}}
        if self._truths is not None:
            external_id = ctx.get("external_id")
            truth = self._truths.get(str(external_id)) if external_id is not None else None
            where = f"in {source.file} for external_id {external_id!r}"
        else:
            truth = (ctx.get("metadata") or {}).get(source.metadata_key)
            where = f"in the item's metadata key {source.metadata_key!r} ({item})"
        if not isinstance(truth, Mapping):
            raise BackendError(f"The simulated judge has no truth {where}.")
        return truth

    def _accuracy(self, ctx: Mapping[str, Any]) -> float:
        table = self.params.accuracy
        if not isinstance(table, AccuracyTable):
            return table
        value = (ctx.get("metadata") or {}).get(table.by)
        return table.accuracy.get(str(value), table.default) if value is not None else table.default

    def _is_sure(self, item: str, accuracy: float, chance: float) -> bool:
        share = max(0.0, (accuracy - chance) / (1 - chance))
        return random.Random(f"{self.params.seed}|sure|{item}").random() < share

    def _confidence(self, sure: bool, rng: random.Random) -> float:
        base = self.params.confidence_sure if sure else self.params.confidence_unsure
        return min(0.999, max(0.5, base + rng.uniform(-_JITTER, _JITTER)))

    # -- pairwise and ranking ------------------------------------------------------------

    def _order(
        self,
        ctx: Mapping[str, Any],
        truth: Mapping[str, Any],
        item: str,
        accuracy: float,
        rng: random.Random,
    ) -> tuple[str, list[TokenLogprob]]:
        responses = ctx["responses"]
        labels = list(ctx.get("labels") or default_labels(len(responses)))
        if len(labels) != len(responses):
            raise BackendError("context.labels must name each shown response once.")
        true_order = _true_order(truth, responses, item)
        sure = true_order is not None and self._is_sure(item, accuracy, 0.5)
        order = true_order if sure and true_order is not None else self._guess(responses, rng)
        confidence = self._confidence(sure, rng)
        if ctx["kind"] == "pairwise":
            if len(responses) != 2:
                raise BackendError("A pairwise question shows exactly two responses.")
            chosen, other = labels[order[0]], labels[order[1]]
            pair = ((chosen, math.log(confidence)), (other, math.log1p(-confidence)))
            return chosen, [TokenLogprob(chosen, math.log(confidence), pair)]
        pieces: list[TokenLogprob] = []
        remaining = [labels[p] for p in order]
        for rank, position in enumerate(order):
            if rank:
                pieces.append(TokenLogprob(" >", 0.0, ((" >", 0.0),)))
            label = labels[position]
            remaining.remove(label)
            rest = (1 - confidence) / len(remaining) if remaining else 0.0
            prefix = " " if rank else ""
            lp = math.log(confidence) if remaining else 0.0
            top = ((prefix + label, lp), *((prefix + o, math.log(rest)) for o in remaining))
            pieces.append(TokenLogprob(prefix + label, lp, top))
        return " > ".join(labels[p] for p in order), pieces

    def _guess(self, responses: Sequence[Mapping[str, Any]], rng: random.Random) -> list[int]:
        """An unsure judge's order of the shown positions, best first, following its biases."""
        k = len(responses)
        positional = abs(2 * self.params.position_bias - 1)
        lengthwise = abs(2 * self.params.length_bias - 1)
        draw = rng.random()
        if draw < positional:
            order = list(range(k))
            return order if self.params.position_bias >= 0.5 else order[::-1]
        if draw < positional + lengthwise:
            lengths = [len(str(r.get("text", ""))) for r in responses]
            sign = -1 if self.params.length_bias >= 0.5 else 1
            # Equal lengths give no preference: ties are broken at random.
            return sorted(range(k), key=lambda p: (sign * lengths[p], rng.random()))
        order = list(range(k))
        rng.shuffle(order)
        return order

    # -- span ----------------------------------------------------------------------------

    def _spans(
        self,
        ctx: Mapping[str, Any],
        truth: Mapping[str, Any],
        item: str,
        accuracy: float,
        rng: random.Random,
    ) -> tuple[str, list[TokenLogprob]]:
        text = str(ctx["responses"][0].get("text", ""))
        labels = list(ctx.get("span_labels") or [])
        true_spans = truth.get("spans")
        if not isinstance(true_spans, list):
            raise BackendError(f"The truth for {item} has no list of spans.")
        spans: list[tuple[int, int, str]] = []
        for s in true_spans:
            try:
                start, end, label = int(s["start"]), int(s["end"]), str(s["label"])
            except (KeyError, TypeError, ValueError):
                raise BackendError(f"The truth for {item} has a malformed span: {s!r}.") from None
            if not 0 <= start < end <= len(text):
                raise BackendError(f"The truth for {item} has a span outside the response: {s!r}.")
            spans.append((start, end, label))
        sure = self._is_sure(item, accuracy, 0.5)
        if not sure:
            spans = [s for s in spans if rng.random() < 0.5]
            words = list(re.finditer(r"\S+", text))
            if words and labels and rng.random() < 0.5:
                first = rng.randrange(len(words))
                last = min(len(words) - 1, first + rng.randrange(4))
                spans.append((words[first].start(), words[last].end(), rng.choice(labels)))
        spans.sort()
        answer = json.dumps(
            {"spans": [{"quote": text[a:b], "label": label} for a, b, label in spans]},
            ensure_ascii=False,
        )
        confidence = self._confidence(sure, rng)
        return answer, [
            TokenLogprob(answer, math.log(confidence), ((answer, math.log(confidence)),))
        ]

    # -- critique ------------------------------------------------------------------------

    def _critique(
        self,
        ctx: Mapping[str, Any],
        truth: Mapping[str, Any],
        item: str,
        accuracy: float,
        rng: random.Random,
    ) -> tuple[str, list[TokenLogprob]]:
        scale = int(ctx.get("rating_scale") or DEFAULT_RATING_SCALE)
        true_rating = truth.get("rating")
        if not isinstance(true_rating, int) or not 1 <= true_rating <= scale:
            raise BackendError(f"The truth for {item} has no rating between 1 and {scale}.")
        sure = self._is_sure(item, accuracy, 1 / scale)
        rating = true_rating if sure else rng.randint(1, scale)
        critique = next(sentence for floor, sentence in _CRITIQUES if rating >= floor)
        head = json.dumps({"critique": critique, "rating": 0}, ensure_ascii=False)[:-2]
        confidence = self._confidence(sure, rng)
        rest = (1 - confidence) / (scale - 1)
        top = (
            (str(rating), math.log(confidence)),
            *((str(r), math.log(rest)) for r in range(1, scale + 1) if r != rating),
        )
        pieces = [
            TokenLogprob(head, 0.0, ((head, 0.0),)),
            TokenLogprob(str(rating), math.log(confidence), top),
            TokenLogprob("}", 0.0, (("}", 0.0),)),
        ]
        return head + str(rating) + "}", pieces


def _item_key(ctx: Mapping[str, Any]) -> str:
    if ctx.get("external_id") is not None:
        return f"external_id:{ctx['external_id']}"
    if ctx.get("item_id") is not None:
        return f"item:{ctx['item_id']}"
    # No id: the item is known by what it shows (stable across position swaps).
    return "texts:" + "|".join(sorted(str(r.get("text", "")) for r in ctx["responses"]))


def _true_order(
    truth: Mapping[str, Any], responses: Sequence[Mapping[str, Any]], item: str
) -> list[int] | None:
    """The shown positions, best first; None when the truth has no strict preference."""
    by_id = {str(r.get("id")): p for p, r in enumerate(responses)}
    by_index = {r.get("index"): p for p, r in enumerate(responses)}

    def position(ref: Any) -> int:
        found = by_index.get(ref) if isinstance(ref, int) else by_id.get(str(ref))
        if found is None:
            raise BackendError(f"The truth for {item} names a response that is not shown: {ref!r}.")
        return found

    if isinstance(truth.get("scores"), Mapping):
        scores = [truth["scores"].get(str(r.get("id"))) for r in responses]
        if any(not isinstance(s, int | float) for s in scores):
            raise BackendError(f"The truth for {item} lacks a score for a shown response.")
        if len(set(scores)) < len(scores):
            return None
        return sorted(range(len(responses)), key=lambda p: -scores[p])
    if isinstance(truth.get("order"), list):
        order = [position(ref) for ref in truth["order"]]
        if sorted(order) != list(range(len(responses))):
            raise BackendError(f"The truth for {item} is not an order of the shown responses.")
        return order
    if "winner" in truth:
        winner = position(truth["winner"])
        return [winner] + [p for p in range(len(responses)) if p != winner]
    choice = truth.get("choice")
    if choice in ("a", "b"):
        winner = position(0 if choice == "a" else 1)
        return [winner] + [p for p in range(len(responses)) if p != winner]
    if choice == "tie":
        return None
    raise BackendError(f"The truth for {item} has no winner, choice, order or scores.")


@register(
    "simulated",
    params=SimulatedParams,
    where="in any worker; no model: answers from a truth file or item metadata",
)
def create_simulated(model: str, params: SimulatedParams) -> SimulatedJudge:
    return SimulatedJudge(model, params)
