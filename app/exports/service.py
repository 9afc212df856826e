"""Export rules: who may export, streamed exports, snapshot jobs, and the files they leave.

A snapshot's files live under settings.data_dir/exports/<export id>-<attempt>/ (the volume web
and workers share; see app/storage.py): the data file, manifest.json and README.md, written by
the `exports.snapshot` job (app/exports/jobs.py). Folder names differ between exports because
`datasets` caches a loaded folder under its name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import __version__, storage
from app.audit.service import record
from app.auth.models import Role
from app.auth.service import Principal, require_role
from app.config import get_settings
from app.db import get_engine
from app.errors import JobsRunning, NotFound
from app.exports.build import ExportRun, Outcome, check_options
from app.exports.errors import ExportNotReady
from app.exports.jobs import FILES, SNAPSHOT
from app.exports.models import Export
from app.exports.schemas import ExportOptions, ExportOut, Format
from app.exports.stats import empty_reason
from app.exports.writers import ChunkSink, HashingSink
from app.jobs import service as jobs
from app.jobs.models import UNFINISHED, Job
from app.pagination import Keyset
from app.projects.models import Project
from app.projects.service import get_project
from app.storage import FileDigest

MANIFEST = "manifest.json"
CARD = "README.md"


def file_name(options: ExportOptions) -> str:
    return f"{options.row_schema.value}.{options.format.value}"


def _project(session: Session, principal: Principal, project_id: int, o: ExportOptions) -> Project:
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    check_options(o, project.kind, project.aspects)
    return project


@dataclass(frozen=True, slots=True)
class Streamed:
    """A streamed export: its bytes, and why it is empty when it is (known before any byte)."""

    chunks: Iterator[bytes]
    empty_reason: str | None


def stream_export(
    session: Session, principal: Principal, project_id: int, options: ExportOptions
) -> Streamed:
    """Check access and options, then read the snapshot up to its first row (or its end, for
    an empty export, whose reason then goes in the response's headers); the rest is read as
    the returned iterator is consumed."""
    project = _project(session, principal, project_id, options)
    record(session, principal.id, "exports.stream", "project", project.id, **options.stored())
    sink = ChunkSink()
    run = ExportRun(get_engine(), project.id, options, sink)
    batches = run.batches()
    head: list[bytes] = []
    for _ in batches:
        head.append(sink.drain())
        if run.stats is not None and run.stats.rows:
            break
    reason = empty_reason(run.outcome.counts()) if run.outcome is not None else None

    def chunks() -> Iterator[bytes]:
        yield from (data for data in head if data)
        for _ in batches:
            data = sink.drain()
            if data:
                yield data

    return Streamed(chunks(), reason)


@dataclass(frozen=True, slots=True)
class Preview:
    """What an export with these options would hold now (nothing is written)."""

    rows: int
    items: int
    items_with_votes: int
    votes: int
    excluded: dict[str, int]
    empty_reason: str | None


class _Discard:
    def write(self, data: bytes, /) -> int:
        return len(data)


def preview_export(
    session: Session, principal: Principal, project_id: int, options: ExportOptions
) -> Preview:
    """Run the export without keeping its bytes: the exact rows it would give now. Costs one
    export's reading and building (JSONL, whatever format was asked: the rows are the same)."""
    project = _project(session, principal, project_id, options)
    dry = options.model_copy(update={"format": Format.jsonl})
    counts = ExportRun(get_engine(), project.id, dry, _Discard()).run().counts()
    return Preview(
        rows=counts["rows"],
        items=counts["items"],
        items_with_votes=counts["items_with_votes"],
        votes=counts["votes"],
        excluded=counts["excluded"],
        empty_reason=empty_reason(counts),
    )


def request_snapshot(
    session: Session, principal: Principal, project_id: int, options: ExportOptions
) -> tuple[Export, Job]:
    """Record the export and enqueue its job in the caller's transaction."""
    project = _project(session, principal, project_id, options)
    export = Export(
        project_id=project.id,
        created_by=principal.id,
        options=options.stored(),
        file_name=file_name(options),
    )
    session.add(export)
    session.flush()
    job = jobs.enqueue(
        session, SNAPSHOT, {"export_id": export.id}, project_id=project.id, created_by=principal.id
    )
    export.job_id = job.id
    record(session, principal.id, "exports.create", "project", project.id, export_id=export.id)
    return export, job


def make_manifest(
    export_id: int | None,
    options: ExportOptions,
    outcome: Outcome,
    name: str,
    sink: HashingSink | FileDigest,
) -> dict[str, Any]:
    snap = outcome.snapshot
    counts = outcome.counts()
    return {
        "export_id": export_id,
        "tandem_version": __version__,
        "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "project": {
            "id": snap.project.project_id,
            "name": snap.project_name,
            "kind": snap.project.kind.value,
        },
        "schema": options.row_schema.value,
        "format": options.format.value,
        "options": options.stored(),
        "file": {"name": name, "bytes": sink.bytes, "sha256": sink.sha256},
        "snapshot": {
            "taken_at": snap.taken_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "isolation": "repeatable read, read only",
            "pg_snapshot": snap.pg_snapshot,
            "highest_annotation_id": outcome.stats.highest_annotation_id,
            "project_highest_annotation_id": snap.project_max_annotation_id,
        },
        "counts": counts,
        # Why there are no rows (null when there are): the export page shows it.
        "empty_reason": empty_reason(counts),
    }


def _out(export: Export, job: Job | None) -> ExportOut:
    status = job.status if job is not None else ("succeeded" if export.path else "failed")
    return ExportOut(
        id=export.id,
        project_id=export.project_id,
        job_id=export.job_id,
        status=status,
        options=export.options,
        file_name=export.file_name,
        rows=export.rows,
        bytes=export.bytes,
        sha256=export.sha256,
        created_at=export.created_at,
        finished_at=export.finished_at,
        manifest=export.manifest,
        error=job.error if job is not None else None,
    )


def _load(session: Session, principal: Principal, project_id: int, export_id: int) -> Export:
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    export = session.scalars(
        select(Export).where(Export.id == export_id, Export.project_id == project.id)
    ).one_or_none()
    if export is None:
        raise NotFound(f"Export {export_id} does not exist in project {project.id}.")
    return export


def get_export(
    session: Session, principal: Principal, project_id: int, export_id: int
) -> ExportOut:
    export = _load(session, principal, project_id, export_id)
    job = session.get(Job, export.job_id) if export.job_id is not None else None
    return _out(export, job)


def list_exports(
    session: Session,
    principal: Principal,
    project_id: int,
    page: Keyset,
    *,
    newest_first: bool = False,
) -> list[ExportOut]:
    """Oldest first (the API's order), or newest first (the page's); the cursor is the last
    id of the previous page either way."""
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    stmt = (
        select(Export, Job)
        .outerjoin(Job, Job.id == Export.job_id)
        .where(Export.project_id == project.id)
        .order_by(Export.id.desc() if newest_first else Export.id)
        .limit(page.limit + 1)
    )
    if page.after_id is not None:
        after = Export.id < page.after_id if newest_first else Export.id > page.after_id
        stmt = stmt.where(after)
    return [_out(e, j) for e, j in session.execute(stmt)]


def export_file(
    session: Session, principal: Principal, project_id: int, export_id: int, which: str
) -> Path:
    """The path of a finished snapshot's data file ("data"), manifest or card."""
    export = _load(session, principal, project_id, export_id)
    if export.path is None:
        raise ExportNotReady(f"Export {export_id} is not finished yet; see its status first.")
    name = {"data": export.file_name, "manifest": MANIFEST, "card": CARD}[which]
    path = get_settings().data_dir / export.path / name
    if not path.is_file():
        raise NotFound(f"The files of export {export_id} are gone from the data directory.")
    return path


def delete_export(session: Session, principal: Principal, project_id: int, export_id: int) -> None:
    """Delete a snapshot and its files (files once the delete commits). Refused while its job
    is queued or running: cancel it first, or wait."""
    export = _load(session, principal, project_id, export_id)
    job = session.get(Job, export.job_id, with_for_update=True) if export.job_id else None
    if job is not None and job.status in [s.value for s in UNFINISHED]:
        raise JobsRunning(
            f"Export {export_id} is still being written by job {job.id} ({job.status});"
            " cancel the job or wait for it to end, then delete the export."
        )
    session.delete(export)
    storage.remove_after_commit(session, FILES, export.id)
    record(session, principal.id, "exports.delete", "project", project_id, export_id=export_id)
