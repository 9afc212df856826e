"""Run one export: read a snapshot, build the schema's rows, write them, count what happened."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, text

from app.errors import Invalid
from app.exports import trust
from app.exports.query import (
    Snapshot,
    count_items,
    iter_items,
    open_snapshot,
    read_ahead,
    vote_filter,
)
from app.exports.rows import Context, builder
from app.exports.schemas import SCHEMA_KINDS, Aggregate, ExportOptions, Schema
from app.exports.stats import Stats
from app.exports.writers import BinarySink, make_writer
from app.projects.rules import TaskKind, TaskRules

# Schemas where a reviewer's final label replaces the votes' aggregate (aggregate=none keeps
# every vote as it is).
ADJUDICATED = (Schema.preference, Schema.ranking, Schema.spans, Schema.critique)


def check_options(options: ExportOptions, kind: TaskKind, aspects: Sequence[str]) -> None:
    """Refuse options that cannot apply to this project (422), before anything is read."""
    kinds = SCHEMA_KINDS[options.row_schema]
    if kind not in kinds:
        fits = ", ".join(s.value for s, ks in SCHEMA_KINDS.items() if kind in ks)
        raise Invalid(
            f"schema={options.row_schema.value} is built from {' or '.join(kinds)} projects;"
            f" this project is {kind} (its schemas: {fits})."
        )
    if options.aggregate is Aggregate.dawid_skene and (
        kind is not TaskKind.pairwise or options.row_schema is not Schema.preference
    ):
        raise Invalid("aggregate=dawid_skene applies to schema=preference of pairwise projects.")
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


def judge_names(conn: Connection, project_id: int) -> dict[int, str]:
    """Names of the judges with votes in the project (read in the export's snapshot)."""
    rows = conn.execute(
        text(
            "SELECT j.id, j.name FROM judges j WHERE j.id IN (SELECT DISTINCT a.judge_id"
            " FROM annotations a WHERE a.project_id = :pid AND a.judge_id IS NOT NULL)"
        ),
        {"pid": project_id},
    )
    return {int(i): str(n) for i, n in rows}


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
            ctx = Context(options, project, judges=judge_names(conn, project.project_id))
            if options.row_schema in ADJUDICATED and options.aggregate is not Aggregate.none:
                ctx.adjudications = trust.adjudications(conn, project.project_id)
            if options.aggregate is Aggregate.dawid_skene:
                ctx.trust_labels = trust.dawid_skene_labels(
                    conn, project.project_id, vote_filter(options)
                )
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
