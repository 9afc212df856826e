"""The structured facts a judge puts in `GenerationRequest.context` beside the rendered prompt.

Real models read only the prompt text; the simulated judge reads only these. A judge fills
both from the same item, so that every backend is asked the same question. All keys are
optional for real models; the simulated judge needs `kind` and `responses`.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

TaskKind = Literal["pairwise", "ranking", "span", "critique"]


class ShownResponse(TypedDict, total=False):
    id: str  # the response's id as imported (the truth file refers to it)
    index: int  # its position in the item as imported (gold answers refer to it)
    text: str
    model: str | None


class JudgeContext(TypedDict, total=False):
    kind: TaskKind
    # The responses in the order the prompt shows them.
    responses: list[ShownResponse]
    # The names the prompt gives them, in the same order (default "A", "B", "C", ...): a
    # pairwise answer is one of them, a ranking answer is them joined by " > ".
    labels: list[str]
    item_id: int
    external_id: str | None
    metadata: dict[str, Any]
    prompt: str  # the item's prompt (a simulated judge's gold reward scores against it)
    span_labels: list[str]  # span kind: the project's labels
    rating_scale: int  # critique kind: ratings run from 1 to this (default 7)


DEFAULT_RATING_SCALE = 7


def default_labels(count: int) -> list[str]:
    return [chr(ord("A") + i) for i in range(count)]
