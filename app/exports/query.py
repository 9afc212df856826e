"""The export's reads: one read-only snapshot, items in id order with their filtered votes.

Everything an export reads comes from one REPEATABLE READ transaction, so annotations that
commit while it runs are either wholly in it or wholly out of it, and a server-side cursor hands
the items over a batch at a time (app/annotations/votes.py: each item arrives with its responses
and its votes packed as JSON by PostgreSQL, in annotation id order), so the Python side never
holds more than a batch or two.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, text

from app.annotations import votes
from app.annotations.models import AnnotationSource
from app.annotations.votes import (
    FETCH_ITEMS,
    FULL,
    ItemVotes,
    VoteFilter,
    VoteKind,
    item_votes_sql,
    iter_item_votes,
    vote_kind,
)
from app.errors import NotFound
from app.exports.schemas import ExportOptions, Gold, Schema, Source
from app.projects.rules import TaskKind, TaskRules


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the export's transaction sees: when it started and PostgreSQL's snapshot of it."""

    taken_at: datetime
    pg_snapshot: str  # pg_current_snapshot(): xmin:xmax:xip, to tell later what was visible
    project: TaskRules
    project_name: str
    project_max_annotation_id: int | None


@contextmanager
def open_snapshot(engine: Engine, project_id: int) -> Iterator[tuple[Connection, Snapshot]]:
    """A read-only REPEATABLE READ transaction: every read in it sees the same data."""
    with engine.connect() as conn:
        conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            row = conn.execute(
                text(
                    # clock_timestamp(), not now(): now() is when BEGIN arrived, and a
                    # submission that started after it could commit before this statement took
                    # the snapshot; read here, after the snapshot, everything visible predates it.
                    f"SELECT {TaskRules.COLUMNS}, p.name AS project_name,"
                    " clock_timestamp() AS taken_at,"
                    " pg_current_snapshot()::text AS pg_snapshot,"
                    " (SELECT max(a.id) FROM annotations a WHERE a.project_id = p.id) AS top"
                    " FROM projects p WHERE p.id = :pid"
                ),
                {"pid": project_id},
            ).one_or_none()
            if row is None:
                raise NotFound(f"Project {project_id} does not exist.")
            rules = TaskRules.from_row(row)
            yield conn, Snapshot(row.taken_at, row.pg_snapshot, rules, row.project_name, row.top)


_CHOICE = {Gold.exclude: False, Gold.include: None, Gold.only: True}


def vote_filter(options: ExportOptions) -> VoteFilter:
    """The votes and items an export's options select."""
    return VoteFilter(
        source=None if options.source is Source.all else AnnotationSource(options.source.value),
        annotator_ids=options.annotator_ids,
        judge_ids=options.judge_ids,
        created_after=options.created_after,
        created_before=options.created_before,
        max_annotation_id=options.max_annotation_id,
        aspect=options.aspect,
        gold=_CHOICE[options.gold],
        eval_items=_CHOICE[options.eval_items],
        item_metadata=options.metadata,
    )


def export_votes(kind: TaskKind, options: ExportOptions) -> VoteKind[Any]:
    """The vote records an export reads: every stored field for `raw`, else the kind's."""
    return FULL if options.row_schema is Schema.raw else vote_kind(kind)


def items_sql(kind: TaskKind, options: ExportOptions) -> tuple[str, dict[str, Any]]:
    """The export's one query (for the benchmark's COPY limit): see votes.item_votes_sql."""
    return item_votes_sql(export_votes(kind, options), vote_filter(options))


def iter_items(
    conn: Connection, project: TaskRules, options: ExportOptions, batch: int = FETCH_ITEMS
) -> Generator[list[ItemVotes[Any]], None, None]:
    """The snapshot's items with the votes the options select, a batch at a time."""
    kind = export_votes(project.kind, options)
    return iter_item_votes(conn, project.project_id, kind, vote_filter(options), batch)


def count_items(conn: Connection, project_id: int, options: ExportOptions) -> int:
    """Items the filters on items let through (for progress; votes are not looked at)."""
    return votes.count_items(conn, project_id, vote_filter(options))


T = TypeVar("T")
_END = object()


def read_ahead(batches: Generator[T, None, None], depth: int = 2) -> Iterator[T]:
    """Fetch the next batches in a thread while the caller turns this one into rows.

    PostgreSQL computes a server-side cursor's rows only when they are fetched, so reading
    ahead keeps the database and Python busy at the same time. The thread is the only user of
    the cursor until the iteration ends; an error in it is raised in the caller.
    """
    handoff: queue.Queue[tuple[object, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[object, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                handoff.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not put((batch, None)):
                    break
            else:
                put((_END, None))
        except BaseException as exc:
            put((_END, exc))
        finally:
            batches.close()  # closes the cursor in the thread that used it

    thread = threading.Thread(target=produce, name="export-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            entry, error = handoff.get()
            if error is not None:
                raise error
            if entry is _END:
                return
            yield entry  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
