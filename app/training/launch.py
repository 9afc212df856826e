"""One process of a distributed run: `accelerate launch -m app.training.launch ...`.

Every process runs the same trainer (DDP or FSDP, as accelerate is configured); rank 0 writes
the artifacts and talks to the job through files (`app.training.file_context`). Run it by hand
for a training without a job:

    accelerate launch --multi_gpu --num_processes 4 -m app.training.launch \\
        --config run.json --input /data/exports/3-1 --out /models/rm-1 --work-dir /scratch/rm-1

Exit status: 0 done, 3 cancelled, 2 bad input or config (message in work-dir/error.json), 1
anything else.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import orjson
from pydantic import ValidationError

from app.errors import DomainError
from app.jobs.context import JobCancelled
from app.training.config import parse_config
from app.training.file_context import FileContext
from app.training.reporter import REPORT_EVERY_S
from app.training.run import run_training

EXIT_CANCELLED = 3
EXIT_INVALID = 2
ERROR = "error.json"


def _write_error(control: Path, kind: str, message: str) -> None:
    if int(os.environ.get("RANK", "0")) == 0:
        (control / ERROR).write_bytes(orjson.dumps({"type": kind, "message": message}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.training.launch")
    parser.add_argument("--config", type=Path, required=True, help="the run's config (JSON)")
    parser.add_argument("--input", type=Path, required=True, help="export snapshot folder")
    parser.add_argument("--out", type=Path, required=True, help="artifacts folder to create")
    parser.add_argument("--work-dir", type=Path, required=True, help="checkpoints and state")
    parser.add_argument("--control-dir", type=Path, help="events/state/cancel files (work-dir)")
    parser.add_argument("--report-every", type=float, default=REPORT_EVERY_S, help="seconds")
    args = parser.parse_args(argv)
    control = args.control_dir or args.work_dir
    args.work_dir.mkdir(parents=True, exist_ok=True)
    control.mkdir(parents=True, exist_ok=True)
    try:
        config = parse_config(orjson.loads(args.config.read_bytes()))
        ctx = FileContext(args.work_dir, control_dir=control)
        run_training(config, args.input, args.out, ctx, report_every_s=args.report_every)
    except JobCancelled:
        return EXIT_CANCELLED
    except ValidationError as exc:
        _write_error(control, "Invalid", f"invalid training config: {exc}")
        return EXIT_INVALID
    except DomainError as exc:
        _write_error(control, type(exc).__name__, exc.message)
        return EXIT_INVALID
    except Exception as exc:
        _write_error(control, type(exc).__name__, str(exc))
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
