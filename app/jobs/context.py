"""What a job handler sees of its job: the contract between the runner and every domain's handlers.

Long work (judging, training, generation) runs in the `external` mode: no database transaction is
held while the handler works. The handler reports progress (which also renews its claim), checks
for cancellation, checkpoints a small JSON state so that a re-delivered job continues where the
last attempt stopped, and writes its effects in short transactions fenced by its claim.

What the runner does with what a handler raises:
- `JobCancelled`: the job ends `cancelled`.
- `JobFailed`, any `app.errors.DomainError`, `TimeLimitExceeded`: the job ends `failed` at once
  with the message (bad parameters or configuration: running it again cannot help).
- `LostClaim`: nothing (a newer attempt owns the job).
- any other exception: unexpected, so the attempt is retried after a backoff while attempts
  remain; after the last one the job ends `failed` with the exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.orm import Session


class JobCancelled(Exception):
    """Raised inside a handler (by `progress`, or by the handler itself) once cancel was asked."""


class LostClaim(Exception):
    """The job was claimed again after this attempt's claim ran out: its work must not count."""


class JobFailed(Exception):
    """Raise from a handler to fail the job at once with this message (no retry)."""


class TimeLimitExceeded(Exception):
    """The attempt ran past its kind's time limit; the job fails without a retry."""


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
        claim, and raise JobCancelled if cancellation was requested (TimeLimitExceeded past the
        time limit). Each call is one small write: call it per step or batch, not per row."""

    def heartbeat(self) -> None:
        """Renew the claim without new progress (a long single step). The runner also renews
        it from a thread every third of the lease while the handler runs."""

    def cancelled(self) -> bool:
        """Whether cancellation was requested (for handlers that clean up before stopping)."""

    def checkpoint(self, state: Mapping[str, Any]) -> None:
        """Store a JSON state; `resume_state` of a later attempt returns it. Called inside
        `transaction()` it commits with that transaction (an effect and the state that records
        it commit together, so a re-delivered job applies the effect exactly once); outside
        one it commits at once."""

    def resume_state(self) -> dict[str, Any] | None:
        """The last checkpointed state of an earlier attempt (or this one), else None."""

    def transaction(self) -> AbstractContextManager[Session]:
        """A short transaction that commits only while this attempt still holds the job's claim
        (raises LostClaim otherwise, JobCancelled once cancel was asked): where an external
        handler writes its effects. It locks the job row, so a concurrent re-claim waits."""

    def complete(self, result: Mapping[str, Any]) -> AbstractContextManager[Session]:
        """Like `transaction()`, and it also marks the job succeeded with `result`: the final
        effect (publishing a file's path, registering a model) and `succeeded` commit together.
        Optional: a handler that returns without calling it is marked succeeded with its
        return value in a transaction of its own."""
