"""The data directory: attempt folders, durable hashed writes, publish, and cleanup."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app import storage
from app.db import session_scope
from app.exports.jobs import FILES
from app.jobs import registry
from tests.conftest import Actor
from tests.jobs import kinds
from tests.jobs.helpers import enqueue, sql

ProjectFactory = Callable[..., dict[str, Any]]


@pytest.fixture(autouse=True)
def empty_data_dir() -> None:
    """Other tests leave snapshot and run folders behind (their rows are truncated, the files
    stay): every area cleanup looks after starts empty."""
    registry.load()  # the job modules declare the domains' storage areas

    for name in (*storage.area_names(), storage.JOBS_DIR):
        shutil.rmtree(storage.data_dir() / name, ignore_errors=True)


def age(path: Path, seconds: float = storage.CLEANUP_GRACE_SECONDS + 1) -> Path:
    past = time.time() - seconds
    os.utime(path, (past, past))
    return path


def cleanup() -> list[Path]:
    with session_scope() as session:
        return storage.cleanup(session)


def test_an_attempt_folder_is_written_durably_with_sha256() -> None:
    folder = storage.AttemptFolder.create(FILES, 41, 2)
    assert folder.relative == "exports/41-2"
    assert folder.path == storage.data_dir() / "exports" / "41-2"
    with folder.open("data.jsonl") as f:
        for n in range(1000):
            f.write(f'{{"n": {n}}}\n'.encode())
    digest = folder.record(f)
    card = folder.write("README.md", b"# card\n")
    data = (folder.path / "data.jsonl").read_bytes()
    assert (digest.bytes, digest.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert card.sha256 == hashlib.sha256(b"# card\n").hexdigest()
    assert sorted(folder.files) == ["README.md", "data.jsonl"]
    assert folder.seal() == "exports/41-2"
    # A file is never overwritten in place; a re-run of the same attempt starts afresh.
    with pytest.raises(FileExistsError):
        folder.open("data.jsonl")
    again = storage.AttemptFolder.create(FILES, 41, 2)
    assert list(again.path.iterdir()) == []


def test_a_file_abandoned_by_an_error_is_closed_and_its_folder_can_go() -> None:
    folder = storage.AttemptFolder.create(FILES, 42, 1)
    with pytest.raises(RuntimeError), folder.open("data.jsonl") as f:
        f.write(b"half")
        raise RuntimeError("cancelled")
    folder.discard()
    assert not folder.path.exists()


def export_with_job(actor: Actor, project_id: int) -> tuple[int, int]:
    r = actor.client.post(f"/api/v1/projects/{project_id}/exports", json={})
    assert r.status_code == 202, r.text
    return r.json()["export_id"], r.json()["job_id"]


def test_cleanup_keeps_published_and_writable_folders_and_removes_the_rest(
    researcher: Actor, project_factory: ProjectFactory
) -> None:
    pid = project_factory(items=1)["id"]
    published, published_job = export_with_job(researcher, pid)
    running, running_job = export_with_job(researcher, pid)
    root = storage.data_dir() / "exports"
    folders = {
        "published": storage.AttemptFolder.create(FILES, published, 2),
        "stale of published": storage.AttemptFolder.create(FILES, published, 1),
        "current attempt": storage.AttemptFolder.create(FILES, running, 3),
        "stale attempt": storage.AttemptFolder.create(FILES, running, 2),
        "no such export": storage.AttemptFolder.create(FILES, 999, 1),
    }
    young = storage.AttemptFolder.create(FILES, 998, 1)  # maybe not committed yet
    for folder in folders.values():
        age(folder.path)
    sql("UPDATE exports SET path = 'exports/' || id || '-2' WHERE id = %s", published)
    sql("UPDATE jobs SET status = 'succeeded' WHERE id = %s", published_job)
    sql("UPDATE jobs SET status = 'running', attempts = 3 WHERE id = %s", running_job)
    (root / "not-an-attempt").mkdir()
    age(root / "not-an-attempt")

    removed = set(cleanup())
    assert removed == {
        folders[n].path for n in ("stale of published", "stale attempt", "no such export")
    }
    for name in ("published", "current attempt"):
        assert folders[name].path.is_dir(), name
    assert young.path.is_dir() and (root / "not-an-attempt").is_dir()
    # Once its job ended without publishing, the running attempt's folder goes too.
    sql("UPDATE jobs SET status = 'failed' WHERE id = %s", running_job)
    assert cleanup() == [folders["current attempt"].path]


def test_cleanup_removes_work_dirs_of_jobs_that_ended_or_do_not_exist() -> None:
    queued = enqueue(kinds.STEPS, {"steps": 1})
    ended = enqueue(kinds.STEPS, {"steps": 1})
    sql("UPDATE jobs SET status = 'cancelled' WHERE id = %s", ended)
    dirs = {j: storage.work_dir(j) for j in (queued, ended, 777, 778)}
    age(dirs[777])  # a job that is gone; 778 is too young to tell
    assert set(cleanup()) == {dirs[ended], dirs[777]}
    assert dirs[queued].is_dir() and dirs[778].is_dir()


def test_an_area_is_declared_once_per_table() -> None:
    from app.jobs.models import Job

    assert storage.area("exports", FILES.table) is FILES
    with pytest.raises(RuntimeError, match="declared twice"):
        storage.area("exports", Job)
