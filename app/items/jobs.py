"""Job kinds of the items domain: importing an upload too large for one request."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.auth.models import Role
from app.jobs import queues
from app.jobs.models import Job
from app.jobs.specs import JobSpec, Mode, Progress


def run_import(session: Session, job: Job, progress: Progress) -> dict[str, Any]:
    """Spool the stored upload to a temp file and import it in the job's transaction."""
    from app.items.importer import import_rows
    from app.items.readers import read_rows
    from app.jobs.service import read_blob
    from app.projects.models import Project

    project = session.get_one(Project, job.project_id)
    total = max(int(job.params.get("bytes", 1)), 1)
    with tempfile.TemporaryFile() as f:
        for chunk in read_blob(session, job.id):
            f.write(chunk)
        f.seek(0)
        rows = read_rows(f, job.params["format"])

        def report(done_rows: int) -> None:
            progress(min(0.99, f.tell() / total))

        result = import_rows(session, project, rows, report)
    return result.model_dump()


# All or nothing, in one transaction: the items and the "succeeded" mark commit together.
IMPORT = JobSpec(
    kind="items.import",
    mode=Mode.transactional,
    handler=run_import,
    queue=queues.DEFAULT,
    max_attempts=3,
    time_limit=timedelta(hours=2),
    visible_to=Role.researcher,  # who may import
)
