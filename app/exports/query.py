"""The export's reads: one read-only snapshot, items in id order with their filtered votes.

Everything an export reads comes from one REPEATABLE READ transaction, so annotations that
commit while it runs are either wholly in it or wholly out of it, and a server-side cursor hands
the items over a batch at a time. Each item arrives with its responses and its votes already
packed as JSON by PostgreSQL (one text value per item, parsed here with orjson), in annotation id
order, so the Python side never holds more than one batch.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson
import psycopg
from psycopg.types.json import set_json_loads
from sqlalchemy import Connection, Engine, text

from app.errors import NotFound
from app.exports.schemas import ExportOptions, Gold, Schema, Source

FETCH_ITEMS = 1000

# Timestamps are written in one fixed form (UTC, microseconds, "Z"), whatever the session's zone.
TIMESTAMP = r"""to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24\:MI\:SS.US"Z"')"""


def judge_name_sql() -> str:
    """How an AI vote's judge is named in exports (the judges table arrives with routing)."""
    return "'judge:' || a.judge_id"


# Per vote: [annotation id, source, annotator id, judge name, created at, ...what the kind needs].
VOTE_HEAD = f"a.id, a.source, a.user_id, {judge_name_sql()}, {TIMESTAMP}"
VOTE_TAIL = {
    "pairwise": "{preferred}, (a.payload->>'strength')::int, a.shown_order[1]",
    "ranking": "a.payload->'order'",
    "span": "a.payload->'spans', (a.payload->>'overall')::int",
    "critique": "a.payload->>'critique', a.payload->>'rewrite', (a.payload->>'rating')::int",
}
RAW_TAIL = (
    "a.judge_id, a.payload, a.shown_order, a.schema_version, a.time_spent_ms, a.over_quota,"
    " a.gold_score, a.assignment_id, a.client_submission_id"
)


@dataclass(frozen=True, slots=True)
class ProjectInfo:
    id: int
    name: str
    kind: str
    span_labels: list[str]
    aspects: list[str]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the export's transaction sees: when it started and PostgreSQL's snapshot of it."""

    taken_at: datetime
    pg_snapshot: str  # pg_current_snapshot(): xmin:xmax:xip, to tell later what was visible
    project: ProjectInfo
    project_max_annotation_id: int | None


@dataclass(slots=True)
class ItemVotes:
    """One item with its responses (import order) and the votes that passed the filters."""

    id: int
    external_id: str | None
    prompt: str
    metadata: str  # the item's metadata as canonical JSON text
    is_gold: bool
    gold_answer: str | None
    priority: int
    responses: list[list[Any]]  # [response id, external id, text, model]
    votes: list[list[Any]]  # VOTE_HEAD fields, then the kind's tail (RAW_TAIL for raw)


@contextmanager
def open_snapshot(engine: Engine, project_id: int) -> Iterator[tuple[Connection, Snapshot]]:
    """A read-only REPEATABLE READ transaction: every read in it sees the same data."""
    with engine.connect() as conn:
        conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            row = conn.execute(
                text(
                    "SELECT p.id, p.name, p.kind, p.span_labels, p.aspects, now(),"
                    " pg_current_snapshot()::text,"
                    " (SELECT max(a.id) FROM annotations a WHERE a.project_id = p.id)"
                    " FROM projects p WHERE p.id = :pid"
                ),
                {"pid": project_id},
            ).one_or_none()
            if row is None:
                raise NotFound(f"Project {project_id} does not exist.")
            project = ProjectInfo(row[0], row[1], row[2], list(row[3]), list(row[4]))
            yield conn, Snapshot(row[5], row[6], project, row[7])


def _filters(kind: str, options: ExportOptions) -> tuple[str, str, str, dict[str, Any]]:
    """SQL for the vote columns, the vote conditions and the item conditions, with parameters."""
    params: dict[str, Any] = {}
    preferred = "(a.payload->>'preferred')::bigint"
    votes = ["a.item_id = i.id"]
    if options.aspect is not None:
        preferred = "(a.payload->'aspects'->>:aspect)::bigint"
        votes.append("a.payload->'aspects' ? :aspect")
        params["aspect"] = options.aspect
    tail = RAW_TAIL if options.row_schema is Schema.raw else VOTE_TAIL[kind]
    columns = f"{VOTE_HEAD}, {tail.format(preferred=preferred)}"
    if options.source is not Source.all:
        votes.append("a.source = :source")
        params["source"] = options.source.value
    if options.annotator_ids or options.judge_ids:
        votes.append(
            "(a.user_id = ANY(CAST(:annotators AS bigint[]))"
            " OR a.judge_id = ANY(CAST(:judges AS bigint[])))"
        )
        params["annotators"] = list(options.annotator_ids)
        params["judges"] = list(options.judge_ids)
    if options.created_after is not None:
        votes.append("a.created_at >= :after")
        params["after"] = options.created_after
    if options.created_before is not None:
        votes.append("a.created_at < :before")
        params["before"] = options.created_before
    if options.max_annotation_id is not None:
        votes.append("a.id <= :max_id")
        params["max_id"] = options.max_annotation_id
    items = ["i.project_id = :pid"]
    if options.gold is Gold.exclude:
        items.append("NOT i.is_gold")
    elif options.gold is Gold.only:
        items.append("i.is_gold")
    if options.metadata:
        items.append("i.metadata @> CAST(:meta AS jsonb)")
        params["meta"] = orjson.dumps(options.metadata).decode()
    return columns, " AND ".join(votes), " AND ".join(items), params


def items_sql(kind: str, options: ExportOptions) -> tuple[str, dict[str, Any]]:
    """The export's one query: filtered items with at least one vote, in id order."""
    columns, vote_where, item_where, params = _filters(kind, options)
    sql = f"""
        SELECT i.id, i.external_id, i.prompt, i.metadata::text, i.is_gold, i.gold_answer::text,
               i.priority, r.responses, v.votes
        FROM items i
        CROSS JOIN LATERAL (
            SELECT json_agg(json_build_array({columns}) ORDER BY a.id) AS votes
            FROM annotations a
            WHERE {vote_where}
        ) v
        CROSS JOIN LATERAL (
            SELECT json_agg(json_build_array(r.id, r.external_id, r.text, r.model)
                            ORDER BY r.position) AS responses
            FROM responses r WHERE r.item_id = i.id
        ) r
        WHERE {item_where} AND v.votes IS NOT NULL
        ORDER BY i.id
    """
    return sql, params


def count_items(conn: Connection, project_id: int, options: ExportOptions) -> int:
    """Items the filters on items let through (for progress; votes are not looked at)."""
    _, _, item_where, params = _filters("pairwise", options)
    item_params = {k: v for k, v in params.items() if k == "meta"}
    n: int = conn.execute(
        text(f"SELECT count(*) FROM items i WHERE {item_where}"), {**item_params, "pid": project_id}
    ).scalar_one()
    return n


def iter_items(
    conn: Connection, project: ProjectInfo, options: ExportOptions, batch: int = FETCH_ITEMS
) -> Generator[list[ItemVotes], None, None]:
    """Stream the items through a server-side cursor, a batch at a time.

    Straight on psycopg, in the snapshot's transaction; the packed JSON columns are parsed by
    orjson from the received bytes, with no str in between.
    """
    sql, params = items_sql(project.kind, options)
    compiled = text(sql).compile(dialect=conn.dialect)
    raw = conn.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    with raw.cursor(name="tandem_export") as cur:
        set_json_loads(orjson.loads, cur)
        cur.execute(str(compiled), {**params, "pid": project.id})
        while rows := cur.fetchmany(batch):
            yield [ItemVotes(*r) for r in rows]


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
