"""Every kind trains from a real export snapshot: items imported and annotated through the API,
the snapshot written by its job, the folder handed to the library as a training job will."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.training.helpers import require_train_extra

pytestmark = pytest.mark.train
require_train_extra()

from app.config import get_settings  # noqa: E402
from app.training.config import (  # noqa: E402
    DpoConfig,
    PolicyEval,
    RewardModelConfig,
    SftConfig,
)
from app.training.run import run_training  # noqa: E402
from tests.conftest import Actor  # noqa: E402
from tests.exports.helpers import annotate, snapshot  # noqa: E402
from tests.training.helpers import (  # noqa: E402
    FEATURE,
    MemoryContext,
    filler,
    save_tiny_model,
    vocabulary,
    with_feature,
)

ProjectFactory = Callable[..., dict[str, Any]]
TINY = {"checkpoint_every": 1000, "max_length": 64, "batch_size": 4}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("base") / "gpt2", vocabulary())


def snapshot_folder(researcher: Actor, project_id: int, **options: Any) -> Path:
    done = snapshot(researcher, project_id, **options)
    return get_settings().data_dir / "exports" / f"{done['id']}-1"


def project_with(
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    kind: str,
    items: list[dict[str, Any]],
    decide: Callable[[dict[str, Any]], dict[str, Any]],
    **settings: Any,
) -> int:
    annotator = make_user("annotator")
    project = project_factory(kind, items=0, members=(annotator,), overlap=1, **settings)
    r = researcher.client.post(f"/api/v1/projects/{project['id']}/items", json=items)
    assert r.status_code == 201, r.text
    annotate(annotator, project["id"], decide)
    return int(project["id"])


def test_reward_model_learns_a_preference_annotated_through_the_api(
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    base: Path,
    tmp_path: Path,
) -> None:
    rng = random.Random(1)
    items = []
    for i in range(120):
        pair = [with_feature(rng, rng.randint(3, 8)), filler(rng, rng.randint(4, 9))]
        rng.shuffle(pair)
        prompt = f"question {i % 10} {filler(rng, 3)}\n"
        items.append(
            {"external_id": f"p-{i}", "prompt": prompt, "responses": [{"text": t} for t in pair]}
        )

    def prefer_feature(task: dict[str, Any]) -> dict[str, Any]:
        first = task["item"]["responses"][0]["text"]
        return {"choice": "a" if FEATURE in first.split() else "b"}

    pid = project_with(researcher, project_factory, make_user, "pairwise", items, prefer_feature)
    folder = snapshot_folder(researcher, pid, schema="preference", format="parquet")
    config = RewardModelConfig(
        base_model=str(base), epochs=4, learning_rate=3e-3, eval_fraction=0.25, **TINY
    )
    result = run_training(config, folder, tmp_path / "rm", MemoryContext(tmp_path / "w"))
    m = result.metrics
    assert m["objective"] == "bradley_terry" and m["heldout_items"] == 30
    assert m["heldout_accuracy"] >= 0.9
    provenance = run_record(result.artifacts)["inputs"]["snapshot"]
    assert provenance["project"]["id"] == pid and provenance["highest_annotation_id"] is not None

    # The same annotations as conversational JSONL train a DPO policy (chat template path).
    chat = snapshot_folder(researcher, pid, schema="preference", style="conversational")
    dpo = DpoConfig(
        base_model=str(base),
        max_steps=2,
        learning_rate=1e-3,
        evaluation=PolicyEval(prompts=2, max_new_tokens=4),
        **TINY,
    )
    out = run_training(dpo, chat, tmp_path / "dpo", MemoryContext(tmp_path / "w2")).metrics
    assert out["steps"] == 2 and out["heldout_pairs"] == 12 and out["eval_prompts"] == 2


def run_record(folder: Path | None) -> dict[str, Any]:
    import json

    assert folder is not None
    return dict(json.loads((folder / "run.json").read_text()))


def test_ranking_snapshot_trains_plackett_luce_and_its_pairs_train_dpo(
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    base: Path,
    tmp_path: Path,
) -> None:
    items = [
        {
            "external_id": f"r-{i}",
            "prompt": f"question {i}\n",
            "responses": [{"text": f"w{i} {q}"} for q in ("bad", "excellent", "fine")],
        }
        for i in range(8)
    ]
    rank = {"excellent": 0, "fine": 1, "bad": 2}

    def order(task: dict[str, Any]) -> dict[str, Any]:
        shown = task["item"]["responses"]
        return {"order": [r["id"] for r in sorted(shown, key=lambda r: rank[r["text"].split()[1]])]}

    pid = project_with(researcher, project_factory, make_user, "ranking", items, order)
    folder = snapshot_folder(researcher, pid, schema="ranking")
    config = RewardModelConfig(base_model=str(base), max_steps=2, eval_fraction=0.25, **TINY)
    m = run_training(config, folder, tmp_path / "pl", MemoryContext(tmp_path / "w")).metrics
    assert m["objective"] == "plackett_luce" and m["train_items"] == 6 and m["heldout_pairs"] == 6

    pairs = snapshot_folder(researcher, pid, schema="preference", pairs="adjacent")
    dpo = DpoConfig(
        base_model=str(base),
        max_steps=2,
        eval_fraction=0.25,
        evaluation=PolicyEval(prompts=0),
        **TINY,
    )
    out = run_training(dpo, pairs, tmp_path / "dpo", MemoryContext(tmp_path / "w2")).metrics
    assert out["train_pairs"] == 12 and out["heldout_pairs"] == 4  # 2 adjacent pairs per item


def test_span_and_critique_snapshots_train(
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    base: Path,
    tmp_path: Path,
) -> None:
    text = "w1 wrong w2 excellent"
    items = [
        {"external_id": f"s-{i}", "prompt": f"question {i}\n", "responses": [{"text": text}]}
        for i in range(4)
    ]
    marks = {
        "spans": [{"start": 3, "end": 8, "label": "bad"}, {"start": 12, "end": 21, "label": "good"}]
    }
    pid = project_with(researcher, project_factory, make_user, "span", items, lambda t: marks)
    folder = snapshot_folder(researcher, pid, schema="spans")
    config = RewardModelConfig(base_model=str(base), max_steps=2, eval_fraction=0.25, **TINY)
    m = run_training(config, folder, tmp_path / "spans", MemoryContext(tmp_path / "w")).metrics
    assert m["labels"] == ["bad", "good"] and m["heldout_responses"] == 1
    assert m["heldout_token_f1"]["bad"]["marked_tokens"] == 1  # "wrong", one word token

    items = [
        {"external_id": f"c-{i}", "prompt": f"question {i}\n", "responses": [{"text": "w1 w2"}]}
        for i in range(4)
    ]
    rewrite = {"critique": "too short", "rewrite": "better answer w1", "rating": 2}
    pid = project_with(researcher, project_factory, make_user, "critique", items, lambda t: rewrite)
    folder = snapshot_folder(researcher, pid, schema="critique", format="parquet")
    sft = SftConfig(
        base_model=str(base),
        max_steps=2,
        eval_fraction=0.25,
        evaluation=PolicyEval(prompts=1, max_new_tokens=2),
        **TINY,
    )
    out = run_training(sft, folder, tmp_path / "sft", MemoryContext(tmp_path / "w2")).metrics
    assert out["train_examples"] == 3 and out["heldout_examples"] == 1
