"""SFT learns the annotators' rewrites (ILF) and refuses snapshots it cannot use."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.helpers import require_train_extra

pytestmark = pytest.mark.train
require_train_extra()

from app.exports.schemas import Schema  # noqa: E402
from app.training.config import PolicyEval, SftConfig  # noqa: E402
from app.training.errors import TrainingInputError  # noqa: E402
from app.training.run import run_training  # noqa: E402
from tests.training.helpers import (  # noqa: E402
    MemoryContext,
    critique_rows,
    preference_rows,
    save_tiny_model,
    vocabulary,
    write_snapshot,
)


@pytest.fixture(scope="module")
def base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("base") / "gpt2", vocabulary())


def sft_config(base_model: Path, **extra: object) -> SftConfig:
    return SftConfig.model_validate(
        {
            "base_model": str(base_model),
            "epochs": 4,
            "learning_rate": 3e-3,
            "batch_size": 8,
            "eval_fraction": 0.25,
            "checkpoint_every": 1000,
            "log_every": 5,
            "max_length": 64,
            "evaluation": PolicyEval(prompts=8, max_new_tokens=8),
            **extra,
        }
    )


def test_sft_on_rewrites_learns_them(base_model: Path, tmp_path: Path) -> None:
    snap = write_snapshot(tmp_path / "snap", Schema.critique, critique_rows(60))
    ctx = MemoryContext(tmp_path / "work")
    result = run_training(sft_config(base_model), snap, tmp_path / "out", ctx, report_every_s=0)
    m = result.metrics
    print({k: v for k, v in m.items() if k != "loss_curve"})
    assert m["train_examples"] == 45 and m["heldout_examples"] == 15
    assert m["heldout_nll"] < 0.8 * m["heldout_nll_parent"]
    assert m["loss_curve"][-1]["loss"] < m["loss_curve"][0]["loss"]
    assert m["eval_prompts"] == 8 and m["kl_to_parent"] > 0


def test_sft_refuses_a_snapshot_of_another_schema(base_model: Path, tmp_path: Path) -> None:
    snap = write_snapshot(tmp_path / "snap", Schema.preference, preference_rows(4))
    with pytest.raises(TrainingInputError, match="critique export; this snapshot is preference"):
        run_training(sft_config(base_model), snap, tmp_path / "out", MemoryContext(tmp_path / "w"))
    assert not (tmp_path / "out").exists()


def test_sft_without_rewrites_says_so(base_model: Path, tmp_path: Path) -> None:
    rows = [{**r, "rewrite": None} for r in critique_rows(4)]
    snap = write_snapshot(tmp_path / "snap", Schema.critique, rows)
    with pytest.raises(TrainingInputError, match="no rewrites or responses rated at least"):
        run_training(
            sft_config(base_model, min_rating=5),
            snap,
            tmp_path / "out",
            MemoryContext(tmp_path / "w"),
        )
