"""One chunk of items through a backend: questions from the template, answers, parsed votes.

No database here: the job reads the items, calls `judge_chunk` outside any transaction, and
stores what it returns. Pairwise items are asked twice, in both orders (the position swap);
the other kinds once, in the imported order. The simulated backend reads the same question
from `GenerationRequest.context`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.inference.base import (
    Backend,
    ChatMessage,
    Completion,
    GenerationRequest,
    SamplingParams,
)
from app.inference.context import DEFAULT_RATING_SCALE, JudgeContext, default_labels
from app.judges import parsing, templates
from app.projects.rules import TaskRules


@dataclass(frozen=True, slots=True)
class ItemView:
    id: int
    external_id: str | None
    prompt: str
    metadata: dict[str, Any]
    response_ids: list[int]  # imported order
    response_external_ids: list[str | None]
    texts: list[str]


@dataclass(frozen=True, slots=True)
class TemplateView:
    id: int
    version: int
    system: str
    user: str
    inconsistent: str


@dataclass(frozen=True, slots=True)
class Costs:
    per_call: float = 0.0
    per_1k_input: float = 0.0
    per_1k_output: float = 0.0

    @classmethod
    def of(cls, costs: Mapping[str, Any]) -> Costs:
        return cls(**{k: float(v) for k, v in costs.items() if k in cls.__dataclass_fields__})

    def of_calls(self, calls: int, tokens_in: int, tokens_out: int) -> float:
        return (
            calls * self.per_call
            + tokens_in / 1000 * self.per_1k_input
            + tokens_out / 1000 * self.per_1k_output
        )


@dataclass(slots=True)
class Judged:
    """One item's result: the parsed vote (or why none) and its accounting."""

    item_id: int
    parsed: parsing.Parsed
    shown_order: list[int]  # response ids as the stored vote's shown order
    raw: list[dict[str, Any]]
    model: str
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0
    cost: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Question:
    item: ItemView
    shown: list[int]  # positions in imported order, as shown
    request: GenerationRequest


def _questions(
    item: ItemView,
    rules: TaskRules,
    guidelines: str,
    template: TemplateView,
    sampling: SamplingParams,
) -> list[Question]:
    kind = rules.kind.value
    n = len(item.texts)
    orders = [[0, 1], [1, 0]] if kind == "pairwise" else [list(range(n))]
    questions = []
    for order in orders:
        labels = default_labels(n)
        values = {"prompt": item.prompt, "guidelines": guidelines or "(none)"}
        if kind == "pairwise":
            values |= {
                "response_a": item.texts[order[0]],
                "response_b": item.texts[order[1]],
                "label_a": labels[0],
                "label_b": labels[1],
            }
        elif kind == "ranking":
            values |= {
                "responses": "\n\n".join(
                    f"Response {labels[k]}:\n{item.texts[p]}" for k, p in enumerate(order)
                ),
                "labels": " > ".join(labels),
                "count": str(n),
            }
        else:
            values |= {
                "response": item.texts[0],
                "span_labels": ", ".join(rules.span_labels),
                "rating_scale": str(DEFAULT_RATING_SCALE),
            }
        context: JudgeContext = {
            "kind": rules.kind.value,
            "responses": [
                {
                    "id": item.response_external_ids[p] or str(item.response_ids[p]),
                    "index": p,
                    "text": item.texts[p],
                }
                for p in order
            ],
            "labels": labels,
            "item_id": item.id,
            "external_id": item.external_id,
            "metadata": item.metadata,
            "prompt": item.prompt,
            "span_labels": list(rules.span_labels),
            "rating_scale": DEFAULT_RATING_SCALE,
        }
        messages = tuple(
            ChatMessage(role, text)
            for role, text in (
                ("system", templates.render(template.system, values)),
                ("user", templates.render(template.user, values)),
            )
            if text
        )
        request = GenerationRequest(messages=messages, params=sampling, context=dict(context))
        questions.append(Question(item, order, request))
    return questions


def render_item(
    item: ItemView, rules: TaskRules, guidelines: str, template: TemplateView
) -> list[GenerationRequest]:
    """The requests an item becomes (for "try on one item")."""
    return [q.request for q in _questions(item, rules, guidelines, template, SamplingParams())]


def judge_chunk(
    backend: Backend,
    items: Sequence[ItemView],
    rules: TaskRules,
    guidelines: str,
    template: TemplateView,
    sampling: SamplingParams,
    costs: Costs,
) -> list[Judged]:
    """Ask the backend about every item in one batch and parse the answers.

    Raises BackendError (nothing judged) when the batch fails: a batch is all or nothing.
    """
    questions = [
        q for item in items for q in _questions(item, rules, guidelines, template, sampling)
    ]
    answers = backend.generate([q.request for q in questions])
    results: list[Judged] = []
    k = 0
    for item in items:
        asked = [q for q in questions[k : k + (2 if rules.kind.value == "pairwise" else 1)]]
        got = [answers[k + j][0] for j in range(len(asked))]
        k += len(asked)
        results.append(_judged(item, asked, got, rules, template, costs))
    return results


def _judged(
    item: ItemView,
    asked: list[Question],
    got: list[Completion],
    rules: TaskRules,
    template: TemplateView,
    costs: Costs,
) -> Judged:
    ids = item.response_ids
    kind = rules.kind.value
    shown_ids = [[ids[p] for p in q.shown] for q in asked]
    texts = {ids[p]: item.texts[p] for p in range(len(ids))}
    if kind == "pairwise":
        parsed = parsing.parse_pairwise(got, shown_ids, rules, texts, template.inconsistent)
    elif kind == "ranking":
        labels = default_labels(len(ids))
        parsed = parsing.parse_ranking(got[0], shown_ids[0], rules, labels)
    elif kind == "span":
        parsed = parsing.parse_span(got[0], ids[0], item.texts[0], rules)
    else:
        parsed = parsing.parse_critique(got[0], ids[0], rules, DEFAULT_RATING_SCALE)
    # A request's prompt tokens are counted once (its n completions share them).
    tokens_in = sum(c.tokens_in for c in got)
    tokens_out = sum(c.tokens_out for c in got)
    raw = [
        {
            "shown": s,
            "text": c.text,
            "finish_reason": c.finish_reason,
            "tokens_in": c.tokens_in,
            "tokens_out": c.tokens_out,
            "latency_s": round(c.latency_s, 6),
            **({"logprobs": _top(c)} if c.logprobs else {}),
        }
        for s, c in zip(shown_ids, got, strict=True)
    ]
    return Judged(
        item_id=item.id,
        parsed=parsed,
        shown_order=shown_ids[0],
        raw=raw,
        model=got[0].model,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        latency_s=max(c.latency_s for c in got),
        cost=costs.of_calls(len(got), tokens_in, tokens_out),
    )


def _top(c: Completion) -> list[dict[str, Any]]:
    """The first few answer tokens with their alternatives: enough to recompute a probability."""
    assert c.logprobs is not None
    return [
        {
            "token": t.token,
            "logprob": round(t.logprob, 6),
            "top": [[a, round(b, 6)] for a, b in t.top],
        }
        for t in c.logprobs[:4]
    ]
