"""Load test of the annotating hot path (next task + submit): the service over HTTP vs raw SQL.

N annotators loop `POST /projects/{pid}/tasks/next` then `POST /assignments/{aid}/submit`
with no think time, through one aiohttp session. The raw baseline runs the same claim and
submit statements as app/assignments/engine.py (imported from it and rendered for psycopg)
straight through async psycopg, one connection per client, against a second project of the
same shape, so "service/raw" is what the HTTP + auth + ORM layers cost on top of the SQL.
Everything is created through the public API by an admin; nothing is started here.

Against a server started with `make run` or `tandem up` (make the admin login with the CLI;
--database-url is the database that server uses; without it only the service is measured):

    .venv/bin/tandem users create --email bench@x.org --password benchpass123 --role admin
    .venv/bin/python bench/assign.py --url http://127.0.0.1:8000 \\
        --email bench@x.org --password benchpass123 --database-url postgresql://...

On a machine with PostgreSQL and Redis running (scratch database, dropped afterwards):

    createdb -h 127.0.0.1 -U postgres tandem_bench
    export TANDEM_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/tandem_bench
    export TANDEM_REDIS_URL=redis://127.0.0.1:6379/5
    export TANDEM_SECRET_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(48))')
    export TANDEM_LOGIN_ATTEMPTS_PER_MINUTE=100000   # the bench logs every annotator in
    .venv/bin/tandem db upgrade
    .venv/bin/tandem users create --email bench@x.org --password benchpass123 --role admin
    .venv/bin/tandem serve --port 8765 --workers 2 &
    .venv/bin/python bench/assign.py --url http://127.0.0.1:8765 \\
        --email bench@x.org --password benchpass123 --clients 10,50 --duration 15
    kill %1 && dropdb -h 127.0.0.1 -U postgres --force tandem_bench

Overlap is 1, so each pair consumes one item: --items must exceed what the faster path
completes in warmup + duration (raw SQL can pass 1000 pairs/s; a phase that runs out stops
early and is flagged). Each level gets fresh projects; the raw phase runs first so that the
server's idle pooled connections plus the raw connections stay under max_connections.
--analyze runs ANALYZE after each import, as autovacuum would within a minute: without
statistics the claim's NOT EXISTS can be planned as a scan of all assignments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from psycopg.rows import dict_row

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

API = "/api/v1"
SUBMIT_BODY = json.dumps({"payload": {"choice": "a"}}).encode()
ANALYZE = "ANALYZE items, responses, assignments, annotations"
RETRYABLE = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


@dataclass
class Sql:
    """The engine's statements as psycopg query strings (%(name)s placeholders)."""

    lock_claims: str
    resume: str
    reclaim: str
    claim_skip: str
    claim_wait: str
    task: str
    lock_assignment: str
    insert_annotation: str
    schema_version: int
    origin: dict[str, str]


def load_sql() -> Sql:
    from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg

    from app.annotations.payloads import SCHEMA_VERSION
    from app.assignments import engine

    dialect = pg_psycopg.dialect()  # type: ignore[no-untyped-call]
    origin: dict[str, str] = {}

    def render(name: str) -> str:
        origin[name] = "engine"
        return str(getattr(engine, name).compile(dialect=dialect))

    return Sql(
        lock_claims=render("_PROJECT_AND_LOCK"),
        resume=render("_RESUME"),
        reclaim=render("_RECLAIM"),
        claim_skip=render("_CLAIM_SKIP"),
        claim_wait=render("_CLAIM_WAIT"),
        task=render("_TASK"),
        lock_assignment=render("_LOCK_ASSIGNMENT"),
        insert_annotation=render("_INSERT_ANNOTATION"),
        schema_version=SCHEMA_VERSION,
        origin=origin,
    )


# ---------------------------------------------------------------- measurements


@dataclass
class Phase:
    """Samples of one path at one concurrency level."""

    name: str
    clients: int
    next_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    pair_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    exhausted: bool = False
    window_s: float = 0.0
    wall_s: float = 0.0
    started_at: float = 0.0  # epoch seconds, to line the phase up with other monitors
    client_cpu_s: float = 0.0
    host_busy: float | None = None

    @property
    def pairs(self) -> int:
        return len(self.pair_ms)

    @property
    def throughput(self) -> float:
        return self.pairs / self.window_s if self.window_s else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "path": self.name,
            "clients": self.clients,
            "pairs": self.pairs,
            "pairs_per_s": round(self.throughput, 1),
            "next_ms": percentiles(self.next_ms),
            "submit_ms": percentiles(self.submit_ms),
            "pair_ms": percentiles(self.pair_ms),
            "errors": dict(self.errors),
            "retries": self.retries,
            "ran_out_of_items": self.exhausted,
            "started_at": round(self.started_at, 2),
            "window_s": round(self.window_s, 2),
            "client_cpu_s": round(self.client_cpu_s, 2),
            "client_cpu_pct_of_core": round(100 * self.client_cpu_s / self.wall_s, 1)
            if self.wall_s
            else None,
            "host_cpu_busy_pct": None if self.host_busy is None else round(100 * self.host_busy),
        }


@dataclass
class Clock:
    """Samples count when their pair finishes inside [start + warmup, deadline)."""

    start: float
    warm: float
    deadline: float

    def counts(self, finished: float) -> bool:
        return self.warm <= finished < self.deadline


def percentiles(samples: list[float]) -> dict[str, float | None]:
    if not samples:
        return {"p50": None, "p95": None, "p99": None}
    s = sorted(samples)

    def at(q: float) -> float:
        pos = q * (len(s) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(s) - 1)
        return round(s[lo] + (s[hi] - s[lo]) * (pos - lo), 2)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99)}


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def host_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat; None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


async def run_phase(
    phase: Phase,
    duration: float,
    warmup: float,
    client: Callable[[int, Clock, Phase], Awaitable[None]],
) -> None:
    phase.started_at = time.time()
    start = time.perf_counter()
    clock = Clock(start, start + warmup, start + warmup + duration)
    cpu0 = cpu_seconds()

    async def measure_host() -> None:
        await asyncio.sleep(max(0.0, clock.warm - time.perf_counter()))
        t0 = host_ticks()
        await asyncio.sleep(max(0.0, clock.deadline - time.perf_counter()))
        t1 = host_ticks()
        if t0 and t1 and t1[1] > t0[1]:
            phase.host_busy = (t1[0] - t0[0]) / (t1[1] - t0[1])

    host = asyncio.create_task(measure_host())
    await asyncio.gather(*(client(i, clock, phase) for i in range(phase.clients)))
    end = time.perf_counter()
    if phase.exhausted:
        host.cancel()
    await asyncio.gather(host, return_exceptions=True)
    phase.wall_s = end - start
    phase.client_cpu_s = cpu_seconds() - cpu0
    phase.window_s = max(0.0, min(end, clock.deadline) - clock.warm)


def note_error(phase: Phase, what: str) -> None:
    phase.errors[what] += 1
    if sum(phase.errors.values()) == 1:
        print(f"  [{phase.name}] first error: {what}", file=sys.stderr)


# ---------------------------------------------------------------- the service over HTTP


class ApiError(RuntimeError):
    pass


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    token: str | None = None,
    body: Any = None,
    expect: Iterable[int] = (200, 201),
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, url, json=body, headers=headers) as r:
        text = await r.text()
        if r.status not in tuple(expect):
            raise ApiError(f"{method} {url} -> {r.status}: {text[:300]}")
        return json.loads(text) if text else None


def service_client(
    http: aiohttp.ClientSession, base: str, pid: int, tokens: list[str]
) -> Callable[[int, Clock, Phase], Awaitable[None]]:
    next_url = f"{base}{API}/projects/{pid}/tasks/next"

    async def loop(i: int, clock: Clock, phase: Phase) -> None:
        auth = {"Authorization": f"Bearer {tokens[i]}"}
        submit_headers = {**auth, "Content-Type": "application/json"}
        while time.perf_counter() < clock.deadline:
            t0 = time.perf_counter()
            try:
                async with http.post(next_url, headers=auth) as r:
                    body = await r.read()
                    if r.status == 204:
                        phase.exhausted = True
                        return
                    if r.status != 200:
                        note_error(phase, f"next {r.status}: {body[:200]!r}")
                        await asyncio.sleep(0.05)
                        continue
                    aid = json.loads(body)["assignment_id"]
                t1 = time.perf_counter()
                submit_url = f"{base}{API}/assignments/{aid}/submit"
                async with http.post(submit_url, data=SUBMIT_BODY, headers=submit_headers) as r:
                    body = await r.read()
                    if r.status != 201:
                        note_error(phase, f"submit {r.status}: {body[:200]!r}")
                        await asyncio.sleep(0.05)
                        continue
            except (aiohttp.ClientError, TimeoutError) as exc:
                note_error(phase, f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(0.05)
                continue
            t2 = time.perf_counter()
            if clock.counts(t2):
                phase.next_ms.append((t1 - t0) * 1e3)
                phase.submit_ms.append((t2 - t1) * 1e3)
                phase.pair_ms.append((t2 - t0) * 1e3)

    return loop


# ---------------------------------------------------------------- the same SQL, directly


def raw_client(
    conns: list[psycopg.AsyncConnection[Any]], sql: Sql, pid: int, lease: int, uids: list[int]
) -> Callable[[int, Clock, Phase], Awaitable[None]]:
    async def one(conn: psycopg.AsyncConnection[Any], q: str, params: dict[str, Any]) -> Any:
        cur = await conn.execute(q, params)
        return await cur.fetchone()

    async def next_task(conn: psycopg.AsyncConnection[Any], uid: int) -> dict[str, Any] | None:
        params = {"pid": pid, "uid": uid}
        async with conn.transaction():
            await conn.execute(sql.lock_claims, {**params, "admin": False})
            state = await one(conn, sql.resume, params)
            if state["held"] is not None:
                resumed: dict[str, Any] = await one(conn, sql.task, {"aid": state["held"]})
                return resumed
            if state["any_expired"]:
                await conn.execute(sql.reclaim, {"pid": pid})
            claim = {**params, "lease": lease}
            # The claim statement returns the task itself, as in the engine.
            row = await one(conn, sql.claim_skip, claim)
            if row is None:
                row = await one(conn, sql.claim_wait, claim)
            return None if row is None else dict(row)

    async def submit(conn: psycopg.AsyncConnection[Any], uid: int, aid: int) -> int:
        async with conn.transaction():
            a = await one(conn, sql.lock_assignment, {"aid": aid, "uid": uid, "admin": False})
            shown = list(a["shown_order"])
            # What payloads.resolve stores for {"choice": "a"}.
            stored = {
                "preferred": shown[0],
                "rejected": shown[1],
                "tie": False,
                "strength": None,
                "rationale": None,
                "aspects": {},
            }
            row = await one(
                conn,
                sql.insert_annotation,
                {
                    "pid": pid,
                    "iid": a["item_id"],
                    "aid": aid,
                    "uid": uid,
                    "payload": json.dumps(stored, separators=(",", ":")),
                    "ver": sql.schema_version,
                    "shown": shown,
                    "ms": None,
                    "csid": None,
                    "oq": False,
                    "gs": None,
                },
            )
            return int(row["id"])

    async def retrying(phase: Phase, fn: Callable[[], Awaitable[Any]]) -> Any:
        for attempt in range(5):
            try:
                return await fn()
            except RETRYABLE:
                if attempt == 4:
                    raise
                phase.retries += 1
        raise AssertionError("unreachable")

    async def loop(i: int, clock: Clock, phase: Phase) -> None:
        conn, uid = conns[i], uids[i]
        while time.perf_counter() < clock.deadline:
            t0 = time.perf_counter()
            try:
                task = await retrying(phase, lambda: next_task(conn, uid))
                if task is None:
                    phase.exhausted = True
                    return
                t1 = time.perf_counter()
                aid = task["assignment_id"]
                await retrying(phase, lambda: submit(conn, uid, aid))  # noqa: B023
            except psycopg.Error as exc:
                note_error(phase, f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(0.05)
                continue
            t2 = time.perf_counter()
            if clock.counts(t2):
                phase.next_ms.append((t1 - t0) * 1e3)
                phase.submit_ms.append((t2 - t1) * 1e3)
                phase.pair_ms.append((t2 - t0) * 1e3)

    return loop


# ---------------------------------------------------------------- setup through the API


@dataclass
class Annotator:
    id: int
    email: str
    token: str = ""


def make_items(first: int, n: int, tag: str) -> list[dict[str, Any]]:
    filler = "The quick brown fox jumps over the lazy dog. " * 4
    return [
        {
            "external_id": f"{tag}-{i}",
            "prompt": f"Question {i}: which answer is more helpful? {filler}",
            "responses": [
                {"text": f"Answer {side} to question {i}. {filler}", "model": f"model-{side}"}
                for side in ("a", "b")
            ],
        }
        for i in range(first, first + n)
    ]


async def gather_limited(n: int, coros: Iterable[Awaitable[Any]]) -> list[Any]:
    sem = asyncio.Semaphore(n)

    async def run(c: Awaitable[Any]) -> Any:
        async with sem:
            return await c

    return await asyncio.gather(*(run(c) for c in coros))


async def create_project(
    http: aiohttp.ClientSession,
    base: str,
    admin: str,
    name: str,
    items: int,
    members: list[Annotator],
) -> dict[str, Any]:
    project: dict[str, Any] = await call(
        http,
        "POST",
        f"{base}{API}/projects",
        admin,
        {"name": name, "kind": "pairwise", "overlap": 1},
        expect=(201,),
    )
    pid = project["id"]
    for lo in range(0, items, 1000):
        batch = make_items(lo, min(1000, items - lo), name)
        result = await call(
            http, "POST", f"{base}{API}/projects/{pid}/items", admin, batch, expect=(201,)
        )
        if result["created"] != len(batch):
            raise ApiError(f"item import created {result['created']} of {len(batch)}")
    await gather_limited(
        8,
        (
            call(http, "POST", f"{base}{API}/projects/{pid}/members", admin, {"user_id": m.id})
            for m in members
        ),
    )
    return project


async def create_annotators(
    http: aiohttp.ClientSession, base: str, admin: str, n: int, tag: str, login: bool
) -> list[Annotator]:
    password = secrets.token_urlsafe(16)

    async def one(i: int) -> Annotator:
        email = f"bench-{tag}-{i}@example.org"
        user = await call(
            http,
            "POST",
            f"{base}{API}/users",
            admin,
            {"email": email, "password": password, "role": "annotator"},
            expect=(201,),
        )
        a = Annotator(user["id"], email)
        if login:
            tok = await call(
                http,
                "POST",
                f"{base}{API}/auth/token",
                body={"email": email, "password": password},
                expect=(200,),
            )
            a.token = tok["access_token"]
        return a

    # Each user costs the server an Argon2 hash (and a verify to log in): a few at a time.
    return list(await gather_limited(4, (one(i) for i in range(n))))


# ---------------------------------------------------------------- report


def fmt_pcts(p: dict[str, float | None]) -> str:
    return "/".join("-" if v is None else f"{v:.1f}" for v in p.values())


def print_level(clients: int, phases: list[Phase]) -> None:
    cols = f"{'path':<8} {'pairs':>7} {'pairs/s':>8}  {'next p50/p95/p99 ms':>21}"
    cols += f"  {'submit p50/p95/p99 ms':>21}  {'pair p50/p95/p99 ms':>21}  {'err':>4}"
    cols += f"  {'client CPU':>16}  {'host CPU':>8}"
    print(f"\nclients={clients}")
    print(cols)
    for p in phases:
        cpu = f"{p.client_cpu_s:5.1f}s ({100 * p.client_cpu_s / p.wall_s:3.0f}%)"
        host = "-" if p.host_busy is None else f"{100 * p.host_busy:.0f}%"
        line = (
            f"{p.name:<8} {p.pairs:>7} {p.throughput:>8.1f}  {fmt_pcts(percentiles(p.next_ms)):>21}"
        )
        line += (
            f"  {fmt_pcts(percentiles(p.submit_ms)):>21}  {fmt_pcts(percentiles(p.pair_ms)):>21}"
        )
        line += f"  {sum(p.errors.values()):>4}  {cpu:>16}  {host:>8}"
        print(line)
        if p.errors:
            for what, n in p.errors.most_common(3):
                print(f"         {n} x {what}")
        if p.retries:
            print(f"         {p.retries} deadlock/serialization retries")
        if p.exhausted:
            print("         ran out of items before the end: raise --items")
    by = {p.name: p for p in phases}
    if "service" in by and "raw" in by and by["raw"].throughput:
        ratio = by["service"].throughput / by["raw"].throughput
        print(f"service/raw throughput: {ratio:.2f}")


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Next+submit throughput and latency of the service vs the same SQL raw.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--url", default="http://127.0.0.1:8000", help="base URL of the server")
    ap.add_argument(
        "--database-url",
        default=os.environ.get("TANDEM_DATABASE_URL"),
        help="database that server uses, for the raw baseline (env TANDEM_DATABASE_URL)",
    )
    ap.add_argument("--email", help="admin login")
    ap.add_argument("--password", help="admin password")
    ap.add_argument("--token", help="admin bearer token (instead of --email/--password)")
    ap.add_argument("--items", type=int, default=30000, help="items per project (overlap 1)")
    ap.add_argument(
        "--clients", default="50", help="concurrent annotators; a list like 10,50 runs each"
    )
    ap.add_argument("--duration", type=float, default=20.0, help="measured seconds per phase")
    ap.add_argument(
        "--warmup", type=float, default=2.0, help="seconds run before measuring, per phase"
    )
    ap.add_argument("--no-raw", action="store_true", help="measure the service only")
    ap.add_argument("--no-service", action="store_true", help="measure the raw SQL only")
    ap.add_argument(
        "--analyze",
        action="store_true",
        help="ANALYZE the hot tables after each import (what autovacuum does within a minute)",
    )
    ap.add_argument("--json", type=Path, help="also write the results here as JSON")
    args = ap.parse_args(argv)
    try:
        args.levels = [int(c) for c in str(args.clients).split(",") if c.strip()]
    except ValueError:
        ap.error("--clients takes integers separated by commas, e.g. 10,50")
    if not args.levels or min(args.levels) < 1:
        ap.error("--clients must be at least 1")
    if args.no_raw and args.no_service:
        ap.error("--no-raw and --no-service leave nothing to measure")
    if args.analyze and not args.database_url:
        ap.error("--analyze needs --database-url")
    if not args.token and not (args.email and args.password):
        ap.error("give --token, or --email and --password of an admin")
    return args


def psycopg_url(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme.startswith("postgres") else url


async def main(args: argparse.Namespace) -> int:
    base = args.url.rstrip("/")
    sql = None
    if args.no_raw or not args.database_url:
        if not args.no_raw:
            print("no --database-url / TANDEM_DATABASE_URL: measuring the service only")
    else:
        sql = load_sql()
        copied = [k for k, v in sql.origin.items() if v == "copy"]
        print(f"raw SQL from app.assignments.engine; copied here: {', '.join(copied) or 'none'}")
    top = max(args.levels)
    connector = aiohttp.TCPConnector(limit=top + 8, limit_per_host=top + 8, ttl_dns_cache=300)
    timeout = aiohttp.ClientTimeout(total=120)
    results: list[dict[str, Any]] = []
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        if args.token:
            admin = args.token
        else:
            tok = await call(
                http,
                "POST",
                f"{base}{API}/auth/token",
                body={"email": args.email, "password": args.password},
            )
            admin = tok["access_token"]
        me = await call(http, "GET", f"{base}{API}/me", admin)
        if me["role"] != "admin":
            print(f"{me['email']} is {me['role']}; creating users needs an admin", file=sys.stderr)
            return 2
        tag = f"{time.strftime('%m%d%H%M%S')}-{secrets.token_hex(2)}"
        t = time.perf_counter()
        service_users = (
            []
            if args.no_service
            else await create_annotators(http, base, admin, top, f"{tag}-s", login=True)
        )
        raw_users = (
            await create_annotators(http, base, admin, top, f"{tag}-r", login=False) if sql else []
        )
        print(
            f"created {len(service_users) + len(raw_users)} annotators in "
            f"{time.perf_counter() - t:.1f}s; {args.items} items per project, "
            f"{args.duration:g}s measured after {args.warmup:g}s warmup"
        )
        print(
            "client CPU: this process (seconds, % of one core) over the phase; "
            "host CPU: all cores busy during the measured window"
        )

        async def prepare(path: str, clients: int, users: list[Annotator]) -> dict[str, Any]:
            name = f"bench-{tag}-{path}-{clients}"
            project = await create_project(http, base, admin, name, args.items, users)
            if args.analyze:
                async with await psycopg.AsyncConnection.connect(
                    psycopg_url(args.database_url), autocommit=True
                ) as conn:
                    await conn.execute(ANALYZE)
            return project

        for clients in args.levels:
            phases: list[Phase] = []
            if sql is not None:
                users = raw_users[:clients]
                project = await prepare("raw", clients, users)
                conns: list[psycopg.AsyncConnection[Any]] = []
                try:
                    for _ in range(clients):
                        conns.append(
                            await psycopg.AsyncConnection.connect(
                                psycopg_url(args.database_url),
                                autocommit=True,
                                row_factory=dict_row,
                            )
                        )
                    phase = Phase("raw", clients)
                    loop = raw_client(
                        conns, sql, project["id"], project["lease_seconds"], [u.id for u in users]
                    )
                    await run_phase(phase, args.duration, args.warmup, loop)
                except psycopg.OperationalError as exc:
                    print(
                        f"raw connection {len(conns) + 1} of {clients} failed ({exc}); the "
                        "server's pool and these must fit in max_connections",
                        file=sys.stderr,
                    )
                    return 1
                finally:
                    for c in conns:
                        await c.close()
                phases.append(phase)
            if args.no_service:
                print_level(clients, phases)
                results.extend(p.summary() for p in phases)
                continue
            users = service_users[:clients]
            project = await prepare("svc", clients, users)
            phase = Phase("service", clients)
            loop = service_client(http, base, project["id"], [u.token for u in users])
            await run_phase(phase, args.duration, args.warmup, loop)
            phases.insert(0, phase)
            print_level(clients, phases)
            results.extend(p.summary() for p in phases)

    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def entry() -> int:
    args = parse_args()
    try:
        import uvloop
    except ImportError:
        run: Callable[[Any], Any] = asyncio.run
    else:
        run = uvloop.run
    try:
        return int(run(main(args)))
    except (ApiError, aiohttp.ClientError) as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(entry())
