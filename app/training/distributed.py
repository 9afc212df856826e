"""Run a training job over several processes (every GPU of a worker) with `accelerate launch`.

The job's own process stays the only one that talks to the job: it starts one process per
device (`--multi_gpu`: torchrun, NCCL on GPUs, gloo on CPUs; or an accelerate config file for
FSDP/DeepSpeed), relays their progress and checkpoints from `events.jsonl` to the job, turns a
cancel request into the `cancel` file they watch, and hands back the artifacts rank 0 wrote.
Checkpoints and the resume state live in the job's work folder as for a single process, so a
re-delivered job resumes a distributed run where it stopped.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from app.errors import DomainError
from app.jobs.context import JobCancelled, JobContext
from app.training import errors
from app.training.artifacts import METRICS, RUN_RECORD
from app.training.config import BestOfNConfig, ExpertIterationConfig, TrainingConfig
from app.training.errors import TrainingInputError
from app.training.file_context import CANCEL, EVENTS, PARENT_PID_ENV, STATE
from app.training.launch import ERROR, EXIT_CANCELLED
from app.training.reporter import REPORT_EVERY_S
from app.training.session import TrainingResult

CONTROL = "launch"  # under the job's work folder: config, events, state, cancel, log
POLL_S = 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch_command(
    num_processes: int,
    control: Path,
    input_dir: Path,
    out_dir: Path,
    work_dir: Path,
    *,
    accelerate_config: Path | None = None,
    report_every_s: float = REPORT_EVERY_S,
) -> list[str]:
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if accelerate_config is not None:
        cmd += ["--config_file", str(accelerate_config)]
    elif num_processes > 1:
        cmd += ["--multi_gpu"]  # torchrun: NCCL between GPUs, gloo between CPU processes
    cmd += [
        "--num_processes",
        str(num_processes),
        "--num_machines",
        "1",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
        "-m",
        "app.training.launch",
        "--config",
        str(control / "config.json"),
        "--input",
        str(input_dir),
        "--out",
        str(out_dir),
        "--work-dir",
        str(work_dir),
        "--control-dir",
        str(control),
        "--report-every",
        str(report_every_s),
    ]
    return cmd


class _Relay:
    """Forwards the launched processes' events to the real job context."""

    def __init__(self, ctx: JobContext, control: Path) -> None:
        self.ctx = ctx
        self.path = control / EVENTS
        self.cancel = control / CANCEL
        self.offset = 0

    def pump(self) -> None:
        if not self.path.is_file():
            return
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next pump
        self.offset += end
        asked = False  # progress() asks the job about cancellation itself
        for line in data[:end].splitlines():
            event = orjson.loads(line)
            if event["type"] == "checkpoint":
                self.ctx.checkpoint(event["state"])
            elif event["type"] == "progress":
                asked = True
                try:
                    self.ctx.progress(event["fraction"], event["detail"])
                except JobCancelled:
                    self.cancel.touch()
            else:
                self.ctx.heartbeat()
        if not asked and self.ctx.cancelled():
            self.cancel.touch()


def _error_from(control: Path, log: Path) -> Exception:
    path = control / ERROR
    if path.is_file():
        info = orjson.loads(path.read_bytes())
        kind = getattr(errors, info["type"], None)
        if isinstance(kind, type) and issubclass(kind, DomainError):
            return kind(info["message"])
        return RuntimeError(f"{info['type']}: {info['message']}")
    tail = log.read_text(errors="replace")[-4000:] if log.is_file() else ""
    return RuntimeError(f"the distributed training processes failed:\n{tail}")


def run_distributed(
    config: TrainingConfig,
    input_dir: Path,
    out_dir: Path,
    ctx: JobContext,
    *,
    num_processes: int,
    accelerate_config: Path | None = None,
    report_every_s: float = REPORT_EVERY_S,
    env: dict[str, str] | None = None,
) -> TrainingResult:
    """`run_training` over `num_processes` processes; same result, same resume and cancel."""
    if isinstance(config, BestOfNConfig | ExpertIterationConfig):
        raise TrainingInputError(
            f"{config.kind} samples through an inference backend; run it in one process"
            " (vllm spreads sampling over GPUs with its tensor_parallel_size option)."
        )
    control = ctx.work_dir / CONTROL
    control.mkdir(parents=True, exist_ok=True)
    for stale in (EVENTS, CANCEL, ERROR):
        (control / stale).unlink(missing_ok=True)
    (control / "config.json").write_bytes(orjson.dumps(config.model_dump(mode="json")))
    state = ctx.resume_state()
    if state is not None:
        (control / STATE).write_bytes(orjson.dumps(state))
    cmd = launch_command(
        num_processes,
        control,
        input_dir,
        out_dir,
        ctx.work_dir,
        accelerate_config=accelerate_config,
        report_every_s=report_every_s,
    )
    child_env = {**os.environ, **(env or {}), PARENT_PID_ENV: str(os.getpid())}
    relay = _Relay(ctx, control)
    log = control / "processes.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=child_env)
        try:
            while proc.poll() is None:
                time.sleep(POLL_S)
                relay.pump()
        except BaseException:
            proc.terminate()  # the job itself failed or was killed: the processes go too
            proc.wait(timeout=60)
            raise
    relay.pump()
    if proc.returncode == EXIT_CANCELLED:
        raise JobCancelled("cancelled during distributed training")
    if proc.returncode != 0:
        raise _error_from(control, log)
    record: dict[str, Any] = orjson.loads((out_dir / RUN_RECORD).read_bytes())
    metrics: dict[str, Any] = orjson.loads((out_dir / METRICS).read_bytes())
    return TrainingResult(str(record["kind"]), out_dir, metrics, record["files"])
