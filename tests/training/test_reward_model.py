"""Reward models learn planted preferences: pairs (Bradley-Terry), rankings (Plackett-Luce), spans."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.helpers import require_train_extra

pytestmark = pytest.mark.train
require_train_extra()

from app.exports.schemas import Schema  # noqa: E402
from app.training.config import RewardModelConfig  # noqa: E402
from app.training.run import run_training  # noqa: E402
from tests.training.helpers import (  # noqa: E402
    MemoryContext,
    preference_rows,
    ranking_rows,
    save_tiny_model,
    span_rows,
    vocabulary,
    write_snapshot,
)


@pytest.fixture(scope="module")
def base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("base") / "gpt2", vocabulary())


def test_bradley_terry_learns_a_planted_preference(base_model: Path, tmp_path: Path) -> None:
    snap = write_snapshot(tmp_path / "snap", Schema.preference, preference_rows(120))
    config = RewardModelConfig(
        base_model=str(base_model),
        epochs=4,
        learning_rate=3e-3,
        batch_size=8,
        eval_fraction=0.25,
        checkpoint_every=1000,
        log_every=5,
        max_length=64,
    )
    ctx = MemoryContext(tmp_path / "work")
    result = run_training(config, snap, tmp_path / "out", ctx, report_every_s=0)
    m = result.metrics
    assert m["heldout_pairs"] == 30 and m["heldout_items"] == 30
    assert m["heldout_accuracy"] >= 0.9
    assert m["heldout_reward_margin"] > 0


def test_plackett_luce_learns_a_planted_order(base_model: Path, tmp_path: Path) -> None:
    snap = write_snapshot(tmp_path / "snap", Schema.ranking, ranking_rows(60))
    config = RewardModelConfig(
        base_model=str(base_model),
        epochs=6,
        learning_rate=5e-3,
        batch_size=4,
        eval_fraction=0.25,
        checkpoint_every=1000,
        log_every=5,
        max_length=64,
    )
    ctx = MemoryContext(tmp_path / "work")
    m = run_training(config, snap, tmp_path / "out", ctx, report_every_s=0).metrics
    print(
        {k: v for k, v in m.items() if k != "loss_curve"},
        [round(p["loss"], 3) for p in m["loss_curve"]],
    )
    assert m["objective"] == "plackett_luce"
    assert m["heldout_items"] == 15 and m["heldout_pairs"] == 15 * 6
    assert m["heldout_accuracy"] >= 0.9
    assert m["heldout_top1_accuracy"] >= 0.8
    assert m["loss_curve"][-1]["loss"] < m["loss_curve"][0]["loss"]


def test_span_reward_model_learns_planted_labels(base_model: Path, tmp_path: Path) -> None:
    snap = write_snapshot(tmp_path / "snap", Schema.spans, span_rows(80))
    config = RewardModelConfig(
        base_model=str(base_model),
        epochs=6,
        learning_rate=3e-3,
        batch_size=8,
        eval_fraction=0.25,
        checkpoint_every=1000,
        log_every=5,
        max_length=64,
    )
    ctx = MemoryContext(tmp_path / "work")
    result = run_training(config, snap, tmp_path / "out", ctx, report_every_s=0)
    m = result.metrics
    print({k: v for k, v in m.items() if k != "loss_curve"})
    assert m["labels"] == ["error", "praise"]
    assert m["heldout_token_f1"]["error"]["f1"] >= 0.9
    assert m["heldout_token_f1"]["praise"]["f1"] >= 0.9
