"""Generation: a registered model samples through the inference registry and its samples become
items whose responses name the version; labels on them trace back to it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.training.helpers import require_train_extra

pytestmark = pytest.mark.train
require_train_extra()

from tests.helpers import Actor, sql  # noqa: E402
from tests.training.helpers import save_tiny_model, vocabulary  # noqa: E402
from tests.training.runs_helpers import ProjectFactory, counts, register  # noqa: E402
from worker.tasks.jobs import run_job  # noqa: E402

SAMPLING = {"temperature": 1.0, "max_tokens": 6, "seed": 3}


@pytest.mark.parametrize(("kind", "per_item"), [("pairwise", 2), ("ranking", 3)])
def test_generated_items_carry_the_model_version_that_wrote_them(
    kind: str,
    per_item: int,
    admin: Actor,
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    tmp_path: Path,
) -> None:
    model = register(admin, save_tiny_model(tmp_path / "policy", vocabulary()), "tiny policy")
    annotator = make_user("annotator")
    pid = int(project_factory(kind, items=0, members=(annotator,))["id"])
    body = {
        "model_id": model["id"],
        "prompts": ["question 1 w1 w2", "question 2 w3"],
        "n": 2,
        "sampling": SAMPLING,
        **({"responses_per_item": per_item} if kind == "ranking" else {}),
    }
    r = researcher.client.post(f"/api/v1/projects/{pid}/generate", json=body)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    assert run_job(job_id) == "done"
    job = researcher.client.get(f"/api/v1/jobs/{job_id}").json()
    result = job["result"]
    assert result["model_version_id"] == model["id"]
    assert result["items_created"] + result["skipped_empty"] == 4 and result["items_created"] >= 1

    rows = sql(
        "SELECT i.external_id, count(r.id), array_agg(DISTINCT r.model_version_id),"
        " array_agg(DISTINCT r.lineage->>'job_id') FROM items i JOIN responses r"
        " ON r.item_id = i.id WHERE i.project_id = %s GROUP BY i.id",
        pid,
    )
    assert len(rows) == result["items_created"]
    for ext, n_responses, versions, jobs in rows:
        assert ext.startswith(f"gen-{job_id}-") and n_responses == per_item
        assert versions == [model["id"]] and jobs == [str(job_id)]

    # The items are served for labelling like imported ones; the version cannot be deleted.
    task = annotator.client.post(f"/api/v1/projects/{pid}/tasks/next")
    assert task.status_code == 200 and len(task.json()["item"]["responses"]) == per_item
    got = researcher.client.get(f"/api/v1/models/{model['id']}").json()
    assert got["generated_responses"] == per_item * result["items_created"]
    r = admin.client.delete(f"/api/v1/models/{model['id']}")
    assert r.status_code == 409 and "generated response" in r.json()["detail"]


def test_bad_generation_requests_are_422s_that_change_nothing(
    admin: Actor, researcher: Actor, project_factory: ProjectFactory, tmp_path: Path
) -> None:
    model = register(admin, save_tiny_model(tmp_path / "policy", vocabulary()))
    pid = int(project_factory("pairwise", items=0)["id"])
    ok = {"model_id": model["id"], "prompts": ["hi"]}
    before = counts()
    for body, needle in [
        ({**ok, "model_id": 999999}, "model 999999 does not exist"),
        ({**ok, "prompts": []}, "prompts"),
        ({**ok, "responses_per_item": 3}, "applies to ranking"),
        ({**ok, "sampling": {"temprature": 1}}, "temprature"),
        ({**ok, "sampling": {"n": 3}}, "sampling.n"),
        ({**ok, "backend": "nope"}, "Unknown backend"),
        ({**ok, "backend_params": {"device": "tpu"}}, "transformers backend"),
    ]:
        r = researcher.client.post(f"/api/v1/projects/{pid}/generate", json=body)
        assert r.status_code == 422 and needle in r.text, (body, r.text)
    assert counts() == before


def test_a_seeded_sample_of_a_prompt_set_becomes_items_that_name_the_set(
    admin: Actor, researcher: Actor, project_factory: ProjectFactory, tmp_path: Path
) -> None:
    model = register(admin, save_tiny_model(tmp_path / "policy", vocabulary()), "tiny policy")
    pid = int(project_factory("pairwise", items=0)["id"])
    prompts = [f"question {i} w1" for i in range(12)]
    made = researcher.client.post(
        f"/api/v1/projects/{pid}/prompt-sets", json={"name": "questions", "prompts": prompts}
    ).json()
    body = {
        "model_id": model["id"],
        "prompt_set_id": made["id"],
        "prompt_sample": 4,
        "prompt_seed": 1,
        "sampling": SAMPLING,
    }
    r = researcher.client.post(f"/api/v1/projects/{pid}/generate", json=body)
    assert r.status_code == 202 and r.json()["prompts"] == 4, r.text
    job_id = r.json()["job_id"]
    assert run_job(job_id) == "done"
    indices = sql("SELECT params->'prompt_indices' FROM jobs WHERE id = %s", job_id)[0][0]
    rows = sql(
        "SELECT i.prompt, i.metadata->>'prompt_set_id', r.lineage->>'prompt_set_id'"
        " FROM items i JOIN responses r ON r.item_id = i.id WHERE i.project_id = %s",
        pid,
    )
    assert rows and {p for p, _, _ in rows} <= {prompts[i] for i in indices}
    assert {(a, b) for _, a, b in rows} == {(str(made["id"]), str(made["id"]))}
    result = researcher.client.get(f"/api/v1/jobs/{job_id}").json()["result"]
    assert result["done"] == 4
