"""Files under the data directory: a folder per job attempt, durable writes with sha256, atomic
publish, and cleanup of what no job will ever publish.

Layout (TANDEM_DATA_DIR, the volume web and workers share):

    <area>/<key>-<attempt>/   what attempt <attempt> of a job wrote for record <key> of an area
                              (exports/3-1/: export 3, first attempt)
    jobs/<job id>/            a job's work dir, kept across attempts, removed when the job ends

An attempt writes only into its own folder, so a stale attempt can never mix its files with a
newer one. Publishing is a database write: the record's `path` column gets the folder's relative
path in the transaction that finishes the job, so readers see a folder only once it is complete
and durable (files and folder fsynced). An area is a table with `id`, `path` and `job_id`
columns; `cleanup` removes folders that no row publishes and no running attempt can publish.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from sqlalchemy import event, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.config import get_settings
from app.jobs.models import Job, JobStatus

log = logging.getLogger(__name__)
JOBS_DIR = "jobs"
# Folders changed this recently are left alone by cleanup (an attempt may be creating one
# whose record it has not committed yet).
CLEANUP_GRACE_SECONDS = 600
# An attempt folder, or the hidden sibling it is written in before a rename publishes it
# (`.<key>-<attempt>.partial`, see partial_path): both are garbage once no attempt can publish.
_ATTEMPT_NAME = re.compile(r"^\.?(\d+)-(\d+)(?:\.partial)?$")


def data_dir() -> Path:
    return get_settings().data_dir


class Published(Protocol):
    """The table of an area: rows that publish a folder and name the job that writes it."""

    id: InstrumentedAttribute[int]
    path: InstrumentedAttribute[str | None]
    job_id: InstrumentedAttribute[int | None]


@dataclass(frozen=True, slots=True)
class Area:
    name: str
    table: type[Any]  # a mapped class following `Published`


_areas: dict[str, Area] = {}


def area(name: str, table: type[Any]) -> Area:
    """Declare (once per process) a kind of published folders, for writing and for cleanup."""
    declared = _areas.setdefault(name, Area(name, table))
    if declared.table is not table:
        raise RuntimeError(f"storage area {name!r} is declared twice")
    return declared


def area_names() -> list[str]:
    """Folders under the data directory that cleanup looks after, besides jobs' work dirs."""
    return sorted(_areas)


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (created, renamed files) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DurableFile:
    """A new file written through sha256 and a byte count; flushed and fsynced on close."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f = path.open("xb")
        self._sha = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes, /) -> int:
        self._f.write(data)
        self._sha.update(data)
        self.bytes += len(data)
        return len(data)

    def flush(self) -> None:
        self._f.flush()

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()

    def __enter__(self) -> DurableFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._f.close()


@dataclass(frozen=True, slots=True)
class FileDigest:
    name: str
    bytes: int
    sha256: str


@dataclass(slots=True)
class AttemptFolder:
    """The folder one job attempt writes for one record: data_dir/<area>/<key>-<attempt>/."""

    area: Area
    key: int
    attempt: int
    files: dict[str, FileDigest] = field(default_factory=dict)

    @property
    def relative(self) -> str:
        """What the record's `path` column holds once published."""
        return f"{self.area.name}/{self.key}-{self.attempt}"

    @property
    def path(self) -> Path:
        return data_dir() / self.relative

    @classmethod
    def create(cls, area: Area, key: int, attempt: int) -> AttemptFolder:
        """A fresh, empty folder (what a crashed run of the same attempt left is removed)."""
        folder = cls(area, key, attempt)
        if folder.path.exists():
            shutil.rmtree(folder.path)
        folder.path.mkdir(parents=True)
        fsync_dir(folder.path.parent)
        return folder

    def open(self, name: str) -> DurableFile:
        return DurableFile(self.path / name)

    def record(self, f: DurableFile) -> FileDigest:
        digest = FileDigest(f.path.name, f.bytes, f.sha256)
        self.files[digest.name] = digest
        return digest

    def write(self, name: str, data: bytes) -> FileDigest:
        with self.open(name) as f:
            f.write(data)
        return self.record(f)

    def seal(self) -> str:
        """Make the folder's entries durable; returns the path to publish in the job's commit."""
        fsync_dir(self.path)
        return self.relative

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def partial_path(path: Path) -> Path:
    """Where a folder is written before it is renamed into place (half-written if a worker
    died): a hidden sibling that cleanup and the next attempt recognise."""
    return path.parent / f".{path.name}.partial"


def discard_attempts(area: Area, key: int, attempts: range) -> None:
    """Remove the folders of these attempts for one record, whole or half-written."""
    root = data_dir() / area.name
    for attempt in attempts:
        folder = root / f"{key}-{attempt}"
        for path in (folder, partial_path(folder)):
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)
                log.info("removed %s", path)


def discard_other_attempts(area: Area, key: int, keep: int) -> None:
    """Remove the folders of earlier attempts for one record (they can no longer publish)."""
    discard_attempts(area, key, range(1, keep))


def work_dir(job_id: int) -> Path:
    """A job's work dir (created on first use), the same for every attempt."""
    path = data_dir() / JOBS_DIR / str(job_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def remove_work_dir(job_id: int) -> None:
    shutil.rmtree(data_dir() / JOBS_DIR / str(job_id), ignore_errors=True)


def _old_enough(path: Path, now: float) -> bool:
    try:
        return now - path.stat().st_mtime >= CLEANUP_GRACE_SECONDS
    except FileNotFoundError:
        return False


def _area_garbage(session: Session, a: Area, now: float) -> list[Path]:
    root = data_dir() / a.name
    if not root.is_dir():
        return []
    folders: dict[int, list[tuple[int, Path]]] = {}
    for entry in root.iterdir():
        m = _ATTEMPT_NAME.match(entry.name)
        if m and entry.is_dir() and _old_enough(entry, now):
            folders.setdefault(int(m[1]), []).append((int(m[2]), entry))
    if not folders:
        return []
    t = a.table
    rows = session.execute(
        select(t.id, t.path, Job.status, Job.attempts)
        .outerjoin(Job, Job.id == t.job_id)
        .where(t.id.in_(list(folders)))
    )
    owners = {r[0]: (r[1], r[2], r[3]) for r in rows}
    garbage = []
    for key, attempts in folders.items():
        published, status, current = owners.get(key, (None, None, None))
        for attempt, path in attempts:
            if published == f"{a.name}/{path.name}":
                continue
            # Only the attempt that holds the job's claim may still publish this folder.
            if status == JobStatus.running.value and current == attempt:
                continue
            garbage.append(path)
    return garbage


def _work_dir_garbage(session: Session, now: float) -> list[Path]:
    root = data_dir() / JOBS_DIR
    if not root.is_dir():
        return []
    dirs = {int(e.name): e for e in root.iterdir() if e.name.isdigit() and e.is_dir()}
    if not dirs:
        return []
    alive = set(
        session.scalars(
            select(Job.id).where(
                Job.id.in_(list(dirs)),
                Job.status.in_([JobStatus.queued.value, JobStatus.running.value]),
            )
        )
    )
    # A finished job's work dir goes at once (the runner missed it); an unknown job's after
    # the grace period (its row may not be committed yet).
    known = set(session.scalars(select(Job.id).where(Job.id.in_(list(dirs)))))
    return [p for j, p in dirs.items() if j not in alive and (j in known or _old_enough(p, now))]


def cleanup(session: Session) -> list[Path]:
    """Remove unpublished attempt folders that no running attempt can publish any more, and the
    work dirs of jobs that ended or no longer exist. Returns what was removed."""
    now = time.time()
    removed = [p for a in _areas.values() for p in _area_garbage(session, a, now)]
    removed += _work_dir_garbage(session, now)
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
        log.info("storage cleanup: removed %s", path)
    return removed


def remove_record_folders(area: Area, key: int) -> None:
    """Remove every folder of one record (published or not), once its row is gone: what a
    deleted export leaves. Folders a still-running attempt creates later are left to cleanup."""
    root = data_dir() / area.name
    if not root.is_dir():
        return
    for entry in root.iterdir():
        m = _ATTEMPT_NAME.match(entry.name)
        if m and int(m[1]) == key:
            shutil.rmtree(entry, ignore_errors=True)
            log.info("removed %s", entry)


_AFTER_COMMIT = "tandem_storage_after_commit"


def remove_after_commit(session: Session, area: Area, key: int) -> None:
    """Remove a record's folders once the transaction deleting its row commits (never before:
    a rolled-back delete keeps its files)."""
    session.info.setdefault(_AFTER_COMMIT, []).append((area, key))


@event.listens_for(Session, "after_commit")
def _remove_after_commit(session: Session) -> None:
    for area_, key in session.info.pop(_AFTER_COMMIT, ()):
        remove_record_folders(area_, key)


@event.listens_for(Session, "after_rollback")
def _forget_removals(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT, None)
