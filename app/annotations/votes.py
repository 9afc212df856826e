"""The one reader of votes: annotations as typed records, streamed per item or read per project.

A vote is an annotation seen as a judgement: its author (a human annotator or an AI judge),
when it was made, the order its responses were shown in, and what it decided, resolved to
response ids (see payloads.py). Exports stream a project's items with their votes packed as
JSON by PostgreSQL (one value per item, parsed by orjson: the fast path for millions of votes);
statistics, judges and routing read a project's votes as a flat list. Both forms select the
same columns through the same filters into the same records, so they cannot drift apart.

Records are NamedTuples built straight from the selected values, in this column order: a
field's position is the column's, and nothing else in the code indexes them by number.

    with get_engine().connect() as conn, conn.begin():
        human = read_votes(conn, pid, PAIRWISE, VoteFilter(source=AnnotationSource.human))
        every = read_votes(conn, pid, vote_kind(project.rules().kind))  # list[Vote]
"""

from __future__ import annotations

import itertools
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, NamedTuple, NotRequired, Protocol, TypedDict, TypeVar

import orjson
import psycopg
from psycopg.types.json import set_json_loads
from sqlalchemy import Connection, text

from app.annotations.models import AnnotationSource
from app.errors import NotFound
from app.projects.rules import TaskKind

# Items or votes per fetch. Small batches keep few objects alive at a time, so the garbage
# collector's scans stay short: an export of 100 items a fetch takes about a quarter less CPU
# time than of 1,000 (bench/export.py), for a few more round trips.
FETCH_ITEMS = 100
FETCH_VOTES = 1000

# Timestamps are read in one fixed form (UTC, microseconds, "Z"), whatever the session's zone:
# exports write them as they are, and they sort as the times they stand for.
TIMESTAMP = r"""to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24\:MI\:SS.US"Z"')"""
# Every record starts with these, in this order (see VoteHead).
HEAD = ("a.id", "a.item_id", "a.source", "a.user_id", "a.judge_id", TIMESTAMP)
_SOURCE = HEAD.index("a.source")
_SOURCES = {s.value: s for s in AnnotationSource}
_cursors = itertools.count(1)


class VoteHead(Protocol):
    """The fields every vote record starts with."""

    @property
    def annotation_id(self) -> int: ...
    @property
    def item_id(self) -> int: ...
    @property
    def source(self) -> AnnotationSource: ...
    @property
    def annotator_id(self) -> int | None: ...  # the user id of a human vote
    @property
    def judge_id(self) -> int | None: ...  # the judge of an AI vote
    @property
    def created_at(self) -> str: ...  # UTC, ISO 8601 with microseconds and "Z"
    @property
    def template_version(self) -> int | None: ...  # AI: the version of the judge's template


class PairwiseVote(NamedTuple):
    annotation_id: int
    item_id: int
    source: AnnotationSource
    annotator_id: int | None
    judge_id: int | None
    created_at: str
    shown_first: int  # the response shown first (in position a), for position bias
    preferred: int | None  # the preferred response's id; None for a tie
    strength: int | None  # 1..3 when given
    aspects: dict[str, int | None] | None  # aspect -> preferred id (None: a tie); None: no aspect
    template_version: int | None = None  # AI: the judge template's version (see TEMPLATE)


class RankingVote(NamedTuple):
    annotation_id: int
    item_id: int
    source: AnnotationSource
    annotator_id: int | None
    judge_id: int | None
    created_at: str
    shown_order: list[int]  # response ids in the order the author saw them
    order: list[int]  # response ids, best first
    template_version: int | None = None  # AI: the judge template's version (see TEMPLATE)


class SpanMark(TypedDict):
    start: int  # code point offsets into the response, end exclusive
    end: int
    label: str
    comment: NotRequired[str]


class SpanVote(NamedTuple):
    annotation_id: int
    item_id: int
    source: AnnotationSource
    annotator_id: int | None
    judge_id: int | None
    created_at: str
    spans: list[SpanMark]  # sorted by (start, end, label)
    overall: int | None  # the overall rating 1..7, when given
    template_version: int | None = None  # AI: the judge template's version (see TEMPLATE)


class CritiqueVote(NamedTuple):
    annotation_id: int
    item_id: int
    source: AnnotationSource
    annotator_id: int | None
    judge_id: int | None
    created_at: str
    critique: str
    rewrite: str | None
    rating: int | None  # 1..7, when given
    template_version: int | None = None  # AI: the judge template's version (see TEMPLATE)


class FullVote(NamedTuple):
    """Everything stored with an annotation (the `raw` export; any kind)."""

    annotation_id: int
    item_id: int
    source: AnnotationSource
    annotator_id: int | None
    judge_id: int | None
    created_at: str
    shown_order: list[int]  # response ids in the order the author saw them
    payload: dict[str, Any]
    schema_version: int
    time_spent_ms: int | None
    over_quota: bool
    gold_score: float | None
    assignment_id: int | None
    client_submission_id: str | None
    # An AI vote's judge output (judge_outputs, joined by annotation id); None for human votes.
    judge_model: str | None  # what the backend said produced it
    template_id: int | None
    template_version: int | None
    probability: float | None
    consistent: bool | None
    tokens_in: int | None
    tokens_out: int | None
    latency_s: float | None
    cost: float | None
    judge_raw: list[dict[str, Any]] | None  # per call: shown ids, raw text, finish reason, ...


Vote = PairwiseVote | RankingVote | SpanVote | CritiqueVote
V = TypeVar("V", PairwiseVote, RankingVote, SpanVote, CritiqueVote, FullVote)

# An AI vote's judge output and its template. An output is unique per (item, judge, template):
# the join walks that index from the vote's item and judge (a human vote, with no judge, finds
# nothing), never a scan; the flat and the per-item reads share it.
JUDGE_JOIN = (
    " LEFT JOIN judge_outputs o ON o.item_id = a.item_id AND o.judge_id = a.judge_id"
    " AND o.annotation_id = a.id LEFT JOIN judge_templates t ON t.id = o.template_id"
)
# Which template version the judge answered under: the last column of every record kind's
# tail (FullVote reads it among the rest of the output).
TEMPLATE = "t.version"

# {preferred} is the pairwise verdict read: overall, or one aspect's (VoteFilter.aspect).
_PREFERRED = "(a.payload->>'preferred')::bigint"
_ASPECT_PREFERRED = "(a.payload->'aspects'->>:aspect)::bigint"


@dataclass(frozen=True, slots=True)
class VoteKind(Generic[V]):
    """How one record type is read: its columns after HEAD, and the projects it applies to."""

    name: str
    record: type[V]
    tail: tuple[str, ...]
    task_kinds: frozenset[TaskKind]
    joins: str = ""  # LEFT JOINs that the tail's columns read from (one row per annotation)

    def __post_init__(self) -> None:
        # records() trusts the column count: check it once, here, rather than per record.
        if len(HEAD) + len(self.tail) != len(self.record._fields):
            raise TypeError(f"{self.record.__name__}: its fields do not match the columns read")

    def columns(self, preferred: str = _PREFERRED) -> str:
        return ", ".join((*HEAD, *self.tail)).replace("{preferred}", preferred)

    def records(self, rows: list[Any]) -> list[V]:
        """Records from selected values: `rows` itself, each list replaced by its record.

        Replacing in place frees each list as its record is made, so the number of live
        objects, which paces the garbage collector, stays what it was (the fast path of
        exports: a million votes go through here).
        """
        new, cls, sources, at = tuple.__new__, self.record, _SOURCES, _SOURCE
        for n, v in enumerate(rows):
            v[at] = sources[v[at]]
            rows[n] = new(cls, v)  # what NamedTuple._make does, without its Python frame
        return rows


# Each list or dict in a record is an object the garbage collector keeps visiting: records hold
# as few as they can (pairwise: the first shown response, no empty aspects; span and critique
# items have one response, so no shown order).
PAIRWISE = VoteKind(
    "pairwise",
    PairwiseVote,
    (
        "a.shown_order[1]",
        "{preferred}",
        "(a.payload->>'strength')::int",
        "NULLIF(a.payload->'aspects', '{}')",
        TEMPLATE,
    ),
    frozenset({TaskKind.pairwise}),
    JUDGE_JOIN,
)
RANKING = VoteKind(
    "ranking",
    RankingVote,
    ("a.shown_order", "a.payload->'order'", TEMPLATE),
    frozenset({TaskKind.ranking}),
    JUDGE_JOIN,
)
SPAN = VoteKind(
    "span",
    SpanVote,
    ("COALESCE(a.payload->'spans', '[]')", "(a.payload->>'overall')::int", TEMPLATE),
    frozenset({TaskKind.span}),
    JUDGE_JOIN,
)
CRITIQUE = VoteKind(
    "critique",
    CritiqueVote,
    ("a.payload->>'critique'", "a.payload->>'rewrite'", "(a.payload->>'rating')::int", TEMPLATE),
    frozenset({TaskKind.critique}),
    JUDGE_JOIN,
)
FULL = VoteKind(
    "full",
    FullVote,
    (
        "a.shown_order",
        "a.payload",
        "a.schema_version",
        "a.time_spent_ms",
        "a.over_quota",
        "a.gold_score",
        "a.assignment_id",
        "a.client_submission_id",
        "o.model",
        "o.template_id",
        TEMPLATE,
        "o.probability",
        "o.consistent",
        "o.tokens_in",
        "o.tokens_out",
        "o.latency_s",
        "o.cost",
        "o.raw",
    ),
    frozenset(TaskKind),
    JUDGE_JOIN,
)
_BY_TASK_KIND: dict[TaskKind, VoteKind[Any]] = {
    TaskKind.pairwise: PAIRWISE,
    TaskKind.ranking: RANKING,
    TaskKind.span: SPAN,
    TaskKind.critique: CRITIQUE,
}


def vote_kind(kind: TaskKind) -> VoteKind[Any]:
    """The records a project of this kind has (PairwiseVote for pairwise, ...)."""
    return _BY_TASK_KIND[kind]


@dataclass(frozen=True, slots=True)
class VoteFilter:
    """Which votes to read. Empty means everything; the conditions are combined with AND.

    `annotator_ids` and `judge_ids` together select votes by any of those authors.
    """

    source: AnnotationSource | None = None
    annotator_ids: Sequence[int] = ()
    judge_ids: Sequence[int] = ()
    item_ids: Sequence[int] | None = None
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive
    max_annotation_id: int | None = None
    # Pairwise: read each vote's verdict on this aspect as `preferred` (votes without it are out).
    aspect: str | None = None
    gold: bool | None = None  # True: gold items only; False: no gold items; None: all
    # Evaluation items (metadata key EVAL_KEY, app/loops/human_eval.py): True only them,
    # False none of them, None all.
    eval_items: bool | None = None
    item_metadata: Mapping[str, Any] = field(default_factory=dict)  # JSON containment


ALL_VOTES = VoteFilter()
# Items whose metadata holds this key compare two policies for a loop's evaluation: labels on
# them measure a policy and must not train the next one (exports leave them out by default).
EVAL_KEY = "tandem_eval"


@dataclass(frozen=True, slots=True)
class _Sql:
    columns: str
    joins: str
    votes: str  # conditions on annotations a
    items: str  # conditions on items i (empty when there are none)
    params: dict[str, Any]


def _sql(kind: VoteKind[Any], f: VoteFilter) -> _Sql:
    params: dict[str, Any] = {}
    preferred = _PREFERRED
    votes: list[str] = []
    if f.aspect is not None:
        if kind is not PAIRWISE:
            raise ValueError(f"aspects are pairwise verdicts; {kind.name} votes have none")
        preferred = _ASPECT_PREFERRED
        votes.append("a.payload->'aspects' ? :aspect")
        params["aspect"] = f.aspect
    if f.source is not None:
        votes.append("a.source = :source")
        params["source"] = f.source.value
    if f.annotator_ids or f.judge_ids:
        votes.append(
            "(a.user_id = ANY(CAST(:annotators AS bigint[]))"
            " OR a.judge_id = ANY(CAST(:judges AS bigint[])))"
        )
        params["annotators"] = list(f.annotator_ids)
        params["judges"] = list(f.judge_ids)
    if f.item_ids is not None:
        votes.append("a.item_id = ANY(CAST(:item_ids AS bigint[]))")
        params["item_ids"] = list(f.item_ids)
    if f.created_after is not None:
        votes.append("a.created_at >= :after")
        params["after"] = f.created_after
    if f.created_before is not None:
        votes.append("a.created_at < :before")
        params["before"] = f.created_before
    if f.max_annotation_id is not None:
        votes.append("a.id <= :max_id")
        params["max_id"] = f.max_annotation_id
    items = _item_conditions(f, params)
    return _Sql(kind.columns(preferred), kind.joins, " AND ".join(votes), items, params)


def _item_conditions(f: VoteFilter, params: dict[str, Any]) -> str:
    items: list[str] = []
    if f.gold is not None:
        items.append("i.is_gold" if f.gold else "NOT i.is_gold")
    if f.eval_items is not None:
        has_key = f"jsonb_exists(i.metadata, '{EVAL_KEY}')"
        items.append(has_key if f.eval_items else f"NOT {has_key}")
    if f.item_metadata:
        items.append("i.metadata @> CAST(:meta AS jsonb)")
        params["meta"] = orjson.dumps(f.item_metadata).decode()
    return " AND ".join(items)


def _and(*conditions: str) -> str:
    return " AND ".join(c for c in conditions if c)


# --- per item, streamed (exports) --------------------------------------------------------------


class Response(NamedTuple):
    id: int
    external_id: str | None
    text: str
    model: str | None


@dataclass(slots=True)
class ItemVotes(Generic[V]):
    """One item with its responses (import order) and its votes that passed the filters."""

    id: int
    external_id: str | None
    prompt: str
    metadata: str  # the item's metadata as canonical JSON text
    is_gold: bool
    gold_answer: str | None  # JSON text
    priority: int
    responses: list[Response]
    votes: list[V]  # in annotation id order


def item_votes_sql(kind: VoteKind[Any], filters: VoteFilter) -> tuple[str, dict[str, Any]]:
    """Items of project :pid with at least one vote passing the filters, in id order, each with
    its responses and its votes packed as JSON arrays in one value (json_agg) per item."""
    q = _sql(kind, filters)
    sql = f"""
        SELECT i.id, i.external_id, i.prompt, i.metadata::text, i.is_gold, i.gold_answer::text,
               i.priority, r.responses, v.votes
        FROM items i
        CROSS JOIN LATERAL (
            SELECT json_agg(json_build_array({q.columns}) ORDER BY a.id) AS votes
            FROM annotations a{q.joins}
            WHERE {_and("a.item_id = i.id", q.votes)}
        ) v
        CROSS JOIN LATERAL (
            SELECT json_agg(json_build_array(r.id, r.external_id, r.text, r.model)
                            ORDER BY r.position) AS responses
            FROM responses r WHERE r.item_id = i.id
        ) r
        WHERE {_and("i.project_id = :pid", q.items)} AND v.votes IS NOT NULL
        ORDER BY i.id
    """
    return sql, q.params


def count_items(conn: Connection, project_id: int, filters: VoteFilter) -> int:
    """Items of the project that the item conditions let through (votes are not looked at)."""
    params: dict[str, Any] = {"pid": project_id}
    where = _and("i.project_id = :pid", _item_conditions(filters, params))
    n: int = conn.execute(text(f"SELECT count(*) FROM items i WHERE {where}"), params).scalar_one()
    return n


def _check_kind(conn: Connection, project_id: int, kind: VoteKind[Any]) -> None:
    found = conn.execute(
        text("SELECT kind FROM projects WHERE id = :pid"), {"pid": project_id}
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"Project {project_id} does not exist.")
    if TaskKind(found) not in kind.task_kinds:
        raise ValueError(f"project {project_id} is a {found} project; it has no {kind.name} votes")


def _raw_cursor(conn: Connection) -> psycopg.ServerCursor[Any]:
    """A server-side cursor on the connection's own transaction; JSON parsed by orjson."""
    raw = conn.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    cur = raw.cursor(name=f"tandem_votes_{next(_cursors)}")  # unique: readers may nest
    set_json_loads(orjson.loads, cur)
    return cur


def _compiled(conn: Connection, sql: str) -> str:
    return str(text(sql).compile(dialect=conn.dialect))


def iter_item_votes(
    conn: Connection,
    project_id: int,
    kind: VoteKind[V],
    filters: VoteFilter = ALL_VOTES,
    batch: int = FETCH_ITEMS,
) -> Generator[list[ItemVotes[V]], None, None]:
    """Stream the project's items with their votes, a batch of items at a time.

    Straight on psycopg, through a server-side cursor in the caller's transaction (run it in a
    REPEATABLE READ one for a consistent read); the packed JSON is parsed by orjson from the
    received bytes, with no str in between.
    """
    _check_kind(conn, project_id, kind)
    sql, params = item_votes_sql(kind, filters)
    records = kind.records
    with _raw_cursor(conn) as cur:
        cur.execute(_compiled(conn, sql), {**params, "pid": project_id})
        while rows := cur.fetchmany(batch):
            yield [
                ItemVotes(r[0], r[1], r[2], r[3], r[4], r[5], r[6], _responses(r[7]), records(r[8]))
                for r in rows
            ]


def _responses(rows: list[Any]) -> list[Response]:
    new = tuple.__new__
    for n, r in enumerate(rows):
        rows[n] = new(Response, r)  # in place, as in VoteKind.records
    return rows


# --- per project, flat (statistics, judges, routing) --------------------------------------------


def votes_sql(kind: VoteKind[Any], filters: VoteFilter) -> tuple[str, dict[str, Any]]:
    """Votes of project :pid passing the filters, one row each, in annotation id order."""
    q = _sql(kind, filters)
    join = "JOIN items i ON i.id = a.item_id" if q.items else ""
    where = _and("a.project_id = :pid", q.votes, q.items)
    return (
        f"SELECT {q.columns} FROM annotations a{q.joins} {join} WHERE {where} ORDER BY a.id",
        q.params,
    )


def iter_votes(
    conn: Connection,
    project_id: int,
    kind: VoteKind[V],
    filters: VoteFilter = ALL_VOTES,
    batch: int = FETCH_VOTES,
) -> Iterator[V]:
    """The project's votes that pass the filters, in annotation id order, streamed."""
    _check_kind(conn, project_id, kind)
    sql, params = votes_sql(kind, filters)
    with _raw_cursor(conn) as cur:
        cur.execute(_compiled(conn, sql), {**params, "pid": project_id})
        while rows := cur.fetchmany(batch):
            yield from kind.records([list(r) for r in rows])


def read_votes(
    conn: Connection, project_id: int, kind: VoteKind[V], filters: VoteFilter = ALL_VOTES
) -> list[V]:
    """The project's votes that pass the filters, in annotation id order.

    `kind` is the project's (`vote_kind(rules.kind)`, or PAIRWISE... when the caller knows it),
    or FULL for every stored field; a kind the project does not have is a ValueError.
    """
    return list(iter_votes(conn, project_id, kind, filters))
