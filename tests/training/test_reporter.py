"""The job side of a run without any ML library: throttled progress, phases, cancel, resume."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.jobs.context import JobCancelled
from app.training.checkpoints import resume_checkpoint
from app.training.file_context import CANCEL, PARENT_PID_ENV, FileContext
from app.training.reporter import Reporter
from tests.training.helpers import MemoryContext


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_steps_are_throttled_but_logged_losses_always_go_out(tmp_path: Path) -> None:
    ctx, clock = MemoryContext(tmp_path), Clock()
    r = Reporter(ctx, every_s=2.0, clock=clock)
    r.phase("train", 0.0, 0.5)
    for step in range(1, 5):
        clock.now += 0.4
        r.step(step, 10)
    r.logged(5, 10, {"loss": 0.25, "learning_rate": 1e-3, "epoch": 1.0})
    clock.now += 2.0
    r.step(6, 10)
    assert [(f, d.get("step")) for f, d in ctx.reports] == [
        (0.0, None),  # the phase starts
        (0.25, 5),  # the logged loss, at once
        (0.3, 6),  # 2 s later
    ]
    assert ctx.reports[1][1] == {
        "phase": "train",
        "step": 5,
        "max_steps": 10,
        "loss": 0.25,
        "learning_rate": 1e-3,
    }
    assert ctx.reports[2][1]["loss"] == 0.25  # the latest loss rides along


def test_a_cancel_seen_in_progress_is_remembered_and_raised_later(tmp_path: Path) -> None:
    ctx = MemoryContext(tmp_path)
    r = Reporter(ctx, every_s=0)
    ctx.cancel_requested = True
    r.step(1, 10)  # progress raised JobCancelled inside: the step finishes first
    assert r.cancel_requested
    with pytest.raises(JobCancelled, match="cancelled during train"):
        r.raise_if_cancelled()


def test_checkpoints_add_to_the_state_of_earlier_attempts(tmp_path: Path) -> None:
    ctx = MemoryContext(tmp_path)
    ctx.checkpoint({"samples": "samples.parquet"})
    r = Reporter(ctx)
    r.saved(8, tmp_path / "checkpoints" / "checkpoint-8")
    assert ctx.resume_state() == {
        "samples": "samples.parquet",
        "checkpoint": "checkpoints/checkpoint-8",
        "step": 8,
    }


def make_checkpoint(folder: Path, step: int, complete: bool = True) -> Path:
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if complete:
        (path / "trainer_state.json").write_text("{}")
    return path


def test_resume_takes_the_newest_complete_checkpoint(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    assert resume_checkpoint({}, tmp_path, folder) is None
    four = make_checkpoint(folder, 4)
    assert resume_checkpoint({"checkpoint": "checkpoints/checkpoint-4"}, tmp_path, folder) == four
    eight = make_checkpoint(folder, 8)  # written, but the worker died before recording it
    make_checkpoint(folder, 12, complete=False)  # died while writing
    assert resume_checkpoint({"checkpoint": "checkpoints/checkpoint-4"}, tmp_path, folder) == eight
    # A recorded checkpoint that rotation removed falls back to what is there.
    assert resume_checkpoint({"checkpoint": "checkpoints/checkpoint-2"}, tmp_path, folder) == eight


def test_file_context_round_trips_state_and_sees_cancel(tmp_path: Path) -> None:
    ctx = FileContext(tmp_path)
    assert ctx.resume_state() is None
    ctx.checkpoint({"checkpoint": "checkpoints/checkpoint-4", "step": 4})
    assert FileContext(tmp_path).resume_state() == {
        "checkpoint": "checkpoints/checkpoint-4",
        "step": 4,
    }
    ctx.progress(0.5, {"step": 4})
    (tmp_path / CANCEL).touch()
    assert ctx.cancelled()
    with pytest.raises(JobCancelled):
        ctx.progress(0.6, {"step": 5})
    events = (tmp_path / "events.jsonl").read_text().splitlines()
    assert [e.split('"type":')[1].split(",")[0] for e in events] == [
        '"checkpoint"',
        '"progress"',
        '"progress"',
    ]


def test_file_context_stops_when_the_launching_process_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    monkeypatch.setenv(PARENT_PID_ENV, str(gone.pid))
    assert FileContext(tmp_path).cancelled()
    monkeypatch.setenv(PARENT_PID_ENV, str(os.getpid()))
    assert not FileContext(tmp_path).cancelled()


def test_held_out_split_keeps_items_whole_and_rows_without_item_train() -> None:
    import pyarrow as pa

    from app.training.snapshot import split_by

    table = pa.table({"item_id": [1, 1, 2, 3, 3, 3, 4, None], "x": list(range(8))})
    train, held = split_by(table, "item_id", 0.5, seed=0)
    assert train.num_rows + held.num_rows == 8
    held_items = set(held.column("item_id").to_pylist())
    assert len(held_items) == 2 and not held_items & set(train.column("item_id").to_pylist())
    assert None in train.column("item_id").to_pylist()
    assert split_by(table, "item_id", 0.5, seed=0)[1].equals(held)  # seeded
    assert split_by(table, "item_id", 0.0, seed=0)[1].num_rows == 0
