"""Prompt templates per task kind: the defaults that ship, placeholder checks, and rendering.

A template is a system and a user message with `{placeholders}`. Rendering replaces only the
known names (a JSON example in a template, `{"quote": ...}`, is text, not a placeholder), so
item text containing braces is never interpreted. Every kind's template must show the task:
pairwise `{response_a}` and `{response_b}`, ranking `{responses}`, span and critique
`{response}`; `{prompt}` and `{guidelines}` (the project's guidelines, the text humans see)
are available to all and required in the user message, so that a judge reads what people read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from app.errors import Invalid

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

COMMON = ("prompt", "guidelines")
REQUIRED: dict[str, tuple[str, ...]] = {
    "pairwise": (*COMMON, "response_a", "response_b"),
    "ranking": (*COMMON, "responses"),
    "span": (*COMMON, "response", "span_labels"),
    "critique": (*COMMON, "response"),
}
OPTIONAL: dict[str, tuple[str, ...]] = {
    "pairwise": ("label_a", "label_b"),
    "ranking": ("labels", "count"),
    "span": (),
    "critique": ("rating_scale",),
}
INCONSISTENT_RULES = ("tie", "low_confidence")


class InvalidTemplate(Invalid):
    code = "invalid_template"


_SYSTEM = (
    "You are a careful evaluator of AI assistant responses. Follow the annotation guidelines "
    "exactly and answer only in the format asked for."
)

DEFAULTS: dict[str, tuple[str, str]] = {
    "pairwise": (
        _SYSTEM,
        "Guidelines:\n{guidelines}\n\n"
        "User request:\n{prompt}\n\n"
        "Response A:\n{response_a}\n\n"
        "Response B:\n{response_b}\n\n"
        "Which response is better? Answer with a single letter: A or B.",
    ),
    "ranking": (
        _SYSTEM,
        "Guidelines:\n{guidelines}\n\n"
        "User request:\n{prompt}\n\n"
        "{responses}\n\n"
        "Rank all {count} responses from best to worst. Answer only with their letters "
        "joined by ' > ', for example: {labels}",
    ),
    "span": (
        _SYSTEM,
        "Guidelines:\n{guidelines}\n\n"
        "User request:\n{prompt}\n\n"
        "Response:\n{response}\n\n"
        "Find the erroneous passages of the response. Answer only with JSON: "
        '{"spans": [{"quote": "<exact text copied from the response>", "label": "<label>"}]} '
        'where each label is one of: {span_labels}. Answer {"spans": []} if there is none.',
    ),
    "critique": (
        _SYSTEM,
        "Guidelines:\n{guidelines}\n\n"
        "User request:\n{prompt}\n\n"
        "Response:\n{response}\n\n"
        "Critique the response. Answer only with JSON: "
        '{"critique": "<what is wrong or right>", "rewrite": "<an improved response, '
        'optional>", "rating": <an integer from 1 to {rating_scale}>}',
    ),
}


def check(kind: str, system: str, user: str, inconsistent: str = "low_confidence") -> None:
    """Refuse a template that lacks a required placeholder or names an unknown one (422)."""
    if kind not in REQUIRED:
        raise InvalidTemplate(f"Unknown task kind {kind!r}.", field="kind")
    known = set(REQUIRED[kind]) | set(OPTIONAL[kind])
    for name, text in (("system", system), ("user", user)):
        unknown = sorted({m for m in PLACEHOLDER.findall(text) if m not in known})
        if unknown:
            raise InvalidTemplate(
                f"The {name} message of a {kind} template has unknown placeholders: "
                f"{', '.join('{' + u + '}' for u in unknown)}; known: "
                f"{', '.join('{' + k + '}' for k in sorted(known))}.",
                field=name,
            )
    present = set(PLACEHOLDER.findall(user))
    missing = [r for r in REQUIRED[kind] if r not in present]
    if missing:
        raise InvalidTemplate(
            f"The user message of a {kind} template must contain "
            f"{', '.join('{' + m + '}' for m in missing)}.",
            field="user",
        )
    if inconsistent not in INCONSISTENT_RULES:
        raise InvalidTemplate(
            f"inconsistent must be one of {', '.join(INCONSISTENT_RULES)}.", field="inconsistent"
        )


def render(text: str, values: Mapping[str, str]) -> str:
    """Replace each known `{name}` with its value; everything else stays as written."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


@dataclass(frozen=True, slots=True)
class Rendered:
    system: str
    user: str
