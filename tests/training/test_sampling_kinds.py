"""best_of_n and expert_iteration: sampling through a Backend, selection by a reward model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.training.helpers import require_train_extra

pytestmark = pytest.mark.train
require_train_extra()

from app.exports.schemas import Schema, Style  # noqa: E402
from app.training.config import (  # noqa: E402
    BestOfNConfig,
    ExpertIterationConfig,
    PolicyEval,
    RewardModelConfig,
    Sampling,
    SftConfig,
)
from app.training.run import run_training  # noqa: E402
from tests.training.helpers import (  # noqa: E402
    MemoryContext,
    ModelBackend,
    policy_words,
    preference_rows,
    save_tiny_model,
    vocabulary,
    write_snapshot,
)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny random policy and a reward model trained to like FEATURE."""
    root = tmp_path_factory.mktemp("models")
    base = save_tiny_model(root / "policy", vocabulary())
    snap = write_snapshot(
        root / "rm-snap", Schema.preference, preference_rows(120, seed=7, words=policy_words())
    )
    config = RewardModelConfig(
        base_model=str(base),
        epochs=5,
        learning_rate=3e-3,
        batch_size=8,
        eval_fraction=0.1,
        checkpoint_every=1000,
        max_length=64,
    )
    run_training(config, snap, root / "rm", MemoryContext(root / "rm-work"), report_every_s=0)
    return {"policy": base, "rm": root / "rm"}


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    return write_snapshot(tmp_path / "prompts", Schema.preference, preference_rows(40, seed=3))


def backends(opened: list[Any]) -> Any:
    def factory(path: str, sampling: Sampling) -> ModelBackend:
        assert sampling.backend == "transformers"
        backend = ModelBackend(path)
        opened.append(backend)
        return backend

    return factory


def test_best_of_n_beats_a_random_pick_of_the_same_samples(
    models: dict[str, Path], prompts: Path, tmp_path: Path
) -> None:
    config = BestOfNConfig(
        policy=str(models["policy"]),
        reward_model=str(models["rm"]),
        max_length=64,
        sampling=Sampling(n=6, max_new_tokens=8, max_prompts=30),
    )
    opened: list[Any] = []
    out = tmp_path / "bon"
    result = run_training(
        config, prompts, out, MemoryContext(tmp_path / "w"), backends=backends(opened)
    )
    m = result.metrics
    print(m)
    assert m["prompts"] == 30 and m["samples"] == 180
    assert m["mean_score_best"] > m["mean_score_random"] + 0.5
    assert m["score_gain_over_random"] == pytest.approx(
        m["mean_score_best"] - m["mean_score_random"]
    )
    assert m["sampling"]["tokens"] > 0 and m["sampling"]["tokens_per_s"] > 0
    table = pq.read_table(out / "samples.parquet").to_pylist()
    assert len(table) == 180 and sum(r["best"] for r in table) == 30
    assert sum(r["random_pick"] for r in table) == 30
    for pid in range(30):
        group = [r for r in table if r["prompt_id"] == pid]
        assert max(group, key=lambda r: r["score"])["best"]
    assert len(opened) == 1 and opened[0].requests == 30


def test_sft_on_best_of_n_samples_of_chat_prompts(models: dict[str, Path], tmp_path: Path) -> None:
    rows = [
        {
            **r,
            "prompt": [{"role": "user", "content": r["prompt"]}],
            "chosen": [{"role": "assistant", "content": r["chosen"]}],
            "rejected": [{"role": "assistant", "content": r["rejected"]}],
        }
        for r in preference_rows(40, seed=3)
    ]
    prompts = write_snapshot(tmp_path / "chat", Schema.preference, rows, style=Style.conversational)
    bon = BestOfNConfig(
        policy=str(models["policy"]),
        reward_model=str(models["rm"]),
        max_length=64,
        sampling=Sampling(n=4, max_new_tokens=6, max_prompts=20),
    )
    run_training(
        bon, prompts, tmp_path / "bon", MemoryContext(tmp_path / "w1"), backends=backends([])
    )
    sft = SftConfig(
        base_model=str(models["policy"]),
        source="samples",
        max_steps=4,
        batch_size=4,
        learning_rate=1e-3,
        eval_fraction=0.2,
        max_length=64,
        evaluation=PolicyEval(prompts=2, max_new_tokens=4),
    )
    samples = pq.read_table(tmp_path / "bon" / "samples.parquet").to_pylist()
    assert samples[0]["prompt"][0]["role"] == "user"  # sampled through the chat template
    m = run_training(
        sft, tmp_path / "bon", tmp_path / "sft", MemoryContext(tmp_path / "w2")
    ).metrics
    assert m["train_examples"] == 16 and m["heldout_examples"] == 4 and m["steps"] == 4
    assert m["heldout_nll"] > 0 and m["eval_prompts"] == 2
    assert (tmp_path / "sft" / "model.safetensors").is_file()


def test_expert_iteration_policy_scores_higher_than_its_parent(
    models: dict[str, Path], prompts: Path, tmp_path: Path
) -> None:
    config = ExpertIterationConfig(
        base_model=str(models["policy"]),
        reward_model=str(models["rm"]),
        sampling=Sampling(n=8, max_new_tokens=8),
        keep_top=1,
        epochs=8,
        learning_rate=1e-2,
        batch_size=8,
        eval_fraction=0.25,
        checkpoint_every=1000,
        log_every=5,
        max_length=64,
        evaluation=PolicyEval(prompts=10, max_new_tokens=8),
    )
    out = tmp_path / "ei"
    result = run_training(
        config, prompts, out, MemoryContext(tmp_path / "w"), backends=backends([])
    )
    m = result.metrics
    print({k: v for k, v in m.items() if k != "loss_curve"})
    assert m["sampled_prompts"] == 30 and m["eval_prompts"] == 10
    assert m["mean_score_kept"] > m["parent_mean_score_sampled"]
    assert m["mean_reward"] > m["parent_mean_reward"] + 0.3
    assert m["win_rate_vs_parent"] >= 0.5
    assert (out / "model.safetensors").is_file() and (out / "samples.parquet").is_file()
