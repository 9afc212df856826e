"""Helpers for the training-run tests: a registered tiny base model, an annotated project."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.exports.helpers import annotate
from tests.helpers import Actor, sql
from tests.training.helpers import FEATURE, filler, with_feature

ProjectFactory = Callable[..., dict[str, Any]]
# Small and quick: a 2-layer GPT-2 over a few dozen words, batches of 4, no checkpoints.
TINY = {"checkpoint_every": 1000, "max_length": 64, "batch_size": 4}


def register(admin: Actor, path: Path | str, name: str = "tiny gpt2") -> dict[str, Any]:
    r = admin.client.post("/api/v1/models", json={"name": name, "path": str(path)})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def preference_project(
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    n_items: int = 60,
) -> int:
    """A pairwise project whose annotator always prefers the response carrying FEATURE."""
    rng = random.Random(1)
    items = []
    for i in range(n_items):
        pair = [with_feature(rng, rng.randint(3, 8)), filler(rng, rng.randint(4, 9))]
        rng.shuffle(pair)
        prompt = f"question {i % 10} {filler(rng, 3)}\n"
        items.append(
            {"external_id": f"p-{i}", "prompt": prompt, "responses": [{"text": t} for t in pair]}
        )
    annotator = make_user("annotator")
    project = project_factory("pairwise", items=0, members=(annotator,), overlap=1)
    r = researcher.client.post(f"/api/v1/projects/{project['id']}/items", json=items)
    assert r.status_code == 201, r.text

    def prefer_feature(task: dict[str, Any]) -> dict[str, Any]:
        first = task["item"]["responses"][0]["text"]
        return {"choice": "a" if FEATURE in first.split() else "b"}

    annotate(annotator, project["id"], prefer_feature)
    return int(project["id"])


def counts() -> dict[str, int]:
    """Rows of what a run creates: a rejected request must leave these unchanged."""
    tables = ("training_runs", "model_versions", "exports", "jobs")
    return {t: int(sql(f"SELECT count(*) FROM {t}")[0][0]) for t in tables}
