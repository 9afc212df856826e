"""Under a job: progress with step and loss, checkpoints, resume after a kill, cancel."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.helpers import require_train_extra

pytestmark = pytest.mark.train
require_train_extra()

from app.exports.schemas import Schema  # noqa: E402
from app.jobs.context import JobCancelled  # noqa: E402
from app.training.config import RewardModelConfig  # noqa: E402
from app.training.run import run_training  # noqa: E402
from tests.training.helpers import (  # noqa: E402
    MemoryContext,
    WorkerDied,
    preference_rows,
    save_tiny_model,
    vocabulary,
    write_snapshot,
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("resume")
    base = save_tiny_model(root / "base", vocabulary())
    snap = write_snapshot(root / "snap", Schema.preference, preference_rows(40))
    return base, snap


def config(base: Path) -> RewardModelConfig:
    return RewardModelConfig(
        base_model=str(base),
        max_steps=12,
        batch_size=4,
        learning_rate=1e-3,
        checkpoint_every=4,
        log_every=2,
        eval_fraction=0.25,
        max_length=64,
    )


def weights(folder: Path) -> dict[str, object]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_progress_reports_step_and_loss_and_records_checkpoints(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    base, snap = setup
    ctx = MemoryContext(tmp_path / "work")
    result = run_training(config(base), snap, tmp_path / "out", ctx, report_every_s=0)
    assert result.metrics["steps"] == 12
    fractions = [f for f, _ in ctx.reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    train = [d for _, d in ctx.reports if d.get("phase") == "train" and "step" in d]
    assert sorted({d["step"] for d in train}) == list(range(1, 13))
    assert all(d["max_steps"] == 12 for d in train)
    # After the first logged step, every report carries the latest loss.
    assert all(d["loss"] > 0 for d in train if d["step"] > 2)
    assert [c["step"] for c in ctx.checkpoints if "step" in c] == [4, 8, 12]
    assert ctx.checkpoints[0]["checkpoint"] == "checkpoints/checkpoint-4"
    curve = result.metrics["loss_curve"]
    assert [p["step"] for p in curve] == [2, 4, 6, 8, 10, 12]


def test_a_killed_run_resumes_from_its_checkpoint(setup: tuple[Path, Path], tmp_path: Path) -> None:
    base, snap = setup
    ctx = MemoryContext(tmp_path / "work", die_at_step=6)
    with pytest.raises(WorkerDied):
        run_training(config(base), snap, tmp_path / "out", ctx, report_every_s=0)
    assert ctx.resume_state() == {"checkpoint": "checkpoints/checkpoint-4", "step": 4}
    assert not (tmp_path / "out").exists()

    result = run_training(
        config(base), snap, tmp_path / "out", ctx.next_attempt(), report_every_s=0
    )
    steps = ctx.steps_reported()
    assert steps[0] == 5 and steps[-1] == 12  # continued, not restarted
    assert result.metrics["steps"] == 12
    # The loss curve spans both attempts (the history travels in the checkpoint).
    assert [p["step"] for p in result.metrics["loss_curve"]] == [2, 4, 6, 8, 10, 12]

    # The same weights as a run that was never interrupted.
    whole = run_training(
        config(base), snap, tmp_path / "whole", MemoryContext(tmp_path / "w2"), report_every_s=0
    )
    resumed, fresh = weights(result.artifacts), weights(whole.artifacts)  # type: ignore[arg-type]
    assert resumed.keys() == fresh.keys()
    for name in fresh:
        assert (resumed[name] - fresh[name]).abs().max() < 1e-5, name  # type: ignore[operator]


def test_cancel_stops_at_the_end_of_a_step_and_publishes_nothing(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    base, snap = setup
    ctx = MemoryContext(tmp_path / "work", cancel_at_step=3)
    with pytest.raises(JobCancelled):
        run_training(config(base), snap, tmp_path / "out", ctx, report_every_s=0)
    assert max(ctx.steps_reported()) == 3
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out*"))  # no partial artifacts either
