"""Job messages wait in the session until its transaction commits, then go to the broker.

So a job is never sent before its row exists, and a rolled-back job is never sent at all. A send
that fails (broker down) is only logged: the sweeper sends queued jobs whose message is overdue.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.jobs import broker

log = logging.getLogger(__name__)
_PENDING = "tandem_pending_jobs"


@dataclass(frozen=True, slots=True)
class Message:
    job_id: int
    queue: str
    time_limit_s: int | None = None
    countdown: float = 0.0


def send_after_commit(session: Session, message: Message) -> None:
    session.info.setdefault(_PENDING, []).append(message)


def send(message: Message) -> bool:
    """Send now; False (logged) if the broker did not take it."""
    try:
        broker.send_run_job(
            message.job_id,
            message.queue,
            countdown=message.countdown,
            time_limit_s=message.time_limit_s,
        )
    except Exception:
        log.exception("could not send job %s to the broker; the sweeper will retry", message.job_id)
        return False
    return True


@event.listens_for(Session, "after_commit")
def _send_after_commit(session: Session) -> None:
    for message in session.info.pop(_PENDING, ()):
        send(message)


@event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
