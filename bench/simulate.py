"""What simulation costs: generating worlds, writing and importing them, and simulated
annotators labelling one through a real server over HTTP.

Self-contained: it creates a scratch database on a PostgreSQL server (dropped afterwards),
builds worlds through the same service the CLI uses (`app/simulate/service.py`), then starts
uvicorn on that database and runs `run_annotators` with no think time.

    .venv/bin/python bench/simulate.py                       # 10k and 50k pairwise, 10k ranking
    .venv/bin/python bench/simulate.py --sizes 10000 --label-items 500 --annotators 5
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not start")


def run(sizes: list[int], repeat: int, label_items: int, annotators: int, work: Path) -> None:
    from app.auth.models import Role
    from app.auth.service import create_user
    from app.db import session_scope
    from app.migrate import upgrade_head
    from app.simulate import accounts
    from app.simulate.behaviour import AnnotatorConfig
    from app.simulate.oracle import TruthOracle
    from app.simulate.runner import run_annotators
    from app.simulate.service import build_world, commit_manifest, principal_of
    from app.simulate.world import WorldConfig, generate_world

    upgrade_head()
    with session_scope() as s:
        owner = principal_of(
            create_user(s, "bench@example.org", secrets.token_urlsafe(12), Role.admin)
        )
    print(f"best of {repeat}; cpu is this process's time generating")
    print(f"{'world':<28} {'generate':>10} {'(cpu)':>8} {'write+import':>13} {'items/s':>9}")
    runs = [("pairwise", 2, n) for n in sizes] + [("ranking", 4, sizes[0])]
    for n, (kind, responses, size) in enumerate(runs):
        best: tuple[float, float, float] | None = None
        for rep in range(repeat):
            # A seed each: the same world again would be found in its project and skipped.
            config = WorldConfig(
                kind=kind,  # type: ignore[arg-type]
                responses=responses,
                size=size,
                seed=100 * rep + n,
            )
            wall, cpu = time.perf_counter(), time.process_time()
            world = generate_world(config)
            gen_wall, gen_cpu = time.perf_counter() - wall, time.process_time() - cpu
            t = time.perf_counter()
            with session_scope() as s:
                built = build_world(
                    s, owner, world, work / world.world_id, config=config.model_dump(mode="json")
                )
            commit_manifest(built)
            imported = time.perf_counter() - t
            assert built.imported.created == size
            if best is None or gen_wall + imported < best[0] + best[2]:
                best = (gen_wall, gen_cpu, imported)
        assert best is not None
        gen_wall, gen_cpu, imported = best
        print(
            f"{kind + f' {size:,} x {responses}':<28} {gen_wall:9.2f}s {gen_cpu:7.2f}s"
            f" {imported:12.2f}s {size / (gen_wall + imported):9,.0f}"
        )

    config = WorldConfig(size=label_items, seed=2)
    world = generate_world(config)
    with session_scope() as s:
        built = build_world(s, owner, world, work / "label", config={}, overlap=3)
    commit_manifest(built)
    with session_scope() as s:
        team = accounts.enlist(s, built.project.id, annotators, "bench", 3600)
    proc, url = _serve()
    try:
        oracle = TruthOracle({t.external_id: t for t in world.truths})
        stats = run_annotators(
            url, built.project.id, [e.token for e in team], oracle, AnnotatorConfig(time_scale=0.0)
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    votes = stats.counts()["submitted"]
    print(
        f"\n{annotators} annotators, {label_items:,} items x overlap 3, no think time:"
        f" {votes:,} votes in {stats.seconds:.1f} s = {votes / stats.seconds:.0f} votes/s"
        f" (next + submit each)"
    )
    acc, agree = stats.accuracy(), stats.agreement()
    print(
        f"accuracy {acc['value']:.3f} (configured {stats.expected['accuracy']:.3f}),"
        f" agreement {agree['value']:.3f} (target 0.66)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--pg",
        default=os.environ.get("TANDEM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--sizes", default="10000,50000")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--label-items", type=int, default=1000)
    parser.add_argument("--annotators", type=int, default=10)
    args = parser.parse_args()
    db = f"tandem_bench_sim_{secrets.token_hex(3)}"
    work = Path(tempfile.mkdtemp(prefix=db))
    os.environ.update(
        TANDEM_DATABASE_URL=args.pg.rsplit("/", 1)[0] + "/" + db,
        TANDEM_REDIS_URL=os.environ.get("TANDEM_REDIS_URL", "redis://127.0.0.1:6379/15"),
        TANDEM_DATA_DIR=str(work),
        TANDEM_SECRET_KEY=secrets.token_urlsafe(48),
        TANDEM_LOGIN_ATTEMPTS_PER_MINUTE="1000",
    )
    with psycopg.connect(args.pg, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    try:
        run(
            [int(n) for n in args.sizes.split(",")],
            args.repeat,
            args.label_items,
            args.annotators,
            work,
        )
    finally:
        from app.db import get_engine

        get_engine().dispose()
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
