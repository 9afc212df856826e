"""Two processes on the CPU (accelerate launch, torchrun, gloo) train one reward model: DDP."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.helpers import require_train_extra

pytestmark = pytest.mark.train
require_train_extra()

from app.exports.schemas import Schema  # noqa: E402
from app.training.config import RewardModelConfig  # noqa: E402
from app.training.distributed import run_distributed  # noqa: E402
from app.training.errors import ModelNotFound  # noqa: E402
from tests.training.helpers import (  # noqa: E402
    MemoryContext,
    preference_rows,
    save_tiny_model,
    vocabulary,
    write_snapshot,
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ddp")
    base = save_tiny_model(root / "base", vocabulary())
    snap = write_snapshot(root / "snap", Schema.preference, preference_rows(40))
    return base, snap


def test_two_process_ddp_run_trains_and_reports_through_the_job(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    base, snap = setup
    # 30 training pairs, 3 per process per step: 5 optimizer steps an epoch over 2 processes
    # (one process alone would take 10): 10 steps in all proves the data was split.
    config = RewardModelConfig(
        base_model=str(base),
        epochs=2,
        batch_size=3,
        learning_rate=1e-3,
        eval_fraction=0.25,
        checkpoint_every=4,
        log_every=2,
        max_length=64,
    )
    ctx = MemoryContext(tmp_path / "work")
    result = run_distributed(
        config,
        snap,
        tmp_path / "out",
        ctx,
        num_processes=2,
        report_every_s=0,
        env={"OMP_NUM_THREADS": "1"},
    )
    assert result.metrics["steps"] == 10
    assert result.metrics["heldout_pairs"] == 10
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert sorted(set(ctx.steps_reported())) == list(range(1, 11))  # relayed from rank 0 only
    assert [c["step"] for c in ctx.checkpoints] == [4, 8, 10]


def test_a_bad_input_in_the_launched_processes_is_reported_as_such(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    _, snap = setup
    config = RewardModelConfig(base_model=str(tmp_path / "missing"), max_steps=1)
    with pytest.raises(ModelNotFound, match="does not exist on this worker"):
        run_distributed(
            config, snap, tmp_path / "out", MemoryContext(tmp_path / "w"), num_processes=2
        )
    assert not (tmp_path / "out").exists()
