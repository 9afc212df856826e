"""A reward-model run through the platform (POST-equivalent service call, the `training.run` job
run by the worker's runner: fenced progress writes, heartbeat thread, registry commit) against
the same library call under a file-backed context, on the same snapshot in the same process.

Self-contained: a scratch database on a PostgreSQL server (dropped afterwards), the model and
snapshot of bench/train.py (a random GPT-2, a planted-preference `preference` snapshot) placed
under the scratch data directory as a finished export. Alternates the two (and which goes
first), --repeat times each, after --warmup untimed rounds of each.
Steps/s is optimizer steps over the trainer's own train_runtime; CPU s/step the process's CPU
time over the loop; wall the whole call (for the platform: snapshot check, loading, training,
evaluation, artifacts, the registry commit).

    .venv/bin/python bench/train_runs.py
    .venv/bin/python bench/train_runs.py --steps 80 --n-embd 128 --layers 4 --repeat 3

Prints numbers and ratios; asserts nothing. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def platform(export_id: int, base_id: int, admin: Any, args: argparse.Namespace) -> dict[str, Any]:
    from app.db import session_scope
    from app.jobs import runner
    from app.training.runs.models import TrainingRun
    from app.training.runs.schemas import RunCreate
    from app.training.runs.service import create_run

    config = {
        "max_steps": args.steps,
        "batch_size": args.batch,
        "learning_rate": 1e-3,
        "checkpoint_every": 10_000,
        "log_every": 10,
        "max_length": 128,
        "precision": "fp32",
    }
    body = RunCreate(kind="reward_model", export_id=export_id, base_model_id=base_id, config=config)
    with session_scope() as s:
        run, job = create_run(s, admin, body)
        run_id, job_id = run.id, job.id
    started = time.perf_counter()
    outcome = runner.run_job(job_id)
    wall = time.perf_counter() - started
    if outcome != "done":
        raise SystemExit(f"the platform run ended {outcome}")
    with session_scope() as s:
        m = dict(s.get_one(TrainingRun, run_id).metrics or {})
    return {
        "steps_per_s": m["train_steps_per_s"],
        "cpu_s_per_step": m["train_cpu_s"] / m["steps"],
        "wall_s": wall,
        "heldout_accuracy": m.get("heldout_accuracy", float("nan")),
    }


def run(args: argparse.Namespace) -> None:
    import torch
    import transformers

    from app.auth.models import Role, User
    from app.auth.service import Principal
    from app.config import get_settings
    from app.db import session_scope
    from app.exports.models import Export
    from app.migrate import upgrade_head
    from app.projects.schemas import ProjectCreate
    from app.projects.service import create_project
    from app.registry.schemas import BaseModelCreate
    from app.registry.service import register_base
    from bench.train import build_model, build_snapshot, library

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    upgrade_head()
    data = get_settings().data_dir
    model_dir = build_model(data / "models" / "base", args.n_embd, args.layers)
    snap = build_snapshot(data / "exports" / "1-1", args.pairs)
    with session_scope() as s:
        user = User(email="bench@example.org", password_hash="x", role=Role.admin)
        s.add(user)
        s.flush()
        admin = Principal(user.id, user.email, Role.admin, "")
        project = create_project(s, admin, ProjectCreate(name="bench", kind="pairwise"))
        export = Export(
            project_id=project.id,
            options={"schema": "preference", "format": "parquet"},
            file_name="preference.parquet",
            path="exports/1-1",
            rows=args.pairs,
        )
        s.add(export)
        s.flush()
        base = register_base(s, admin, BaseModelCreate(name="bench base", path=str(model_dir)))
        export_id, base_id = export.id, base.id
    print(
        f"model: GPT-2 {args.layers} layers x {args.n_embd}; {args.pairs} pairs, batch"
        f" {args.batch}, {args.steps} steps, torch {torch.__version__} on"
        f" {torch.get_num_threads()} threads; load average {os.getloadavg()[0]:.1f}"
    )
    results: dict[str, list[dict[str, Any]]] = {"platform": [], "library": []}
    # An untimed round of each first: the process's first training (lazy imports, torch's op
    # registration, the allocator growing) would otherwise fall on whichever path goes first.
    for w in range(args.warmup):
        platform(export_id, base_id, admin, args)
        library(model_dir, snap, data / f"warmup-{w}", args)
        shutil.rmtree(data / f"warmup-{w}", ignore_errors=True)
    for r in range(args.repeat):
        # Alternate which goes first, so that the process's first (cold) run is not always one
        # path's.
        for which in ("platform", "library") if r % 2 == 0 else ("library", "platform"):
            if which == "platform":
                results["platform"].append(platform(export_id, base_id, admin, args))
            else:
                lib_root = data / f"library-{r}"
                results["library"].append(library(model_dir, snap, lib_root, args))
                shutil.rmtree(lib_root, ignore_errors=True)
    print(f"{'path':<10} {'steps/s':>9} {'CPU s/step':>11} {'wall s':>8} {'held-out acc':>13}")
    med: dict[str, dict[str, float]] = {}
    for name, rows in results.items():
        med[name] = {k: statistics.median(x[k] for x in rows) for k in rows[0] if k != "steps"}
        m = med[name]
        print(
            f"{name:<10} {m['steps_per_s']:>9.2f} {m['cpu_s_per_step']:>11.3f}"
            f" {m['wall_s']:>8.1f} {m['heldout_accuracy']:>13.3f}"
        )
    for name, rows in results.items():
        each = ", ".join(f"{x['steps_per_s']:.2f} ({x['cpu_s_per_step']:.3f})" for x in rows)
        print(f"  {name} repeats, steps/s (CPU s/step): {each}")
    p, lib = med["platform"], med["library"]
    print(
        f"platform / library: steps/s {p['steps_per_s'] / lib['steps_per_s']:.3f},"
        f" CPU per step {p['cpu_s_per_step'] / lib['cpu_s_per_step']:.3f}"
        f" (medians of {args.repeat})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--pg",
        default=os.environ.get("TANDEM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--pairs", type=int, default=512)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--n-embd", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds of each path first")
    args = parser.parse_args()
    db = f"tandem_bench_train_{secrets.token_hex(3)}"
    os.environ.update(
        TANDEM_DATABASE_URL=args.pg.rsplit("/", 1)[0] + "/" + db,
        TANDEM_REDIS_URL=args.redis,
        TANDEM_DATA_DIR=f"/tmp/{db}",
        TANDEM_SECRET_KEY=secrets.token_urlsafe(48),
    )
    with psycopg.connect(args.pg, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    try:
        run(args)
    finally:
        from app.db import get_engine

        get_engine().dispose()
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        shutil.rmtree(f"/tmp/{db}", ignore_errors=True)
        import redis

        client = redis.Redis.from_url(args.redis)
        client.delete("cpu-train", "gpu")  # the runs' Celery messages: no worker reads them here


if __name__ == "__main__":
    main()
