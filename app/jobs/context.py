"""What a job handler sees of its job: the contract between the runner and every domain's handlers.

Long work (judging, training, generation) runs in the `external` mode: no database transaction is
held while the handler works. The handler reports progress (which also renews its claim), checks
for cancellation, checkpoints a small JSON state so that a re-delivered job continues where the
last attempt stopped, and writes its effects in short transactions fenced by its claim.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.orm import Session


class JobCancelled(Exception):
    """Raised inside a handler (by `progress`, or by the handler itself) once cancel was asked."""


class JobContext(Protocol):
    @property
    def job_id(self) -> int: ...

    @property
    def attempt(self) -> int:
        """This run's claim number (the fencing token); 1 on the first delivery."""

    @property
    def params(self) -> Mapping[str, Any]: ...

    @property
    def work_dir(self) -> Path:
        """A folder of this job's under the data directory, the same for every attempt (so
        checkpoint files survive a re-delivery) and removed once the job has ended."""

    def progress(self, fraction: float, detail: Mapping[str, Any] | None = None) -> None:
        """Record progress in [0, 1] with an optional detail (step, loss, counts...), renew the
        claim, and raise JobCancelled if cancellation was requested."""

    def heartbeat(self) -> None:
        """Renew the claim without new progress (a long single step)."""

    def cancelled(self) -> bool:
        """Whether cancellation was requested (for handlers that clean up before stopping)."""

    def checkpoint(self, state: Mapping[str, Any]) -> None:
        """Store a JSON state, committed at once; `resume_state` of a later attempt returns it."""

    def resume_state(self) -> dict[str, Any] | None:
        """The last checkpointed state of an earlier attempt (or this one), else None."""

    def transaction(self) -> AbstractContextManager[Session]:
        """A short transaction that commits only while this attempt still holds the job's claim
        (raises LostClaim otherwise): where an external handler writes its effects."""
