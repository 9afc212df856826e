"""Export errors a client must tell apart."""

from __future__ import annotations

from app.errors import Conflict


class ExportNotReady(Conflict):
    """The snapshot's job has not finished: poll the export (or its job) and try again."""

    code = "export_not_ready"
