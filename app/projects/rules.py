"""A project's task rules: the one description of what a task asks and what an answer may hold.

The assignment engine, payload validation, gold answers, the import and the exports all read
these same fields; they get them as one `TaskRules`, built from an ORM `Project`
(`project.rules()`) or from a raw SQL row that selected `TaskRules.COLUMNS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar


class TaskKind(StrEnum):
    pairwise = "pairwise"
    ranking = "ranking"
    span = "span"
    critique = "critique"


@dataclass(frozen=True, slots=True)
class TaskRules:
    """What a project's tasks ask: the kind, the allowed labels and aspects, ties, the lease."""

    project_id: int
    kind: TaskKind
    span_labels: tuple[str, ...]
    aspects: tuple[str, ...]
    allow_tie: bool
    lease_seconds: int

    # The select list that `from_row` reads, for queries on `projects p`.
    COLUMNS: ClassVar[str] = (
        "p.id AS project_id, p.kind, p.span_labels, p.aspects, p.allow_tie, p.lease_seconds"
    )

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> TaskRules:
        """Build from the first six values of a row that selected `COLUMNS`."""
        pid, kind, span_labels, aspects, allow_tie, lease_seconds = row[:6]
        return cls(
            project_id=pid,
            kind=TaskKind(kind),
            span_labels=tuple(span_labels),
            aspects=tuple(aspects),
            allow_tie=allow_tie,
            lease_seconds=lease_seconds,
        )
