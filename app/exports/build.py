"""Run one export: read a snapshot, build the schema's rows, write them, count what happened."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from app.errors import Invalid
from app.exports.query import Snapshot, count_items, iter_items, open_snapshot, read_ahead
from app.exports.rows import Context, builder
from app.exports.schemas import SCHEMA_KINDS, ExportOptions
from app.exports.stats import Stats
from app.exports.writers import BinarySink, make_writer
from app.projects.rules import TaskKind, TaskRules


def check_options(options: ExportOptions, kind: TaskKind, aspects: Sequence[str]) -> None:
    """Refuse options that cannot apply to this project (422), before anything is read."""
    kinds = SCHEMA_KINDS[options.row_schema]
    if kind not in kinds:
        fits = ", ".join(s.value for s, ks in SCHEMA_KINDS.items() if kind in ks)
        raise Invalid(
            f"schema={options.row_schema.value} is built from {' or '.join(kinds)} projects;"
            f" this project is {kind} (its schemas: {fits})."
        )
    if options.aspect is not None:
        if kind is not TaskKind.pairwise:
            raise Invalid("aspect applies to pairwise projects only.")
        if options.aspect not in aspects:
            have = ", ".join(aspects) or "none"
            raise Invalid(f"aspect {options.aspect!r} is not one of this project's ({have}).")


@dataclass
class Outcome:
    snapshot: Snapshot
    context: Context
    stats: Stats

    def counts(self) -> dict[str, Any]:
        return self.stats.counts(self.context)


class ExportRun:
    """One pass over a snapshot; `batches()` yields the progress after each written batch."""

    def __init__(
        self,
        engine: Engine,
        project_id: int,
        options: ExportOptions,
        sink: BinarySink,
        *,
        with_progress: bool = False,
    ) -> None:
        self.engine = engine
        self.project_id = project_id
        self.options = options
        self.sink = sink
        self.with_progress = with_progress
        self.outcome: Outcome | None = None
        # Rows so far, readable while batches() runs (a streamed export peeks at it).
        self.stats: Stats | None = None

    def batches(self) -> Iterator[float]:
        options = self.options
        with open_snapshot(self.engine, self.project_id) as (conn, snapshot):
            project: TaskRules = snapshot.project
            check_options(options, project.kind, project.aspects)
            total = count_items(conn, project.project_id, options) if self.with_progress else 0
            ctx = Context(options, project)
            stats = self.stats = Stats(options.row_schema)
            build = builder(options.row_schema, project.kind)
            writer = make_writer(options.format, options.row_schema, options.style, self.sink)

            seen = 0
            for batch in read_ahead(iter_items(conn, project, options)):
                out = []
                for item in batch:
                    if len(item.votes) < options.min_votes:
                        ctx.skip("items_below_min_votes")
                        stats.observe(item, [])
                        continue
                    rows = build(ctx, item)
                    stats.observe(item, rows)
                    out.extend(rows)
                writer.write(out)
                seen += len(batch)
                yield min(0.99, seen / total) if total else 0.0
            writer.close()
        self.outcome = Outcome(snapshot, ctx, stats)
        yield 1.0

    def run(self) -> Outcome:
        for _ in self.batches():
            pass
        assert self.outcome is not None
        return self.outcome
