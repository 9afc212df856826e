"""Request bodies of the quality routes (answers are the service's JSON, see README)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

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


class AdjudicationBody(_Body):
    """Pairwise: `preferred` (a response id of the item) or `tie: true`; ranking: `order`."""

    preferred: ResponseId | None = None
    tie: Annotated[bool, Field(strict=True)] = False
    order: Annotated[list[ResponseId], Field(min_length=2, max_length=16)] | None = None
    note: Annotated[str, StringConstraints(max_length=2_000), STORABLE] = ""
