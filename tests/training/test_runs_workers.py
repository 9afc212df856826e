"""Training runs on real Celery worker processes: SIGKILL mid-run resumes from the checkpoint,
and a cancel stops a running run; neither leaves a registry entry behind."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.training.helpers import require_train_extra

pytestmark = pytest.mark.train
require_train_extra()

from app.config import get_settings  # noqa: E402
from tests.helpers import Actor  # noqa: E402
from tests.jobs.helpers import (  # noqa: E402
    WorkerProcess,
    job_row,
    wait_for_status,
    wait_until,
    worker_processes,
)
from tests.training.helpers import save_tiny_model, vocabulary  # noqa: E402
from tests.training.runs_helpers import ProjectFactory, preference_project, register  # noqa: E402

StartWorker = Callable[..., WorkerProcess]
QUEUES = "default,cpu-train"


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[StartWorker]:
    with worker_processes(tmp_path) as start:
        yield start


def _step(job_id: int) -> int:
    detail = job_row(job_id)["progress_detail"] or {}
    step = detail.get("step")
    return step if isinstance(step, int) else 0


def _start(researcher: Actor, pid: int, base_id: int, **config: Any) -> dict[str, Any]:
    body = {
        "kind": "reward_model",
        "project_id": pid,
        "base_model_id": base_id,
        "config": {"batch_size": 4, "max_length": 64, "learning_rate": 1e-3, **config},
    }
    r = researcher.client.post("/api/v1/training-runs", json=body)
    assert r.status_code == 202, r.text
    out: dict[str, Any] = r.json()
    return out


def test_a_killed_worker_resumes_the_run_from_its_checkpoint_and_a_cancel_stops_one(
    workers: StartWorker,
    admin: Actor,
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    tmp_path: Path,
) -> None:
    base = register(admin, save_tiny_model(tmp_path / "base", vocabulary(), n_embd=128))
    pid = preference_project(researcher, project_factory, make_user, n_items=24)
    first = workers(queues=QUEUES)
    first.wait_ready()

    queued = _start(researcher, pid, base["id"], max_steps=60, checkpoint_every=10, log_every=2)
    job_id = queued["job_id"]
    assert job_row(job_id)["queue"] == "cpu-train"
    wait_until(lambda: _step(job_id) >= 14, timeout=120, what="step 14")
    first.kill()  # SIGKILL: worker and pool process, mid-run
    checkpoint = job_row(job_id)["checkpoint"]
    assert checkpoint is not None and checkpoint["step"] >= 10, checkpoint
    assert job_row(job_id)["status"] == "running"

    second = workers(queues=QUEUES)
    second.wait_ready()
    job = wait_for_status(job_id, "succeeded", "failed", timeout=240)
    assert job["status"] == "succeeded", job
    assert (job["attempts"], job["lost_attempts"]) == (2, 1)
    run = researcher.client.get(f"/api/v1/training-runs/{queued['id']}").json()
    assert run["metrics"]["steps"] == 60
    assert run["metrics"]["resumed_from_step"] >= checkpoint["step"]  # continued, not restarted
    assert run["model_version_id"] is not None and run["artifact"]["path"].endswith("-2")
    # Nothing of the killed attempt is left beside the published folder.
    runs_dir = get_settings().data_dir / "runs"
    left = sorted(
        p.name for p in runs_dir.iterdir() if p.name.lstrip(".").startswith(f"{queued['id']}-")
    )
    assert left == [f"{queued['id']}-2"], left
    models_before = len(researcher.client.get("/api/v1/models").json()["items"])

    # A cancel stops a running run at the end of a step; nothing is registered.
    long = _start(researcher, pid, base["id"], max_steps=100_000, checkpoint_every=1000)
    wait_until(lambda: _step(long["job_id"]) >= 3, timeout=120, what="the long run's step 3")
    r = researcher.client.post(f"/api/v1/training-runs/{long['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "running", r.text
    wait_for_status(long["job_id"], "cancelled", timeout=60)
    run = researcher.client.get(f"/api/v1/training-runs/{long['id']}").json()
    assert run["status"] == "cancelled" and run["artifact"] is None
    assert run["model_version_id"] is None
    assert len(researcher.client.get("/api/v1/models").json()["items"]) == models_before
