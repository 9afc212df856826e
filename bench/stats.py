"""Quality endpoints on a 1,000,000-annotation project: p50/p95 per endpoint, and the refresh.

Creates a scratch database on a PostgreSQL server (dropped at the end unless --keep), fills it
with COPY: a pairwise project of 333,334 items (two responses each, from 20 models of known
strength, 2% gold items), 3 votes per item by 300 annotators (10% of votes by 3 AI judges),
1,000,002 annotations in all. Then, in this process:

  * the `stats.refresh` job, run inline (`app.jobs.runner.run_job`): every statistic in one
    snapshot, stored in `project_stats` (the time to refresh);
  * each quality endpoint through the ASGI app (FastAPI's TestClient, so the HTTP stack, auth,
    the session and the JSON encoding all count), N requests each after a warm-up: GET /stats,
    /leaderboard (JSON, CSV, length-controlled), /annotators/{uid}/quality, the dashboard page
    /projects/{pid}/quality and the review queue (/review). The baseline line is GET /progress,
    the project page's existing live counters, in the same process.

    .venv/bin/python bench/stats.py                  # 1M annotations, a few minutes
    .venv/bin/python bench/stats.py --items 20000    # smaller

Needs Redis for the job's enqueue (TANDEM_REDIS_URL, default redis://127.0.0.1:6379/4).
Prints numbers and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EPOCH = datetime(2026, 11, 1, tzinfo=UTC)
MODELS = [f"model-{k:02d}" for k in range(20)]


def _lines(rows: Any) -> bytes:
    return "".join("\t".join(r) + "\n" for r in rows).encode()


def fill(url: str, items: int, votes_per_item: int, annotators: int, seed: int) -> tuple[int, int]:
    """COPY the project in; returns (project id, the researcher's user id)."""
    rng = random.Random(seed)
    strength = {m: k / 4.0 for k, m in enumerate(MODELS)}  # Bradley-Terry log-strengths
    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        stamp = secrets.token_hex(4)
        with conn.cursor().copy("COPY users (email, password_hash, role) FROM STDIN") as copy:
            copy.write(
                _lines((f"a{u}-{stamp}@bench.example", "x", "annotator") for u in range(annotators))
            )
        users = [
            r[0]
            for r in conn.execute("SELECT id FROM users WHERE email LIKE %s", (f"%-{stamp}@%",))
        ]
        researcher = conn.execute(
            "INSERT INTO users (email, password_hash, role) VALUES (%s, 'x', 'researcher')"
            " RETURNING id",
            (f"researcher-{stamp}@bench.example",),
        ).fetchone()[0]  # type: ignore[index]
        pid = conn.execute(
            "INSERT INTO projects (name, kind, overlap) VALUES ('stats bench', 'pairwise', %s)"
            " RETURNING id",
            (votes_per_item,),
        ).fetchone()[0]  # type: ignore[index]
        with conn.cursor().copy("COPY project_members (project_id, user_id) FROM STDIN") as copy:
            copy.write(_lines((str(pid), str(u)) for u in [*users, researcher]))
        # Three judges: the AI votes' authors (annotations.judge_id references judges).
        with conn.cursor().copy("COPY judges (id, name, backend, model) FROM STDIN") as copy:
            copy.write(_lines((str(j), f"judge-{j}", "simulated", "bench") for j in (1, 2, 3)))
        conn.execute(
            "SELECT setval(pg_get_serial_sequence('judges', 'id'), (SELECT max(id) FROM judges))"
        )
        accuracy = {u: rng.uniform(0.55, 0.95) for u in users}
        batch = 20_000
        pairs = [rng.sample(MODELS, 2) for _ in range(items)]
        gold = [rng.random() < 0.02 for _ in range(items)]
        with conn.cursor().copy(
            "COPY items (id, project_id, external_id, prompt, is_gold, gold_answer, remaining)"
            " FROM STDIN"
        ) as copy:
            for start in range(0, items, batch):
                copy.write(
                    _lines(
                        (
                            str(i + 1),
                            str(pid),
                            f"item-{i}",
                            f"prompt {i}",
                            "t" if gold[i] else "f",
                            '{"preferred": 0}' if gold[i] else "\\N",
                            "0",
                        )
                        for i in range(start, min(items, start + batch))
                    )
                )
        with conn.cursor().copy(
            "COPY responses (id, item_id, position, text, model) FROM STDIN"
        ) as copy:
            for start in range(0, items, batch):
                copy.write(
                    _lines(
                        (
                            str(2 * i + pos + 1),
                            str(i + 1),
                            str(pos),
                            "word " * rng.randint(20, 120),
                            pairs[i][pos],
                        )
                        for i in range(start, min(items, start + batch))
                        for pos in (0, 1)
                    )
                )
        cols = (
            "id, project_id, item_id, source, user_id, judge_id, payload, schema_version,"
            " shown_order, time_spent_ms, gold_score, created_at"
        )
        n = 0
        span = timedelta(days=30).total_seconds()
        with conn.cursor().copy(f"COPY annotations ({cols}) FROM STDIN") as copy:
            for start in range(0, items, batch // votes_per_item):
                rows = []
                for i in range(start, min(items, start + batch // votes_per_item)):
                    r0, r1 = 2 * i + 1, 2 * i + 2
                    a, b = pairs[i]
                    p_first = 1 / (1 + pow(2.718281828, strength[b] - strength[a]))
                    truth = r0 if gold[i] or rng.random() < p_first else r1
                    for voter in rng.sample(users, votes_per_item):
                        n += 1
                        ai = rng.random() < 0.1
                        right = rng.random() < (0.8 if ai else accuracy[voter])
                        preferred = truth if right else (r0 + r1 - truth)
                        if rng.random() < 0.05:
                            preferred = None
                        payload = json.dumps({"preferred": preferred, "tie": preferred is None})
                        shown = f"{{{r0},{r1}}}" if rng.random() < 0.5 else f"{{{r1},{r0}}}"
                        made = EPOCH + timedelta(seconds=span * i / items + n % 60)
                        score = "\\N"
                        if gold[i] and not ai:
                            score = "1" if preferred == r0 else "0"
                        rows.append(
                            (
                                str(n),
                                str(pid),
                                str(i + 1),
                                "ai" if ai else "human",
                                "\\N" if ai else str(voter),
                                str(rng.randint(1, 3)) if ai else "\\N",
                                payload,
                                "1",
                                shown,
                                str(rng.randint(2000, 60000)),
                                score,
                                made.isoformat(),
                            )
                        )
                copy.write(_lines(rows))
        for table in ("items", "responses", "annotations"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT max(id) FROM {table}))"
            )
        for table in ("items", "responses", "annotations"):
            conn.execute(f"VACUUM ANALYZE {table}")
    print(
        f"filled: {items:,} items, {n:,} annotations, {annotators} annotators"
        f" in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    return pid, researcher


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


class ClaimWatch:
    """Beside the inline refresh: every 2 s run the real sweeper pass (which requeues a job
    whose claim lapsed, so the running attempt would lose it) and read the job's row: how much
    of its lease was left at worst, and when each progress step began."""

    def __init__(self, job_id: int) -> None:
        import threading

        self.job_id = job_id
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.min_left: float | None = None
        self.checks = 0
        self.settled: list[Any] = []
        self.steps: list[tuple[float, str]] = []
        self.started = time.perf_counter()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.done.set()
        self.thread.join()

    def _run(self) -> None:
        import redis
        from sqlalchemy import text

        from app.config import get_settings
        from app.db import session_scope
        from app.jobs.sweeper import sweep

        client = redis.Redis.from_url(get_settings().require_redis_url())
        while not self.done.wait(2.0):
            self.settled += [x for x in sweep(client).settled if x.job_id == self.job_id]
            with session_scope() as session:
                status, left, detail = session.execute(
                    text(
                        "SELECT status, extract(epoch FROM locked_until - now()),"
                        " progress_detail->>'step' FROM jobs WHERE id = :j"
                    ),
                    {"j": self.job_id},
                ).one()
            if status != "running":
                continue
            self.checks += 1
            left = float(left)
            self.min_left = left if self.min_left is None else min(self.min_left, left)
            if detail and (not self.steps or self.steps[-1][1] != detail):
                self.steps.append((time.perf_counter() - self.started, detail))

    def report(self, refresh_s: float) -> None:
        from sqlalchemy import text

        from app.config import get_settings
        from app.db import session_scope

        with session_scope() as session:
            row = session.execute(
                text("SELECT status, attempts, lost_attempts FROM jobs WHERE id = :j"),
                {"j": self.job_id},
            ).one()
        lease = get_settings().job_lease_seconds
        held = row.attempts == 1 and row.lost_attempts == 0 and not self.settled
        print(
            f"claim over the {refresh_s:.0f} s refresh (lease {lease:.0f} s, sweeper every 2 s):"
            f" {'held throughout' if held else 'LOST'}; job {row.status}, attempts"
            f" {row.attempts}, lost {row.lost_attempts}, sweeper settled {len(self.settled)};"
            f" {self.checks} checks, least lease left"
            f" {'-' if self.min_left is None else f'{self.min_left:.1f}'} s",
            flush=True,
        )
        print(
            "  steps (s from start): " + ", ".join(f"{t:.0f} {step}" for t, step in self.steps),
            flush=True,
        )


def measure(pid: int, researcher: int, requests: int) -> None:
    from fastapi.testclient import TestClient

    from app.auth.models import TokenKind, User
    from app.auth.service import issue_token
    from app.db import session_scope
    from app.jobs import runner
    from app.main import app

    with session_scope() as s:
        user = s.get_one(User, researcher)
        token, _ = issue_token(s, user, TokenKind.api, 3600)
        cookie, _ = issue_token(s, user, TokenKind.session, 3600)
    client = TestClient(app)
    headers = {"Authorization": f"Bearer {token}"}

    t0 = time.perf_counter()
    r = client.post(f"/api/v1/projects/{pid}/stats/refresh", headers=headers)
    job_id = r.json()["job_id"]
    watch = ClaimWatch(job_id)
    watch.start()
    outcome = runner.run_job(job_id)
    refresh_s = time.perf_counter() - t0
    watch.stop()
    watch.report(refresh_s)
    stats = client.get(f"/api/v1/projects/{pid}/stats", headers=headers).json()
    print(
        f"refresh (stats.refresh job, {outcome}): {refresh_s:.1f} s;"
        f" compute {stats['computed_in_ms'] / 1000:.1f} s; snapshot {len(json.dumps(stats)):,}"
        f" bytes; {stats['counts']['annotations']}",
        flush=True,
    )
    uid = stats["annotators"][0]["user_id"]
    api = f"/api/v1/projects/{pid}"
    cases = [
        ("GET /progress (baseline: live counts)", f"{api}/progress", "api"),
        ("GET /stats", f"{api}/stats", "api"),
        ("GET /leaderboard", f"{api}/leaderboard", "api"),
        ("GET /leaderboard?length_control=true", f"{api}/leaderboard?length_control=true", "api"),
        ("GET /leaderboard?format=csv", f"{api}/leaderboard?format=csv", "api"),
        (
            "GET /leaderboard?source=human&length_control=true",
            f"{api}/leaderboard?source=human&length_control=true",
            "api",
        ),
        (
            "GET /leaderboard?source=ai&length_control=true&format=csv",
            f"{api}/leaderboard?source=ai&length_control=true&format=csv",
            "api",
        ),
        ("GET /annotators/{uid}/quality", f"{api}/annotators/{uid}/quality", "api"),
        ("GET /projects/{pid}/quality (dashboard)", f"/projects/{pid}/quality", "page"),
        ("GET /review (the queue, from review_candidates)", f"{api}/review", "api"),
    ]
    results: dict[str, tuple[float, float]] = {}
    print(f"{'endpoint':<58} {'p50 ms':>8} {'p95 ms':>8} {'vs baseline p95':>16}")
    for name, path, kind in cases:
        if kind == "page":
            client.cookies.set("tandem_session", cookie)
            h: dict[str, str] = {}
        else:
            client.cookies.clear()
            h = headers
        n = requests if "review" not in name else max(5, requests // 10)
        for _ in range(3):
            r = client.get(path, headers=h)
            assert r.status_code == 200, (path, r.status_code, r.text[:200])
        samples = []
        for _ in range(n):
            t = time.perf_counter()
            client.get(path, headers=h)
            samples.append((time.perf_counter() - t) * 1000)
        results[name] = percentiles(samples)
        base = results[cases[0][0]][1]
        p50, p95 = results[name]
        print(f"{name:<58} {p50:8.1f} {p95:8.1f} {p95 / base:15.3f}x", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--items", type=int, default=333_334)
    ap.add_argument("--votes-per-item", type=int, default=3)
    ap.add_argument("--annotators", type=int, default=300)
    ap.add_argument("--requests", type=int, default=100, help="timed requests per endpoint")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.1f}", flush=True)
    scratch = f"tandem_bench_stats_{os.getpid()}"
    url = args.server.rsplit("/", 1)[0] + "/" + scratch
    os.environ["TANDEM_DATABASE_URL"] = url
    os.environ.setdefault("TANDEM_REDIS_URL", "redis://127.0.0.1:6379/4")
    os.environ.setdefault("TANDEM_SECRET_KEY", secrets.token_urlsafe(48))
    os.environ.setdefault("TANDEM_DATA_DIR", f"/tmp/{scratch}")
    with psycopg.connect(args.server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{scratch}"')
    try:
        from app.migrate import upgrade_head

        upgrade_head()
        pid, researcher = fill(url, args.items, args.votes_per_item, args.annotators, args.seed)
        measure(pid, researcher, args.requests)
    finally:
        from app.db import get_engine

        get_engine().dispose()
        if not args.keep:
            with psycopg.connect(args.server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        else:
            print(f"kept database {url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
