"""A JobContext made of files, for runs in processes of their own (`accelerate launch`).

The job's own process keeps the real context and relays: the run's processes append progress
and checkpoint events to `events.jsonl` in the work folder, read the last checkpointed state
from `state.json`, and see a cancel request as a `cancel` file. If the process that launched
them is gone (its worker was killed), they stop as if cancelled: a re-delivered job must never
race with an orphaned run over the same checkpoints.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.orm import Session

from app.jobs.context import JobCancelled

EVENTS = "events.jsonl"
STATE = "state.json"
CANCEL = "cancel"
PARENT_PID_ENV = "TANDEM_TRAINING_PARENT_PID"


def _parent_alive() -> bool:
    pid = os.environ.get(PARENT_PID_ENV)
    if not pid:
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


class FileContext:
    def __init__(
        self,
        work_dir: Path,
        *,
        job_id: int = 0,
        attempt: int = 1,
        params: Mapping[str, Any] | None = None,
        control_dir: Path | None = None,
    ) -> None:
        self._work_dir = work_dir
        self._control = control_dir or work_dir
        self._job_id = job_id
        self._attempt = attempt
        self._params = dict(params or {})

    @property
    def job_id(self) -> int:
        return self._job_id

    @property
    def attempt(self) -> int:
        return self._attempt

    @property
    def params(self) -> Mapping[str, Any]:
        return self._params

    @property
    def work_dir(self) -> Path:
        return self._work_dir

    def _event(self, event: dict[str, Any]) -> None:
        with (self._control / EVENTS).open("ab") as f:
            f.write(orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE))

    def progress(self, fraction: float, detail: Mapping[str, Any] | None = None) -> None:
        self._event({"type": "progress", "fraction": fraction, "detail": dict(detail or {})})
        if self.cancelled():
            raise JobCancelled("cancel requested")

    def heartbeat(self) -> None:
        self._event({"type": "heartbeat"})

    def cancelled(self) -> bool:
        return (self._control / CANCEL).exists() or not _parent_alive()

    def checkpoint(self, state: Mapping[str, Any]) -> None:
        data = orjson.dumps(dict(state))
        tmp = self._control / f".{STATE}.tmp"
        tmp.write_bytes(data)
        tmp.replace(self._control / STATE)
        self._event({"type": "checkpoint", "state": dict(state)})

    def resume_state(self) -> dict[str, Any] | None:
        path = self._control / STATE
        if not path.is_file():
            return None
        state: dict[str, Any] = orjson.loads(path.read_bytes())
        return state

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        raise RuntimeError(
            "a launched training process has no database connection; the job's own process"
            " writes the run's effects"
        )
        yield  # pragma: no cover

    @contextlib.contextmanager
    def complete(self, result: Mapping[str, Any]) -> Iterator[Session]:
        raise RuntimeError(
            "a launched training process cannot complete the job; the job's own process does"
        )
        yield  # pragma: no cover
