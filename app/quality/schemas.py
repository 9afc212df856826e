"""Request bodies of the quality routes (answers are the service's JSON, see README)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.annotations.payloads import MAX_SPANS, Span
from app.quality.service import Decision
from app.validation import BIGINT_MAX, STORABLE

# Strict: a JSON true or "0.5" is not a share (the fuzz suite sends them).
Share = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False, strict=True)]
ResponseId = Annotated[int, Field(ge=1, le=BIGINT_MAX, strict=True)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QualitySettingsPatch(_Body):
    """Fields to change; `gold_pause_below: null` turns automatic pauses off."""

    gold_warn_below: Share | None = None
    gold_pause_below: Share | None = None
    gold_min_answers: Annotated[int, Field(ge=1, le=100_000, strict=True)] | None = None
    review_below: Share | None = None

    def changes(self) -> dict[str, object]:
        out = self.model_dump(exclude_unset=True)
        # Only the pause threshold may be null (off); the others keep their value when null.
        return {k: v for k, v in out.items() if v is not None or k == "gold_pause_below"}


class PauseBody(_Body):
    reason: Annotated[str, StringConstraints(max_length=500), STORABLE] = ""


Rating = Annotated[int, Field(ge=1, le=7, strict=True)]


class AdjudicationBody(_Body):
    """Pairwise: `preferred` (a response id of the item) or `tie: true`; ranking: `order`;
    span: `spans` (and `overall`); critique: `critique` (and `rewrite`, `rating`). Span and
    critique decisions may start from an annotation of the item (`from_annotation`), whose
    label the fields given replace."""

    preferred: ResponseId | None = None
    tie: Annotated[bool, Field(strict=True)] = False
    order: Annotated[list[ResponseId], Field(min_length=2, max_length=16)] | None = None
    spans: Annotated[list[Span], Field(max_length=MAX_SPANS)] | None = None
    overall: Rating | None = None
    critique: (
        Annotated[
            str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50_000), STORABLE
        ]
        | None
    ) = None
    rewrite: Annotated[str, StringConstraints(max_length=200_000), STORABLE] | None = None
    rating: Rating | None = None
    from_annotation: ResponseId | None = None
    note: Annotated[str, StringConstraints(max_length=2_000), STORABLE] = ""

    def decision(self) -> Decision:
        spans = (
            None if self.spans is None else [x.model_dump(exclude_none=True) for x in self.spans]
        )
        return Decision(
            preferred=self.preferred,
            tie=self.tie,
            order=self.order,
            spans=spans,
            overall=self.overall,
            critique=self.critique,
            rewrite=self.rewrite,
            rating=self.rating,
            from_annotation=self.from_annotation,
        )
