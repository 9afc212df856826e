"""DPO raises the chosen-vs-rejected log-ratio on held-out pairs and reports policy metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.helpers import require_train_extra

pytestmark = pytest.mark.train
require_train_extra()

from app.exports.schemas import Schema  # noqa: E402
from app.training.config import DpoConfig, PolicyEval  # noqa: E402
from app.training.run import run_training  # noqa: E402
from tests.training.helpers import (  # noqa: E402
    MemoryContext,
    preference_rows,
    save_tiny_model,
    vocabulary,
    write_snapshot,
)


@pytest.fixture(scope="module")
def base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("base") / "gpt2", vocabulary())


def test_dpo_raises_the_heldout_log_ratio(base_model: Path, tmp_path: Path) -> None:
    snap = write_snapshot(tmp_path / "snap", Schema.preference, preference_rows(80))
    config = DpoConfig(
        base_model=str(base_model),
        epochs=3,
        learning_rate=2e-3,
        batch_size=8,
        beta=0.1,
        eval_fraction=0.25,
        checkpoint_every=1000,
        log_every=5,
        max_length=64,
        evaluation=PolicyEval(prompts=8, max_new_tokens=12),
    )
    ctx = MemoryContext(tmp_path / "work")
    result = run_training(config, snap, tmp_path / "out", ctx, report_every_s=0)
    m = result.metrics
    print(
        {k: v for k, v in m.items() if k != "loss_curve"},
        [round(p["loss"], 3) for p in m["loss_curve"]],
    )
    assert m["heldout_pairs"] == 20
    assert m["heldout_logratio_policy"] > m["heldout_logratio_reference"] + 0.5
    assert m["heldout_reward_accuracy"] >= 0.8
    assert m["eval_prompts"] == 8 and m["kl_to_parent"] > 0
    assert m["mean_length"] > 0 and m["parent_mean_length"] > 0
