"""Which trainer checkpoint a re-delivered job resumes from."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
COMPLETE_MARK = "trainer_state.json"  # the trainer writes it last


def _complete(folder: Path) -> bool:
    return (folder / COMPLETE_MARK).is_file()


def resume_checkpoint(state: dict[str, Any], work_dir: Path, checkpoints: Path) -> Path | None:
    """The checkpoint recorded in the job's state, or a newer complete one beside it.

    A worker can die after the trainer wrote checkpoint N but before the job recorded it (or
    after the trainer deleted the recorded one as it rotated old checkpoints out): the newest
    complete folder is then the right place to continue. A half-written folder is never used.
    """
    found: list[tuple[int, Path]] = []
    recorded = state.get("checkpoint")
    if isinstance(recorded, str) and _complete(work_dir / recorded):
        path = work_dir / recorded
        match = _CHECKPOINT.match(path.name)
        found.append((int(match.group(1)) if match else -1, path))
    if checkpoints.is_dir():
        for child in checkpoints.iterdir():
            match = _CHECKPOINT.match(child.name)
            if match and child.is_dir() and _complete(child):
                found.append((int(match.group(1)), child))
    return max(found)[1] if found else None


def resume_step(checkpoint: Path | None) -> int | None:
    """The step a checkpoint folder was written at."""
    match = _CHECKPOINT.match(checkpoint.name) if checkpoint is not None else None
    return int(match.group(1)) if match else None
