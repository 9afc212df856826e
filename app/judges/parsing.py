"""Reading a judge's raw answers as votes, per task kind; what cannot be read is never a vote.

* pairwise: each order's answer is one label (`A` or `B`, possibly after "Response"); the
  probability that the first imported response is better comes from the label tokens'
  log-probabilities where the backend gives them (normalised over the two labels, averaged over
  both orders), else from the two orders' labels (1 or 0 when they agree, 1/2 when not). An
  inconsistent swap follows the template's rule: `tie` stores a tie (where the project allows
  ties), `low_confidence` stores no vote (status `inconsistent`), never a guess.
* ranking: a listwise answer `B > A > C` (or commas) that must be a permutation of the labels.
* span: JSON `{"spans": [{"quote", "label"}]}`; each quote is located in the response (the n-th
  repeat of a quote finds the n-th occurrence) to get code-point offsets. A quote that is not
  in the response or a label that is not the project's makes the whole answer unparsed: a vote
  without that passage would say it has no error.
* critique: JSON `{"critique", "rewrite"?, "rating"?}`.

Every vote is then checked by the same payload rules as a human's (`app.annotations.payloads`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.annotations import payloads
from app.errors import DomainError
from app.inference.base import Completion, TokenLogprob
from app.projects.rules import TaskRules

_LEAD = re.compile(
    r"^[\s\"'*`#:.\-(\[]*(?:(?:the\s+)?(?:final\s+)?(?:answer|response|output)\b[\s:*\-]*)*", re.I
)
_WORD_END = re.compile(r"^[A-Za-z]+")


@dataclass(frozen=True, slots=True)
class Parsed:
    """A vote in stored form (response ids), or why there is none."""

    status: str  # parsed | unparsed | inconsistent (OutputStatus values)
    payload: dict[str, Any] | None = None
    error: str | None = None
    probability: float | None = None
    consistent: bool | None = None


def unparsed(error: str, **extra: Any) -> Parsed:
    return Parsed("unparsed", error=error, **extra)


def _stored(
    kind: str, client: dict[str, Any], rules: TaskRules, shown: list[int], texts: dict[int, str]
) -> dict[str, Any]:
    payload = payloads.parse(kind, client)
    return payloads.resolve(payload, payloads.TaskContext(rules, shown, texts))


# -- pairwise ---------------------------------------------------------------------------------


def read_label(text: str, labels: Sequence[str]) -> str | None:
    """The label an answer starts with ("A", "Response B.", "**A**"), else None."""
    rest = _LEAD.sub("", text.strip(), count=1)
    word = _WORD_END.match(rest)
    if word is None:
        return None
    found = word.group(0)
    return found if found in labels else None


def label_probability(
    logprobs: Sequence[TokenLogprob] | None, labels: Sequence[str], chosen: str
) -> float | None:
    """P(labels[0]) over the two labels, from the first answer token that is a label."""
    if not logprobs:
        return None
    for token in logprobs:
        if _norm(token.token) != chosen:
            continue
        mass = dict.fromkeys(labels, 0.0)
        for alt, lp in token.top or ((token.token, token.logprob),):
            key = _norm(alt)
            if key in mass:
                mass[key] += math.exp(lp)
        if mass[chosen] == 0.0:
            mass[chosen] = math.exp(token.logprob)
        total = sum(mass.values())
        other = labels[1] if chosen == labels[0] else labels[0]
        if mass[other] == 0.0:
            # The other label is not among the alternatives: all we know is the chosen one's
            # own probability, which is a lower bound of its share.
            p_chosen = max(0.5, min(1.0, mass[chosen]))
            return p_chosen if chosen == labels[0] else 1 - p_chosen
        return mass[labels[0]] / total
    return None


def _norm(token: str) -> str:
    return token.strip().strip("*\"'`.:()[]")


def parse_pairwise(
    answers: Sequence[Completion],
    shown: Sequence[Sequence[int]],
    rules: TaskRules,
    texts: dict[int, str],
    inconsistent_rule: str,
    labels: Sequence[str] = ("A", "B"),
) -> Parsed:
    """`answers[k]` to the question showing response ids `shown[k]` (the second order swapped)."""
    first, second = shown[0]
    chosen: list[int] = []
    probs: list[float | None] = []
    for answer, order in zip(answers, shown, strict=True):
        label = read_label(answer.text, labels)
        if label is None:
            return unparsed(f"The answer {answer.text[:80]!r} does not start with A or B.")
        chosen.append(order[labels.index(label)])
        p_label0 = label_probability(answer.logprobs, labels, label)
        # P(first imported response is better): label 0 names order[0].
        probs.append(
            None if p_label0 is None else (p_label0 if order[0] == first else 1 - p_label0)
        )
    consistent = chosen[0] == chosen[1]
    if all(p is not None for p in probs):
        probability = sum(p for p in probs if p is not None) / len(probs)
    else:
        probability = 1.0 if consistent and chosen[0] == first else 0.0 if consistent else 0.5
    if consistent:
        choice = "a" if chosen[0] == first else "b"
    elif inconsistent_rule == "tie" and rules.allow_tie:
        choice = "tie"
    else:
        return Parsed("inconsistent", probability=probability, consistent=False)
    try:
        payload = _stored("pairwise", {"choice": choice}, rules, [first, second], texts)
    except DomainError as exc:
        return unparsed(exc.message, probability=probability, consistent=consistent)
    return Parsed("parsed", payload, probability=probability, consistent=consistent)


# -- ranking ----------------------------------------------------------------------------------


def parse_ranking(
    answer: Completion, shown: Sequence[int], rules: TaskRules, labels: Sequence[str]
) -> Parsed:
    text = answer.text.strip()
    line = next((ln for ln in text.splitlines() if ">" in ln), text.splitlines()[0] if text else "")
    pieces = [p for p in re.split(r"\s*(?:>|,)\s*", line.strip()) if p.strip()]
    order: list[str] = []
    for piece in pieces:
        label = read_label(piece, labels)
        if label is None:
            return unparsed(f"{piece[:40]!r} in the ranking {line[:80]!r} is not a label.")
        order.append(label)
    if sorted(order) != sorted(labels):
        return unparsed(
            f"The ranking {line[:80]!r} is not an order of all of {', '.join(labels)}, each once."
        )
    ids = [shown[labels.index(label)] for label in order]
    try:
        payload = _stored("ranking", {"order": ids}, rules, list(shown), {})
    except DomainError as exc:
        return unparsed(exc.message)
    return Parsed("parsed", payload)


# -- span and critique (JSON answers) ------------------------------------------------------------


def first_json_object(text: str, key: str) -> dict[str, Any] | None:
    """The first JSON object in the text that has `key` (code fences and prose around allowed)."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict) and key in value:
            return value
    return None


def locate(text: str, quotes: Sequence[str]) -> list[tuple[int, int]] | str:
    """Code-point offsets of each quote (the n-th repeat at the n-th occurrence), or an error."""
    seen: dict[str, int] = {}
    found: list[tuple[int, int]] = []
    for quote in quotes:
        start = -1
        for _ in range(seen.get(quote, 0) + 1):
            start = text.find(quote, start + 1)
            if start < 0:
                break
        if start < 0:
            return f"The quote {quote[:60]!r} is not in the response."
        seen[quote] = seen.get(quote, 0) + 1
        found.append((start, start + len(quote)))
    return found


def parse_span(answer: Completion, response_id: int, text: str, rules: TaskRules) -> Parsed:
    data = first_json_object(answer.text, "spans")
    if data is None or not isinstance(data["spans"], list):
        return unparsed('The answer has no JSON object with a list "spans".')
    quotes: list[str] = []
    labels: list[str] = []
    for n, span in enumerate(data["spans"]):
        if not isinstance(span, dict):
            return unparsed(f"spans.{n} is not an object.")
        quote, label = span.get("quote"), span.get("label")
        if not isinstance(quote, str) or not quote:
            return unparsed(f"spans.{n}.quote is not a non-empty string.")
        if not isinstance(label, str) or label not in rules.span_labels:
            return unparsed(
                f"spans.{n}.label {label!r} is not one of {', '.join(rules.span_labels)}."
            )
        quotes.append(quote)
        labels.append(label)
    located = locate(text, quotes)
    if isinstance(located, str):
        return unparsed(located)
    client = {
        "spans": [
            {"start": a, "end": b, "label": label}
            for (a, b), label in zip(located, labels, strict=True)
        ]
    }
    try:
        payload = _stored("span", client, rules, [response_id], {response_id: text})
    except DomainError as exc:
        return unparsed(exc.message)
    return Parsed("parsed", payload)


def parse_critique(answer: Completion, response_id: int, rules: TaskRules, scale: int) -> Parsed:
    data = first_json_object(answer.text, "critique")
    if data is None:
        return unparsed('The answer has no JSON object with "critique".')
    critique, rewrite, rating = data.get("critique"), data.get("rewrite"), data.get("rating")
    if not isinstance(critique, str) or not critique.strip():
        return unparsed("critique is not a non-empty string.")
    if rewrite is not None and not isinstance(rewrite, str):
        return unparsed("rewrite is not a string.")
    if isinstance(rating, str) and rating.strip().isdigit():
        rating = int(rating.strip())
    if rating is not None and (
        not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= scale
    ):
        return unparsed(f"rating {rating!r} is not an integer from 1 to {scale}.")
    client: dict[str, Any] = {"critique": critique}
    if rewrite:
        client["rewrite"] = rewrite
    if rating is not None:
        client["rating"] = rating
    try:
        payload = _stored("critique", client, rules, [response_id], {})
    except DomainError as exc:
        return unparsed(exc.message)
    return Parsed("parsed", payload)
