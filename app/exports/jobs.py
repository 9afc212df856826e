"""Job kinds of the exports domain: writing a frozen snapshot's files."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from app import storage
from app.auth.models import Role
from app.exports.models import Export
from app.jobs import queues
from app.jobs.specs import JobSpec, Mode

if TYPE_CHECKING:
    from app.jobs.context import JobContext

# Snapshot folders: data_dir/exports/<export id>-<attempt>/, published through exports.path.
FILES = storage.area("exports", Export)
PROGRESS_EVERY_S = 2.0
# The annotation ids of every vote that made a row, ascending, one per line.
LABELS = "annotation_ids.txt"


@dataclass(frozen=True, slots=True)
class Written:
    """A snapshot's files, written and sealed in an attempt folder, not yet published."""

    folder: storage.AttemptFolder
    path: str
    manifest: dict[str, Any]
    data: storage.FileDigest
    rows: int

    def result(self, export_id: int) -> dict[str, Any]:
        return {
            "export_id": export_id,
            "rows": self.rows,
            "bytes": self.data.bytes,
            "sha256": self.data.sha256,
        }

    def publish(self, session: Session, export_id: int) -> Export:
        """Point the export at the folder: call it in the job's fenced commit."""
        export = session.get_one(Export, export_id)
        export.path = self.path
        export.manifest = self.manifest
        export.sha256 = self.data.sha256
        export.bytes = self.data.bytes
        export.rows = self.rows
        export.finished_at = datetime.now(UTC)
        return export


def write_snapshot(ctx: JobContext, export_id: int) -> Written:
    """Write an export's data file, manifest and card into this attempt's folder (no
    transaction open meanwhile; the export reads its own snapshot). The caller publishes it
    (`Written.publish`) in its job's commit, or discards the folder on failure. Training runs
    call this too, for the snapshot they make on the fly."""
    import orjson

    from app.db import get_engine
    from app.exports import card
    from app.exports.build import ExportRun
    from app.exports.schemas import ExportOptions
    from app.exports.service import CARD, MANIFEST, make_manifest

    with ctx.transaction() as session:
        export = session.get_one(Export, export_id)
        project_id, file_name = export.project_id, export.file_name
        options = ExportOptions.model_validate(export.options)
    folder = storage.AttemptFolder.create(FILES, export_id, ctx.attempt)
    try:
        with folder.open(file_name) as f:
            run = ExportRun(get_engine(), project_id, options, f, with_progress=True)
            last = time.monotonic()
            for fraction in run.batches():
                if time.monotonic() - last >= PROGRESS_EVERY_S:
                    ctx.progress(fraction)  # also where a cancel request is seen
                    last = time.monotonic()
        data = folder.record(f)
        assert run.outcome is not None
        manifest = make_manifest(export_id, options, run.outcome, file_name, data)
        ids = sorted(set(run.outcome.stats.label_ids))
        labels = folder.write(LABELS, "".join(f"{i}\n" for i in ids).encode())
        # Lineage reads this file: the exact annotations behind the snapshot's rows.
        manifest["labels"] = {"file": LABELS, "count": len(ids), "sha256": labels.sha256}
        folder.write(MANIFEST, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        folder.write(CARD, card.render(manifest).encode())
        return Written(folder, folder.seal(), manifest, data, run.outcome.stats.rows)
    except BaseException:
        folder.discard()
        raise


def run_snapshot(ctx: JobContext) -> dict[str, Any]:
    """Write the snapshot's files, then publish the folder and mark the job succeeded in one
    commit."""
    export_id = int(ctx.params["export_id"])
    written = write_snapshot(ctx, export_id)
    result = written.result(export_id)
    try:
        with ctx.complete(result) as session:
            written.publish(session, export_id)
    except BaseException:
        written.folder.discard()  # no half-written or unpublished snapshot stays behind
        raise
    # Lower attempt numbers can no longer publish (their claim is gone): their files go.
    storage.discard_other_attempts(FILES, export_id, keep=ctx.attempt)
    return result


SNAPSHOT = JobSpec(
    kind="exports.snapshot",
    mode=Mode.external,
    handler=run_snapshot,
    queue=queues.DEFAULT,
    max_attempts=3,
    time_limit=timedelta(hours=2),
    visible_to=Role.researcher,  # like every export route
)
