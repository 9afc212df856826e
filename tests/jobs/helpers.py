"""Helpers for job tests: SQL, waiting on a job row, and real Celery worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import redis

from tests.jobs.kinds import EFFECTS_DDL

ROOT = Path(__file__).resolve().parents[2]
JOB_COLUMNS = (
    "status",
    "progress",
    "progress_detail",
    "params",
    "result",
    "error",
    "attempts",
    "lost_attempts",
    "max_attempts",
    "kind",
    "queue",
    "project_id",
    "checkpoint",
    "cancel_requested_at",
    "heartbeat_at",
    "started_at",
    "finished_at",
)


def sql(query: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(os.environ["TANDEM_DATABASE_URL"], autocommit=True) as conn:
        cur = conn.execute(query, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def job_row(job_id: int) -> dict[str, Any]:
    row = sql(f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs WHERE id = %s", job_id)[0]
    return dict(zip(JOB_COLUMNS, row, strict=True))


def wait_until(
    check: Callable[[], Any], timeout: float = 60, every: float = 0.1, what: str = ""
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or check}")
        time.sleep(every)


def wait_for_status(job_id: int, *statuses: str, timeout: float = 60) -> dict[str, Any]:
    return wait_until(  # type: ignore[no-any-return]
        lambda: (r := job_row(job_id))["status"] in statuses and r,
        timeout=timeout,
        what=f"job {job_id} to be {'/'.join(statuses)}",
    )


def reset_effects() -> None:
    sql(EFFECTS_DDL)
    sql("TRUNCATE test_job_effects")


def effects(job_id: int) -> list[tuple[int, int]]:
    """(step, attempt) of each effect row, in step order."""
    return [
        (r[0], r[1])
        for r in sql(
            "SELECT step, attempt FROM test_job_effects WHERE job_id = %s ORDER BY step, attempt",
            job_id,
        )
    ]


def enqueue(spec: Any, params: dict[str, Any], **kw: Any) -> int:
    from app.db import session_scope
    from app.jobs.service import enqueue as enqueue_job

    with session_scope() as session:
        return enqueue_job(session, spec, params, **kw).id


def broker() -> redis.Redis:
    return redis.Redis.from_url(os.environ["TANDEM_REDIS_URL"])


# Worker processes in tests: short leases and sweeps, so that recovery takes seconds.
FAST = {"TANDEM_JOB_LEASE_SECONDS": "3", "TANDEM_SWEEPER_INTERVAL_SECONDS": "0.5"}


class WorkerProcess:
    """A real worker in its own process group (`celery worker`, or a `tandem worker` command)."""

    def __init__(self, command: list[str], name: str, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def identities(self) -> list[str]:
        """Its sweeper's identity as announced in Redis (node name prefix)."""
        members = broker().zrange("tandem:queue-workers:default", 0, -1)
        return [m.decode() for m in members if m.decode().startswith(f"{self.name}@")]

    def wait_ready(self, timeout: float = 60) -> str:
        identity: str = wait_until(
            lambda: self.alive_or_raise() and self.identities(),
            timeout=timeout,
            what=f"worker {self.name} to start",
        )[0]
        return identity

    def alive_or_raise(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"worker {self.name} exited: {self.log.read_text()[-3000:]}")
        return True

    def kill(self) -> None:
        """SIGKILL the whole worker: main process and pool children, no shutdown of any kind."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log_file.close()


@contextmanager
def worker_processes(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start workers with start(...); all of them are stopped (or killed) at the end."""
    started: list[WorkerProcess] = []

    def start(
        *, fast: bool = True, tandem_cli: bool = False, queues: str = "default", **env: str
    ) -> WorkerProcess:
        name = f"w{len(started) + 1}-{uuid.uuid4().hex[:6]}"
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(FAST if fast else {}), **env}
        if tandem_cli:
            # The documented command, as users run it; its node is celery@<host>.
            command = [str(Path(sys.executable).parent / "tandem"), "worker", "--queues", queues]
            command += ["--concurrency", "1"]
            name = "celery"
        else:
            command = [sys.executable, "-m", "celery", "-A", "worker.celery_app:celery_app"]
            command += ["worker", "-Q", queues, "--concurrency", "1", "--pool", "prefork"]
            command += ["-n", f"{name}@%h", "--loglevel", "INFO", "--without-heartbeat"]
            command += ["--without-gossip", "--without-mingle"]
        w = WorkerProcess(command, name, full_env, tmp_path / f"{name}.log")
        started.append(w)
        return w

    try:
        yield start
    finally:
        for w in started:
            w.stop()
