"""What a killed attempt half-wrote never outlives the run: the next attempt removes it, a
failed or cancelled run removes its own and earlier attempts' folders, and storage cleanup
removes a half-written folder whose job ended without another attempt."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.training.helpers import require_train_extra

pytestmark = pytest.mark.train
require_train_extra()

from app.config import get_settings  # noqa: E402
from tests.helpers import Actor, sql  # noqa: E402
from tests.training.helpers import save_tiny_model, vocabulary  # noqa: E402
from tests.training.runs_helpers import (  # noqa: E402
    TINY,
    ProjectFactory,
    counts,
    preference_project,
    register,
)
from worker.tasks.jobs import run_job  # noqa: E402


def _runs_dir() -> Path:
    return get_settings().data_dir / "runs"


def _plant_killed_attempt(run_id: int, job_id: int) -> list[Path]:
    """Attempt 1 as a SIGKILL during the save leaves it: a half-written hidden folder (and an
    empty attempt folder); the job row says one attempt ran."""
    for name in _of_run(run_id):  # ids restart per test: an earlier test's folders of this id
        shutil.rmtree(_runs_dir() / name)
    partial = _runs_dir() / f".{run_id}-1.partial"
    partial.mkdir(parents=True)
    (partial / "model.safetensors").write_bytes(b"\0" * 100)  # cut short
    whole = _runs_dir() / f"{run_id}-1"
    whole.mkdir()
    sql("UPDATE jobs SET attempts = 1 WHERE id = %s", job_id)
    return [partial, whole]


def _of_run(run_id: int) -> list[str]:
    if not _runs_dir().is_dir():
        return []
    return sorted(
        p.name for p in _runs_dir().iterdir() if p.name.lstrip(".").startswith(f"{run_id}-")
    )


def test_the_next_attempt_removes_what_a_killed_one_half_wrote(
    admin: Actor,
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    tmp_path: Path,
) -> None:
    base = register(admin, save_tiny_model(tmp_path / "base", vocabulary()))
    pid = preference_project(researcher, project_factory, make_user, n_items=8)
    body = {"kind": "reward_model", "project_id": pid, "base_model_id": base["id"]}
    queued = researcher.client.post(
        "/api/v1/training-runs", json={**body, "config": {**TINY, "max_steps": 2}}
    ).json()
    _plant_killed_attempt(queued["id"], queued["job_id"])

    assert run_job(queued["job_id"]) == "done"
    run = researcher.client.get(f"/api/v1/training-runs/{queued['id']}").json()
    assert run["status"] == "succeeded" and run["artifact"]["path"] == f"runs/{queued['id']}-2"
    assert _of_run(queued["id"]) == [f"{queued['id']}-2"]  # nothing half-written, nothing else


def test_a_failed_run_removes_its_attempts_folders_and_registers_nothing(
    admin: Actor,
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    tmp_path: Path,
) -> None:
    folder = save_tiny_model(tmp_path / "gone", vocabulary())
    base = register(admin, folder)
    pid = preference_project(researcher, project_factory, make_user, n_items=8)
    body = {"kind": "reward_model", "project_id": pid, "base_model_id": base["id"]}
    queued = researcher.client.post("/api/v1/training-runs", json={**body, "config": TINY}).json()
    _plant_killed_attempt(queued["id"], queued["job_id"])
    (folder / "config.json").unlink()  # attempt 2 fails for good
    before = counts()["model_versions"]

    assert run_job(queued["job_id"]) == "failed"
    assert _of_run(queued["id"]) == []
    assert counts()["model_versions"] == before
    run = researcher.client.get(f"/api/v1/training-runs/{queued['id']}").json()
    assert run["artifact"] is None and run["model_version_id"] is None


def test_storage_cleanup_removes_a_half_written_folder_of_an_ended_job(
    admin: Actor,
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    tmp_path: Path,
) -> None:
    from app import storage
    from app.db import session_scope

    base = register(admin, save_tiny_model(tmp_path / "base", vocabulary()))
    pid = preference_project(researcher, project_factory, make_user, n_items=8)
    body = {"kind": "reward_model", "project_id": pid, "base_model_id": base["id"]}
    queued = researcher.client.post("/api/v1/training-runs", json={**body, "config": TINY}).json()
    planted = _plant_killed_attempt(queued["id"], queued["job_id"])
    # The sweeper gave up on the job after its lost attempts: no handler ran again.
    sql("UPDATE jobs SET status = 'failed', finished_at = now() WHERE id = %s", queued["job_id"])
    old = time.time() - storage.CLEANUP_GRACE_SECONDS - 60
    for path in planted:
        os.utime(path, (old, old))
    with session_scope() as session:
        removed = storage.cleanup(session)
    assert set(planted) <= set(removed)
    assert _of_run(queued["id"]) == []
