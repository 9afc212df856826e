"""Load test: N concurrent annotators for a while against `tandem serve`, as a deployment runs.

Self-contained: starts its own PostgreSQL and Valkey (the embedded servers of `tandem up`, in
a temporary folder, so that other users of a shared server neither slow it down nor use up
its connections; or, with --pg, a scratch database there, dropped afterwards), migrates it, makes
--clients annotators (tokens written straight into the database) and one pairwise project
per --projects with enough items, starts `tandem serve --workers W` on a free port, and lets
every annotator loop like the workspace does: `tasks/next`, an autosaved draft now and then,
then submit (with a client_submission_id) or, one time in twenty, skip; every tenth task it
reads its progress. No think time unless --think: this is the worst case for latency.

Prints throughput, p50/p95/p99/max per route, errors (any answer other than the expected
2xx, and connection errors), and the server's memory (RSS of the uvicorn processes) after
start-up and after the run.

    .venv/bin/python bench/load.py                     # 200 clients, 60 s, 2 workers
    .venv/bin/python bench/load.py --clients 50 --duration 20 --workers 1
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.runtime.embedded import start_postgres, start_valkey  # noqa: E402

API = "/api/v1"
ROUTES = ("next", "draft", "submit", "skip", "progress")
EXPECTED = {
    "next": {200, 204},
    "draft": {200},
    "submit": {200, 201},
    "skip": {200},
    "progress": {200},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mb(root_pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB (Linux /proc)."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children[ppid].append(int(entry))
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Stats:
    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = {r: [] for r in ROUTES}
        self.errors: Counter[str] = Counter()
        self.examples: dict[str, str] = {}
        self.measuring = False

    def record(self, route: str, started: float, status: int | None, text: str = "") -> None:
        if not self.measuring:
            return
        self.ms[route].append((time.perf_counter() - started) * 1000)
        if status is None or status not in EXPECTED[route]:
            key = f"{route} {status if status is not None else 'connection error'}"
            self.errors[key] += 1
            self.examples.setdefault(key, text[:200])


async def annotator(
    session: aiohttp.ClientSession, base: str, token: str, pid: int, stats: Stats,
    stop: float, think: float, seed: int,
) -> None:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    n = seed
    while time.monotonic() < stop:
        n += 1
        t = time.perf_counter()
        try:
            async with session.post(f"{base}{API}/projects/{pid}/tasks/next", headers=headers) as r:
                body = await r.read()
                stats.record("next", t, r.status, body.decode(errors="replace"))
                if r.status != 200:
                    await asyncio.sleep(0.5)
                    continue
                task = json.loads(body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            stats.record("next", t, None, repr(exc))
            await asyncio.sleep(0.1)
            continue
        aid = task["assignment_id"]
        if think:
            await asyncio.sleep(think)
        calls: list[tuple[str, str, str, bytes]] = []
        if n % 3 == 0:
            draft = json.dumps({"draft": {"choice": "a", "note": f"draft {n}"}}).encode()
            calls.append(("draft", "PUT", f"{API}/assignments/{aid}/draft", draft))
        if n % 20 == 0:
            calls.append(("skip", "POST", f"{API}/assignments/{aid}/skip", b'{"reason": "bench"}'))
        else:
            submit = {
                "payload": {"choice": "ab"[n % 2], "strength": 1 + n % 3},
                "time_spent_ms": 1000,
                "client_submission_id": str(uuid.uuid4()),
            }
            calls.append(
                ("submit", "POST", f"{API}/assignments/{aid}/submit", json.dumps(submit).encode())
            )
        if n % 10 == 0:
            calls.append(("progress", "GET", f"{API}/projects/{pid}/progress", b""))
        for route, method, path, data in calls:
            t = time.perf_counter()
            try:
                async with session.request(
                    method, base + path, data=data or None, headers=headers
                ) as r:
                    text = await r.text()
                    stats.record(route, t, r.status, text)
            except (aiohttp.ClientError, TimeoutError) as exc:
                stats.record(route, t, None, repr(exc))


def _setup_database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def _seed(dsn: str, clients: int, projects: int, items: int) -> tuple[list[str], list[int]]:
    from app.auth.passwords import hash_password

    password_hash = hash_password(secrets.token_urlsafe(12))
    tokens = [secrets.token_urlsafe(32) for _ in range(clients)]
    with psycopg.connect(dsn, autocommit=False) as conn, conn.cursor() as cur:
        with cur.copy("COPY users (email, password_hash, role) FROM STDIN") as copy:
            for n in range(clients):
                copy.write_row((f"annotator-{n}@bench.tandem", password_hash, "annotator"))
        cur.execute("SELECT id FROM users ORDER BY id")
        user_ids = [r[0] for r in cur.fetchall()]
        with cur.copy("COPY api_tokens (user_id, token_hash, kind, expires_at) FROM STDIN") as copy:
            for uid, token in zip(user_ids, tokens, strict=True):
                copy.write_row((uid, hashlib.sha256(token.encode()).digest(), "api", "2100-01-01"))
        pids = []
        for p in range(projects):
            cur.execute(
                "INSERT INTO projects (name, kind, overlap) VALUES (%s, 'pairwise', 3) RETURNING id",
                (f"load {p}",),
            )
            pid = cur.fetchone()[0]  # type: ignore[index]
            pids.append(pid)
            cur.execute(
                "INSERT INTO project_members (project_id, user_id) SELECT %s, id FROM users", (pid,)
            )
            cur.execute(
                "INSERT INTO items (project_id, external_id, prompt, remaining)"
                " SELECT %s, 'i' || g, 'Which answer is more helpful? ' || g, 3"
                " FROM generate_series(1, %s) g",
                (pid, items),
            )
            cur.execute(
                "INSERT INTO responses (item_id, position, text)"
                " SELECT i.id, r, 'Response ' || r || ' to item ' || i.external_id"
                " FROM items i, generate_series(0, 1) r WHERE i.project_id = %s",
                (pid,),
            )
        conn.commit()
        cur.execute("ANALYZE")
    return tokens, pids


async def _run(
    args: argparse.Namespace, base: str, tokens: list[str], pids: list[int], stats: Stats
) -> float:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.monotonic()
        stop = start + args.warmup + args.duration
        tasks = [
            asyncio.create_task(
                annotator(session, base, tok, pids[n % len(pids)], stats, stop, args.think, n)
            )
            for n, tok in enumerate(tokens)
        ]
        await asyncio.sleep(args.warmup)
        stats.measuring = True
        measured_from = time.monotonic()
        await asyncio.gather(*tasks)
        stats.measuring = False
        return time.monotonic() - measured_from


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=2, help="tandem serve --workers")
    parser.add_argument("--projects", type=int, default=4)
    parser.add_argument("--items", type=int, default=10_000, help="items per project (overlap 3)")
    parser.add_argument("--think", type=float, default=0.0, help="seconds between task and answer")
    parser.add_argument("--pg", help="a PostgreSQL server URL to use instead of an embedded one")
    parser.add_argument("--redis", help="a Redis URL to use instead of an embedded Valkey")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tandem-load-") as tmp:
        servers: list[Any] = []  # embedded servers, stopped in reverse order
        name = f"tandem_load_{os.getpid()}"
        try:
            if args.pg:
                dsn = _setup_database(args.pg, name)
                db_url = dsn
            else:
                servers.append(start_postgres(Path(tmp), port=None))
                dsn, db_url = servers[-1].dsn, servers[-1].url
            if args.redis:
                redis_url = args.redis
            else:
                servers.append(start_valkey(Path(tmp), port=None))
                redis_url = servers[-1].url
            _measure(args, tmp, dsn, db_url, redis_url)
        finally:
            for server in reversed(servers):
                server.stop()
            if args.pg:
                with psycopg.connect(args.pg, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _measure(args: argparse.Namespace, tmp: str, dsn: str, db_url: str, redis_url: str) -> None:
    env = {
        **os.environ,
        "TANDEM_DATABASE_URL": db_url,
        "TANDEM_REDIS_URL": redis_url,
        "TANDEM_SECRET_KEY": secrets.token_urlsafe(48),
        "TANDEM_DATA_DIR": tmp,
    }
    subprocess.run(
        [sys.executable, "-c", "from app.cli import main; main()", "db", "upgrade"],
        env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    started = time.perf_counter()
    tokens, pids = _seed(dsn, args.clients, args.projects, args.items)
    print(f"seeded {args.clients} annotators, {args.projects} projects of {args.items} items"
          f" in {time.perf_counter() - started:.1f}s")  # fmt: skip
    port = _free_port()
    log_path = Path(tmp) / "server.log"
    server: subprocess.Popen[bytes] | None = None
    with log_path.open("wb") as log:
        try:
            server = subprocess.Popen(
                [sys.executable, "-c", "from app.cli import main; main()", "serve",
                 "--port", str(port), "--workers", str(args.workers)],
                env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log,
                start_new_session=True,
            )  # fmt: skip
            base = f"http://127.0.0.1:{port}"
            _wait_for(base, server)
            time.sleep(1.0)
            rss_before = _rss_mb(server.pid)
            stats = Stats()
            elapsed = asyncio.run(_run(args, base, tokens, pids, stats))
            rss_after = _rss_mb(server.pid)
        finally:
            if server is not None and server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                    server.wait(timeout=10)
    with psycopg.connect(dsn) as conn:
        stored = conn.execute("SELECT count(*) FROM annotations").fetchone()[0]  # type: ignore[index]
    _report(args, stats, elapsed, rss_before, rss_after, stored)
    logged = [
        line
        for line in log_path.read_text(errors="replace").splitlines()
        if line.strip() and not line.startswith("INFO:")
    ]
    if logged:
        print("server log (last lines):\n  " + "\n  ".join(logged[-10:]))


def _wait_for(base: str, server: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            raise SystemExit("tandem serve did not start")
        time.sleep(0.2)


def _report(
    args: argparse.Namespace, stats: Stats, elapsed: float, before: float, after: float, stored: int
) -> None:
    total = sum(len(v) for v in stats.ms.values())
    errors = sum(stats.errors.values())
    load = os.getloadavg()
    print(
        f"\n{args.clients} annotators, {elapsed:.1f}s measured after {args.warmup:.0f}s warm-up,"
        f" tandem serve --workers {args.workers}, think {args.think}s;"
        f" {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    print(f"throughput: {total / elapsed:.1f} requests/s,"
          f" {len(stats.ms['submit']) / elapsed:.1f} submits/s ({stored} annotations stored)")  # fmt: skip
    print(f"{'route':<10}{'count':>8}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for route in ROUTES:
        ms = stats.ms[route]
        if not ms:
            continue
        print(
            f"{route:<10}{len(ms):>8}{_percentile(ms, 50):>10.1f}{_percentile(ms, 95):>10.1f}"
            f"{_percentile(ms, 99):>10.1f}{max(ms):>10.1f}"
        )
    every = [m for v in stats.ms.values() for m in v]
    print(f"{'all':<10}{len(every):>8}{_percentile(every, 50):>10.1f}{_percentile(every, 95):>10.1f}"
          f"{_percentile(every, 99):>10.1f}{max(every, default=0):>10.1f}")  # fmt: skip
    print(
        f"errors: {errors}"
        + "".join(f"\n  {k}: {n} ({stats.examples[k]})" for k, n in stats.errors.items())
    )
    print(f"server memory (RSS, all processes): {before:.0f} MB before, {after:.0f} MB after")


if __name__ == "__main__":
    main()
