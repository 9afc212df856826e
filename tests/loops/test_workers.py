"""A loop on real Celery worker processes, moved on by their sweeper: the worker is killed
(SIGKILL) between steps and in the middle of the reward model's training; the loop resumes
where it was and no step runs twice."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.training.helpers import require_train_extra

pytestmark = pytest.mark.train
require_train_extra()

from tests.helpers import Actor, sql  # noqa: E402
from tests.jobs.helpers import WorkerProcess, job_row, wait_until, worker_processes  # noqa: E402
from tests.loops.helpers import (  # noqa: E402
    ProjectFactory,
    label_all,
    loop_body,
    loop_out,
    register,
    step_rows,
)
from tests.training.helpers import save_tiny_model, vocabulary  # noqa: E402

StartWorker = Callable[..., WorkerProcess]
QUEUES = "default,cpu-train"
STEPS = ["generate", "route", "labels", "snapshot", "reward_model", "update", "evaluate"]


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[StartWorker]:
    with worker_processes(tmp_path) as start:
        yield start


def _current(loop_id: int) -> tuple[int, str, str, int | None]:
    rows = step_rows(loop_id)
    return rows[-1] if rows else (0, "", "", None)


def _train_step(job_id: int) -> int:
    detail = job_row(job_id)["progress_detail"] or {}
    step = detail.get("step")
    return step if isinstance(step, int) else 0


def test_a_killed_worker_leaves_the_loop_where_it_was_and_no_step_runs_twice(
    workers: StartWorker,
    admin: Actor,
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    tmp_path: Path,
) -> None:
    policy = register(admin, save_tiny_model(tmp_path / "policy", vocabulary()), "tiny policy")
    rm_base = register(
        admin, save_tiny_model(tmp_path / "rm", vocabulary(), n_embd=128), "tiny rm base"
    )
    annotator = make_user("annotator")
    pid = int(project_factory("pairwise", items=0, members=(annotator,), overlap=1)["id"])
    rm_config = {"max_steps": 60, "checkpoint_every": 10, "log_every": 2, "batch_size": 4}
    body: dict[str, Any] = loop_body(pid, policy, rm_base, iterations=1)
    body["reward_model"]["config"] = {**rm_config, "max_length": 64, "learning_rate": 1e-3}
    first = workers(queues=QUEUES)
    first.wait_ready()
    r = researcher.client.post("/api/v1/loops", json=body)
    assert r.status_code == 202, r.text
    loop_id = r.json()["id"]

    # Between steps: the worker dies while the loop waits for labels (nothing running).
    wait_until(lambda: _current(loop_id)[2] == "waiting", timeout=180, what="labels to wait")
    first.kill()
    assert label_all(annotator, pid) >= 2
    second = workers(queues=QUEUES)
    second.wait_ready()

    # Mid-step: the worker dies while the reward model trains (past its checkpoint at 10).
    def rm_job() -> int | None:
        row = _current(loop_id)
        return row[3] if row[1] == "reward_model" else None

    job_id = wait_until(rm_job, timeout=180, what="the reward model step")
    wait_until(lambda: _train_step(job_id) >= 14, timeout=180, what="training step 14")
    second.kill()
    checkpoint = job_row(job_id)["checkpoint"]
    assert checkpoint is not None and checkpoint["step"] >= 10, checkpoint
    third = workers(queues=QUEUES)
    third.wait_ready()

    out = wait_until(
        lambda: (o := loop_out(researcher, loop_id))["status"] != "running" and o,
        timeout=300,
        what="the loop to end",
    )
    assert out["status"] == "succeeded", out
    rows = step_rows(loop_id)
    assert [s for _, s, _, _ in rows] == STEPS  # each step once
    jobs = [j for *_, j in rows if j is not None]
    states = {int(r[0]): (r[1], r[2], r[3]) for r in sql(
        "SELECT id, status, attempts, lost_attempts FROM jobs WHERE id = ANY(%s)", jobs
    )}  # fmt: skip
    assert all(s == "succeeded" for s, _, _ in states.values()), states
    assert states[job_id][1:] == (2, 1)  # the killed training resumed in a second attempt
    run_id = out["iterations"][0]["steps"][4]["links"]["training_run_id"]
    run = researcher.client.get(f"/api/v1/training-runs/{run_id}").json()
    assert run["metrics"]["resumed_from_step"] >= checkpoint["step"]
    # The generation ran once: as many tagged items as its job created.
    created = job_row(rows[0][3])["result"]["items_created"]
    tagged = sql(
        "SELECT count(*) FROM items WHERE project_id = %s AND metadata @> %s::jsonb",
        pid,
        f'{{"loop_id": {loop_id}}}',
    )[0][0]
    assert tagged == created and job_row(rows[0][3])["attempts"] == 1
    metrics = out["iterations"][0]["metrics"]
    assert 0 <= metrics["by_gold_reward"]["win_rate_vs_iteration_0"] <= 1
