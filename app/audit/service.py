"""Record administrative actions in the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.audit.models import AuditEntry


def record(
    session: Session,
    actor_id: int | None,
    action: str,
    target_type: str,
    target_id: object = None,
    **details: Any,
) -> None:
    session.add(
        AuditEntry(
            actor_id=actor_id,
            action=action,
            target_type=target_type,
            target_id=None if target_id is None else str(target_id),
            details=details,
        )
    )
