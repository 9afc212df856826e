"""What a run tells its job: progress with step and loss, checkpoints to resume from, cancellation.

`Reporter` turns trainer events into `JobContext` calls without importing any ML library: a
run's phases (sampling, scoring, training, evaluating) each own a slice of [0, 1], database
writes are throttled to one every `every_s` seconds (plus every logged loss), and a cancel
request, which `ctx.progress` raises as JobCancelled, is remembered so that the trainer can stop
at the end of its step instead of dying in the middle of one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from app.jobs.context import JobCancelled, JobContext

# Seconds between progress writes (logged losses, phases and the end are written at once). The
# claim is renewed by the runner's heartbeat thread, so progress serves the page and the cancel
# check only; a database write per optimizer step measurably slowed the platform's runs against
# the library's (bench/train_runs.py) once steps took longer than the old 2 s bound.
REPORT_EVERY_S = 10.0

# Keys of a trainer's log line that go into the loss curve (and the progress detail).
CURVE_KEYS = (
    "loss",
    "learning_rate",
    "grad_norm",
    "accuracy",
    "margin",
    "rewards/margins",
    "rewards/accuracies",
)


def curve_point(logs: Mapping[str, Any]) -> dict[str, float] | None:
    """The loss-curve values of a trainer log line, or None for lines without a loss."""
    point = {k: float(logs[k]) for k in CURVE_KEYS if isinstance(logs.get(k), int | float)}
    return point if "loss" in point else None


class Reporter:
    def __init__(
        self,
        ctx: JobContext,
        *,
        every_s: float = REPORT_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        is_main: bool = True,
    ) -> None:
        self.ctx = ctx
        self.every_s = every_s
        self.clock = clock
        self.is_main = is_main  # only one process of a distributed run talks to the job
        self.cancel_requested = False
        self._span = (0.0, 1.0)
        self._phase = "train"
        self._last_report = -math.inf
        self._last_detail: dict[str, Any] = {}
        # The job's checkpoint state: earlier attempts' records, added to as phases finish.
        self.state: dict[str, Any] = dict(ctx.resume_state() or {})

    def phase(self, name: str, start: float, end: float) -> None:
        """The next events belong to `name`, which covers [start, end] of the whole run."""
        self._phase = name
        self._span = (start, end)
        self._last_detail = {}
        self.report(0.0, force=True)

    def report(
        self, within: float, detail: Mapping[str, Any] | None = None, *, force: bool = False
    ) -> None:
        """Progress `within` the current phase; written when forced or `every_s` has passed."""
        if detail:
            self._last_detail = dict(detail)
        if not self.is_main or self.cancel_requested:
            return
        now = self.clock()
        if not force and now - self._last_report < self.every_s:
            return
        self._last_report = now
        start, end = self._span
        fraction = start + (end - start) * min(1.0, max(0.0, within))
        try:
            self.ctx.progress(fraction, {"phase": self._phase, **self._last_detail})
        except JobCancelled:
            self.cancel_requested = True

    def step(self, step: int, max_steps: int) -> None:
        """A finished optimizer step (renews the claim while steps are slow)."""
        detail = {**self._last_detail, "step": step, "max_steps": max_steps}
        self.report(step / max_steps if max_steps else 0.0, detail)

    def logged(self, step: int, max_steps: int, logs: Mapping[str, Any]) -> None:
        """A trainer log line with a loss: reported at once."""
        point = curve_point(logs)
        if point is None:
            return  # the end-of-training summary has no loss
        detail = {"step": step, "max_steps": max_steps, **point}
        self.report(step / max_steps if max_steps else 0.0, detail, force=True)

    def remember(self, **state: Any) -> None:
        """Record what is done (samples written, a checkpoint) so that a re-delivery skips it."""
        self.state.update(state)
        if self.is_main:
            self.ctx.checkpoint(dict(self.state))

    def saved(self, step: int, checkpoint: Path) -> None:
        """A complete trainer checkpoint was written: a re-delivery resumes from it."""
        relative = checkpoint.relative_to(self.ctx.work_dir)
        self.remember(checkpoint=str(relative), step=step)

    def raise_if_cancelled(self) -> None:
        if self.cancel_requested:
            raise JobCancelled(f"cancelled during {self._phase}")
