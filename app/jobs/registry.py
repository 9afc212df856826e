"""Which function runs each kind of job. Named by import path so that nothing imports in a cycle."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from app.jobs.models import Job

Progress = Callable[[float], None]
Handler = Callable[[Session, Job, Progress], dict[str, Any]]

HANDLERS: dict[str, str] = {
    "items.import": "app.items.importer:run_import_job",
    "exports.snapshot": "app.exports.service:run_export_job",
}


def handler_for(kind: str) -> Handler:
    try:
        module_name, _, attr = HANDLERS[kind].partition(":")
    except KeyError:
        raise LookupError(f"no handler registered for job kind {kind!r}") from None
    handler: Handler = getattr(importlib.import_module(module_name), attr)
    return handler
