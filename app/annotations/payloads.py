"""Annotation payloads: a discriminated union per task kind, checked against the project and item.

Clients speak in displayed positions (pairwise "a" is whichever response was shown first);
storage speaks in response ids, so that position bias can be measured afterwards for humans
and judges alike. `resolve` does that translation after every check has passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from app.errors import Invalid, ValidationFailed, describe_errors, sentence
from app.projects.rules import TaskRules
from app.validation import BIGINT_MAX, STORABLE

SCHEMA_VERSION = 1
MAX_SPANS = 1000

Side = Literal["a", "b", "tie"]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


# Offsets and ids are ints within BIGINT, whatever a client sends.
Offset = Annotated[int, Field(ge=0, le=BIGINT_MAX, strict=True)]


class PairwisePayload(_Payload):
    kind: Literal["pairwise"]
    choice: Side
    strength: Annotated[int, Field(ge=1, le=3, strict=True)] | None = None
    rationale: Annotated[str, StringConstraints(max_length=20_000), STORABLE] | None = None
    aspects: dict[Annotated[str, StringConstraints(max_length=64), STORABLE], Side] | None = None


class RankingPayload(_Payload):
    kind: Literal["ranking"]
    # Response ids in a submission, positions (from 0) in a gold answer.
    order: Annotated[
        list[Annotated[int, Field(ge=0, le=BIGINT_MAX, strict=True)]],
        Field(min_length=2, max_length=16),
    ]


class Span(_Payload):
    start: Offset
    end: Annotated[Offset, Field(ge=1)]
    label: Annotated[str, StringConstraints(min_length=1, max_length=64), STORABLE]
    comment: Annotated[str, StringConstraints(max_length=2_000), STORABLE] | None = None


class SpanPayload(_Payload):
    kind: Literal["span"]
    spans: Annotated[list[Span], Field(max_length=MAX_SPANS)]
    overall: Annotated[int, Field(ge=1, le=7, strict=True)] | None = None


class CritiquePayload(_Payload):
    kind: Literal["critique"]
    critique: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50_000), STORABLE
    ]
    rewrite: Annotated[str, StringConstraints(max_length=200_000), STORABLE] | None = None
    rating: Annotated[int, Field(ge=1, le=7, strict=True)] | None = None


Payload = Annotated[
    PairwisePayload | RankingPayload | SpanPayload | CritiquePayload, Field(discriminator="kind")
]
_ADAPTER: TypeAdapter[Payload] = TypeAdapter(Payload)


@dataclass(frozen=True, slots=True)
class TaskContext:
    """What a payload is checked against: the project's rules and the item as shown."""

    rules: TaskRules
    shown_order: list[int]  # response ids in displayed order
    response_texts: dict[int, str]


def parse(kind: str, raw: object) -> Payload:
    if not isinstance(raw, dict):
        raise Invalid("payload must be a JSON object.")
    if "kind" in raw and raw["kind"] != kind:
        raise Invalid(f"payload.kind is {raw['kind']!r} but this is a {kind} project.")
    try:
        return _ADAPTER.validate_python({**raw, "kind": kind})
    except ValidationError as err:
        # Locations start with the union's tag (the kind): report them under `payload`.
        errors = describe_errors(err.errors(include_url=False, include_input=False))
        for e in errors:
            e["loc"] = ["payload", *e["loc"][1:]]
        raise ValidationFailed(sentence(errors), errors=errors) from None


def _side(ctx: TaskContext, side: Side, where: str) -> int | None:
    if side == "tie":
        if not ctx.rules.allow_tie:
            raise Invalid(f"{where}: ties are not allowed in this project.")
        return None
    return ctx.shown_order[0 if side == "a" else 1]


def resolve(payload: Payload, ctx: TaskContext) -> dict[str, Any]:
    """Check the payload against the task and return it stored form (response ids)."""
    if isinstance(payload, PairwisePayload):
        preferred = _side(ctx, payload.choice, "payload.choice")
        aspects: dict[str, int | None] = {}
        for name, side in (payload.aspects or {}).items():
            if name not in ctx.rules.aspects:
                allowed = ", ".join(ctx.rules.aspects) or "none"
                raise Invalid(
                    f"payload.aspects: unknown aspect {name!r} (this project has: {allowed})."
                )
            aspects[name] = _side(ctx, side, f"payload.aspects.{name}")
        rejected = None if preferred is None else next(r for r in ctx.shown_order if r != preferred)
        return {
            "preferred": preferred,
            "rejected": rejected,
            "tie": preferred is None,
            "strength": payload.strength,
            "rationale": payload.rationale,
            "aspects": aspects,
        }
    if isinstance(payload, RankingPayload):
        expected = set(ctx.shown_order)
        given = payload.order
        if len(given) != len(expected) or set(given) != expected:
            unknown = sorted(set(given) - expected)
            missing = sorted(expected - set(given))
            repeated = sorted({r for r in given if given.count(r) > 1})
            parts = [
                f"unknown {unknown}" if unknown else "",
                f"missing {missing}" if missing else "",
                f"repeated {repeated}" if repeated else "",
            ]
            detail = "; ".join(p for p in parts if p)
            raise Invalid(
                f"payload.order must list each of the {len(expected)} response ids exactly once"
                f" ({detail})."
            )
        return {"order": list(given)}
    if isinstance(payload, SpanPayload):
        response_id = ctx.shown_order[0]
        length = len(ctx.response_texts[response_id])  # str length counts code points
        spans = []
        for n, span in enumerate(payload.spans):
            if not span.start < span.end <= length:
                raise Invalid(
                    f"payload.spans.{n}: need 0 <= start < end <= {length} (code points in the"
                    f" response), got start={span.start} end={span.end}."
                )
            if span.label not in ctx.rules.span_labels:
                raise Invalid(
                    f"payload.spans.{n}.label {span.label!r} is not one of this project's labels:"
                    f" {', '.join(ctx.rules.span_labels)}."
                )
            spans.append(span.model_dump(exclude_none=True))
        spans.sort(key=lambda s: (s["start"], s["end"], s["label"]))
        return {"response_id": response_id, "spans": spans, "overall": payload.overall}
    assert isinstance(payload, CritiquePayload)
    return {
        "response_id": ctx.shown_order[0],
        "critique": payload.critique,
        "rewrite": payload.rewrite,
        "rating": payload.rating,
    }
