"""Import items into a project: validated per kind, idempotent on external_id, all-or-nothing.

Rows are validated and written in batches inside one transaction, so a 100k-row file never sits
in memory and a bad row anywhere leaves the project unchanged. Imports into one project are
serialised by an advisory lock, which makes "skip the external_ids already there" exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, cast

import psycopg
from psycopg.types.json import Jsonb
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.annotations import gold
from app.audit.service import record
from app.auth.models import Role
from app.auth.service import Principal, require_role
from app.errors import Invalid, describe_errors
from app.items.jobs import IMPORT
from app.items.readers import Format, read_rows, sniff
from app.items.schemas import RESPONSE_COUNT, ImportResult, ItemIn
from app.jobs import service as jobs
from app.jobs.models import Job
from app.projects.models import Project
from app.projects.service import get_project

BATCH_ROWS = 1000
# Statistics policy (issue 14 #19): ANALYZE items and responses after an import only when it
# adds at least ANALYZE_AFTER_ROWS rows AND at least ANALYZE_SHARE of what the items table held
# before (pg_class.reltuples: free to read, -1 before the first analyze). A table growing
# through many small imports is thus analyzed each time it grew by a fifth: O(log n) analyzes
# for n rows, where "every import of 1,000 rows" gave n/1000 of them, each one costlier as the
# table grew. Smaller growth is left to autovacuum's analyze (scale factor 0.1 by default):
# the statistics it would refresh change by less than that share.
ANALYZE_AFTER_ROWS = 1000
ANALYZE_SHARE = 0.2
_ITEMS_ESTIMATE = text("SELECT reltuples::bigint FROM pg_class WHERE oid = 'items'::regclass")
SNIFF_BYTES = 64 * 1024  # enough to get past any leading blank lines
# Driven by the batch's ids, so each is one unique-index probe whatever plan the driver's
# prepared statement caches (an `IN (...)` list became a filter over the whole project: O(n^2)).
_EXISTING = text(
    "SELECT i.external_id FROM unnest(CAST(:ids AS text[])) AS u(external_id)"
    " JOIN items i ON i.project_id = :pid AND i.external_id = u.external_id"
)


def _row_error(n: int, err: ValidationError) -> Invalid:
    first = describe_errors(err.errors(include_url=False, include_input=False))[0]
    where = ".".join(str(p) for p in first["loc"])
    msg = first["msg"]
    if first["type"] == "extra_forbidden" and len(first["loc"]) == 1:
        msg = (
            "is not a field of an item (fields: external_id, prompt, responses, metadata,"
            " priority, is_gold, gold_answer)"
        )
    elif first["type"] == "extra_forbidden" and first["loc"][0] == "responses":
        msg = "is not a field of a response (fields: id, text, model)"
    return Invalid(f"row {n}: {where + ': ' if where else ''}{msg}.", row=n)


def _validate(project: Project, n: int, raw: Any) -> ItemIn:
    if not isinstance(raw, dict):
        raise Invalid(f"row {n}: expected an object, got {type(raw).__name__}.", row=n)
    try:
        item = ItemIn.model_validate(raw)
    except ValidationError as err:
        raise _row_error(n, err) from None
    low, high = RESPONSE_COUNT[project.kind]
    count = len(item.responses)
    if not low <= count <= high:
        want = str(low) if low == high else f"{low} to {high}"
        raise Invalid(
            f"row {n}: a {project.kind} item needs {want} responses, this one has {count}.", row=n
        )
    if item.gold_answer is not None:
        try:
            item.gold_answer = gold.normalize_expected(
                project.rules(), item.gold_answer, [r.text for r in item.responses]
            )
        except Invalid as exc:
            raise Invalid(f"row {n}: gold_answer: {exc.message}", row=n) from None
    return item


def _batches(rows: Iterable[tuple[int, Any]], project: Project) -> Iterator[list[ItemIn]]:
    batch: list[ItemIn] = []
    for n, raw in rows:
        batch.append(_validate(project, n, raw))
        if len(batch) >= BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


_ITEM_IDS = text(
    "SELECT nextval(pg_get_serial_sequence('items', 'id')) FROM generate_series(1, :n)"
)
_COPY_ITEMS = (
    "COPY items (id, project_id, external_id, prompt, metadata, priority, is_gold, gold_answer,"
    " remaining, routing) FROM STDIN"
)
_ROUTED = text("SELECT EXISTS (SELECT 1 FROM project_routing WHERE project_id = :pid)")
_COPY_RESPONSES = "COPY responses (item_id, position, external_id, text, model) FROM STDIN"


def _copy_in(session: Session, project: Project, items: list[ItemIn], held: bool) -> None:
    """Write items and their responses with COPY (several times faster than INSERTs).

    Item ids are drawn from the identity sequence first, in import order, so that responses
    can point at them and listing by id gives the import order. In a project with routing,
    items come in held: no human slot open until a route job decides them.
    """
    ids = sorted(session.scalars(_ITEM_IDS, {"n": len(items)}))
    # The session's own connection, so that COPY runs in the import's transaction.
    raw = cast("psycopg.Connection[Any]", session.connection().connection.driver_connection)
    with raw.cursor() as cur:
        with cur.copy(_COPY_ITEMS) as copy:
            for item_id, i in zip(ids, items, strict=True):
                copy.write_row(
                    (
                        item_id,
                        project.id,
                        i.external_id,
                        i.prompt,
                        Jsonb(i.metadata),
                        i.priority,
                        bool(i.is_gold),
                        None if i.gold_answer is None else Jsonb(i.gold_answer),
                        0 if held else project.overlap,
                        "held" if held else None,
                    )
                )
        with cur.copy(_COPY_RESPONSES) as copy:
            for item_id, i in zip(ids, items, strict=True):
                for pos, r in enumerate(i.responses):
                    copy.write_row((item_id, pos, r.id, r.text, r.model))


def import_rows(
    session: Session,
    project: Project,
    rows: Iterable[tuple[int, Any]],
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('tandem-import:' || :pid, 0))"),
        {"pid": project.id},
    )
    # Read the settings again under a share lock: an overlap change (PATCH locks the row FOR
    # UPDATE and shifts existing items) then either waits for this import to commit, or has
    # committed and new items start from its overlap; neither misses the other.
    session.refresh(project, with_for_update={"read": True})
    # Attaching routing locks the project row FOR UPDATE too: an import sees it or not, whole.
    held = bool(session.scalar(_ROUTED, {"pid": project.id}))
    before = max(0, session.execute(_ITEMS_ESTIMATE).scalar_one())
    seen: set[str] = set()
    created = skipped = 0
    for batch in _batches(rows, project):
        ext_ids = [i.external_id for i in batch if i.external_id is not None]
        existing = (
            set(session.scalars(_EXISTING, {"pid": project.id, "ids": ext_ids}))
            if ext_ids
            else set()
        )
        fresh: list[ItemIn] = []
        for item in batch:
            if item.external_id is not None:
                if item.external_id in existing or item.external_id in seen:
                    skipped += 1
                    continue
                seen.add(item.external_id)
            fresh.append(item)
        if fresh:
            _copy_in(session, project, fresh, held)
            created += len(fresh)
        if progress is not None:
            progress(created + skipped)
    if needs_analyze(created, before):
        # Fresh statistics right away (autovacuum may be off or late): without them the
        # claim query is planned as a sort of every open item instead of an index walk.
        session.execute(text("ANALYZE items, responses"))
    if held and created:
        from app.routing.service import after_import  # routing imports items: import late

        after_import(session, project.id)
    return ImportResult(created=created, skipped=skipped)


def needs_analyze(created: int, items_before: int) -> bool:
    """Whether an import of `created` items into a table that held about `items_before`
    changes the statistics enough to pay for an ANALYZE now (see ANALYZE_SHARE)."""
    return created >= ANALYZE_AFTER_ROWS and created >= ANALYZE_SHARE * items_before


def _format(f: IO[bytes], fmt: Format | None) -> Format:
    """The format as given, else sniffed; an empty upload is an error either way."""
    head = f.read(SNIFF_BYTES)
    f.seek(0)
    if not head:
        raise Invalid("The uploaded file is empty.")
    return sniff(head) if fmt is None else fmt


def import_file(
    session: Session, principal: Principal, project_id: int, f: IO[bytes], fmt: Format | None
) -> ImportResult:
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    fmt = _format(f, fmt)
    result = import_rows(session, project, read_rows(f, fmt))
    record(
        session,
        principal.id,
        "items.import",
        "project",
        project.id,
        format=fmt,
        created=result.created,
        skipped=result.skipped,
    )
    return result


def queue_import(
    session: Session, principal: Principal, project_id: int, f: IO[bytes], fmt: Format | None
) -> Job:
    """Keep the file in Postgres and import it in a job (for uploads too big for one request)."""
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    fmt = _format(f, fmt)
    job = jobs.enqueue(
        session, IMPORT, {"format": fmt}, project_id=project.id, created_by=principal.id
    )
    size = jobs.add_blob(session, job.id, iter(lambda: f.read(jobs.BLOB_CHUNK), b""))
    job.params = {"format": fmt, "bytes": size}
    record(session, principal.id, "items.import_queued", "project", project.id, job_id=job.id)
    return job
