"""Gold (control) items: validate expected answers at import, score annotations against them.

An expected answer is written like a payload whose positions refer to the responses in the
order they were imported (pairwise "a" = first imported response, ranking order = 0-based
indices), so it can be given before the responses have database ids.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

from app.annotations.payloads import TaskContext, parse, resolve
from app.errors import Invalid
from app.projects.rules import TaskKind, TaskRules


def normalize_expected(rules: TaskRules, answer: object, texts: list[str]) -> dict[str, Any]:
    """Check an expected answer against the imported row; store it resolved to import positions."""
    if rules.kind is TaskKind.critique:
        # Critiques are free text: only the rating can be checked against an expectation.
        rating = answer.get("rating") if isinstance(answer, dict) else None
        if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 7:
            raise Invalid('gold_answer for a critique item must be {"rating": 1..7}.')
        return {"rating": rating}
    positional = TaskContext(rules, list(range(len(texts))), dict(enumerate(texts)))
    return resolve(parse(rules.kind, answer), positional)


def score(
    kind: str, expected: dict[str, Any], stored: dict[str, Any], ids_by_position: list[int]
) -> float | None:
    """Agreement of a stored annotation with the expected answer in [0, 1]; None: not comparable."""

    def rid(pos: int | None) -> int | None:
        return None if pos is None else ids_by_position[pos]

    if kind == TaskKind.pairwise:
        return 1.0 if rid(expected["preferred"]) == stored["preferred"] else 0.0
    if kind == TaskKind.ranking:
        want = [ids_by_position[p] for p in expected["order"]]
        rank = {r: i for i, r in enumerate(stored["order"])}
        pairs = list(combinations(want, 2))
        return sum(rank[x] < rank[y] for x, y in pairs) / len(pairs)
    if kind == TaskKind.span:

        def marks(spans: list[dict[str, Any]]) -> set[tuple[int, str]]:
            return {(i, s["label"]) for s in spans for i in range(s["start"], s["end"])}

        want_m, got_m = marks(expected["spans"]), marks(stored["spans"])
        if not want_m and not got_m:
            return 1.0
        hit = len(want_m & got_m)
        return 2 * hit / (len(want_m) + len(got_m))
    if expected.get("rating") is None or stored.get("rating") is None:
        return None
    return 1.0 - abs(int(expected["rating"]) - int(stored["rating"])) / 6.0
