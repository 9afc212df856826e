"""How a job is reported to those who may see it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    status: str
    queue: str
    progress: float
    # The handler's last progress detail (e.g. step, loss), as it reported it.
    progress_detail: dict[str, Any] | None
    result: dict[str, Any] | None
    # Why it failed; while it is retrying, why the last attempt did not succeed.
    error: str | None
    project_id: int | None
    created_by: int | None
    attempts: int
    max_attempts: int
    time_limit_s: int
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    # The last sign of life of the running attempt.
    heartbeat_at: datetime | None
    finished_at: datetime | None
