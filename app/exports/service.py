"""Export rules: who may export, streamed exports, snapshot jobs, and the files they leave.

A snapshot's files live under settings.data_dir/exports/<export id>-<attempt>/ (the volume web
and workers share; see app/storage.py): the data file, manifest.json and README.md, written by
the `exports.snapshot` job (app/exports/jobs.py). Folder names differ between exports because
`datasets` caches a loaded folder under its name.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import __version__
from app.audit.service import record
from app.auth.models import Role
from app.auth.service import Principal, require_role
from app.config import get_settings
from app.db import get_engine
from app.errors import Invalid, NotFound
from app.exports.build import ExportRun, Outcome, check_options
from app.exports.errors import ExportNotReady
from app.exports.jobs import SNAPSHOT
from app.exports.models import Export
from app.exports.schemas import Aggregate, ExportOptions, ExportOut
from app.exports.writers import ChunkSink, HashingSink
from app.jobs import service as jobs
from app.jobs.models import Job
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


def stream_export(
    session: Session, principal: Principal, project_id: int, options: ExportOptions
) -> Iterator[bytes]:
    """Check access and options now; the returned iterator reads one snapshot as it is consumed."""
    project = _project(session, principal, project_id, options)
    if options.aggregate is Aggregate.dawid_skene:
        # Dawid-Skene fits every vote before the first row: work for a job, not a request.
        raise Invalid(
            "aggregate=dawid_skene is computed by a snapshot export: POST"
            f" /api/v1/projects/{project_id}/exports with the same options."
        )
    record(session, principal.id, "exports.stream", "project", project.id, **options.stored())
    engine = get_engine()

    def chunks() -> Iterator[bytes]:
        sink = ChunkSink()
        for _ in ExportRun(engine, project.id, options, sink).batches():
            data = sink.drain()
            if data:
                yield data

    return chunks()


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
        "counts": outcome.counts(),
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
    session: Session, principal: Principal, project_id: int, page: Keyset
) -> list[ExportOut]:
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    stmt = (
        select(Export, Job)
        .outerjoin(Job, Job.id == Export.job_id)
        .where(Export.project_id == project.id)
        .order_by(Export.id)
        .limit(page.limit + 1)
    )
    if page.after_id is not None:
        stmt = stmt.where(Export.id > page.after_id)
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
