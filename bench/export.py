"""Export throughput: 1M pairwise annotations over 200k items, JSONL and Parquet, vs COPY TO STDOUT.

Creates a scratch database on a PostgreSQL server (dropped at the end unless --keep), fills it
with COPY (users, a pairwise project, items with two responses each, annotations: 90% human,
10% AI, some ties), then measures, each in a fresh Python process so that peak memory is that
step's alone:

  * the `preference` export (majority vote per item) to JSONL and to Parquet, in-process
    through the same code as the API (app.exports.build.ExportRun), written to a file;
  * the limit: `COPY (<the export's own SELECT>) TO STDOUT`, the same rows as the exporter
    reads (items with their votes packed as JSON by PostgreSQL), read by the client and dropped;
  * for reference, COPY of the plain per-annotation join (one line per annotation).

Peak memory is flat in the size of the export: every export is also run on a tenth of the items
(the `shard=0` metadata filter) and both peaks are printed. Columns: output rows (one per item
with a majority: ties are left out; one per non-tie vote with aggregate=none), seconds, output
rows/s, annotations read/s, MB written, peak resident memory of the measuring process (MB),
speed relative to the COPY limit (its seconds / this one's), CPU seconds of the measuring
process (all its threads) and of its PostgreSQL backend (read from /proc when the server runs
on this machine, else "-"), and the 1-minute load average. The machine may be shared:
--repeat N keeps the fastest of N runs of each line, and the least CPU time of each kind.
Others' load stretches wall time much more than CPU time, so compare CPU columns across runs
made at different loads.

    .venv/bin/python bench/export.py                       # 1M annotations, about 5 minutes
    .venv/bin/python bench/export.py --items 20000 --quick # a smaller run
    .venv/bin/python bench/export.py --database-url postgresql://.../db   # fill a project there
    .venv/bin/python bench/export.py --database-url postgresql://.../db --project 1  # measure only

Prints numbers and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = [
    *[
        "the",
        "model",
        "answer",
        "explains",
        "why",
        "a",
        "careful",
        "reader",
        "would",
        "prefer",
        "clear",
        "reasoning",
    ],
    *[
        "over",
        "vague",
        "claims",
        "and",
        "checks",
        "each",
        "step",
        "against",
        "the",
        "question",
        "before",
    ],
    *["giving", "a", "final", "short", "summary", "🙂", "日本語", "données", "naïve"],
]


EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
REPEAT = 1


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _lines(rows: Any) -> bytes:
    return "".join("\t".join(r) + "\n" for r in rows).encode()


# --- data -------------------------------------------------------------------------------------


def fill(url: str, items: int, votes_per_item: int, annotators: int, seed: int) -> int:
    """COPY a pairwise project into the database; returns its id."""
    rng = random.Random(seed)
    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        stamp = secrets.token_hex(4)
        with conn.cursor().copy("COPY users (email, password_hash, role) FROM STDIN") as copy:
            copy.write(
                _lines(
                    (f"bench-{stamp}-{u}@example.org", "x", "annotator") for u in range(annotators)
                )
            )
        user_ids = [
            r[0]
            for r in conn.execute("SELECT id FROM users WHERE email LIKE %s", (f"bench-{stamp}-%",))
        ]
        pid = conn.execute(
            "INSERT INTO projects (name, kind, overlap) VALUES ('export bench', 'pairwise', %s)"
            " RETURNING id",
            (votes_per_item,),
        ).fetchone()[0]  # type: ignore[index]
        item0 = conn.execute("SELECT coalesce(max(id), 0) FROM items").fetchone()[0]  # type: ignore[index]
        resp0 = conn.execute("SELECT coalesce(max(id), 0) FROM responses").fetchone()[0]  # type: ignore[index]
        ann0 = conn.execute("SELECT coalesce(max(id), 0) FROM annotations").fetchone()[0]  # type: ignore[index]
        batch = 20_000
        with conn.cursor().copy(
            "COPY items (id, project_id, external_id, prompt, metadata, remaining) FROM STDIN"
        ) as copy:
            for start in range(0, items, batch):
                copy.write(
                    _lines(
                        (
                            str(item0 + i + 1),
                            str(pid),
                            f"item-{i}",
                            _text(rng, 25),
                            json.dumps({"shard": i % 10, "lang": "en"}),
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
                            str(resp0 + 2 * i + pos + 1),
                            str(item0 + i + 1),
                            str(pos),
                            _text(rng, 70),
                            f"model-{pos}",
                        )
                        for i in range(start, min(items, start + batch))
                        for pos in (0, 1)
                    )
                )
        cols = (
            "id, project_id, item_id, source, user_id, judge_id, payload, schema_version,"
            " shown_order, time_spent_ms, over_quota, created_at"
        )
        # AI votes name judges 1..3 (annotations.judge_id is a foreign key).
        for j in (1, 2, 3):
            conn.execute(
                "INSERT INTO judges (id, name, backend, model) OVERRIDING SYSTEM VALUE"
                " VALUES (%s, %s, 'simulated', 'sim') ON CONFLICT DO NOTHING",
                (j, f"bench-judge-{j}"),
            )
        n = ann0
        with conn.cursor().copy(f"COPY annotations ({cols}) FROM STDIN") as copy:
            for start in range(0, items, batch // votes_per_item):
                rows = []
                for i in range(start, min(items, start + batch // votes_per_item)):
                    r0, r1 = resp0 + 2 * i + 1, resp0 + 2 * i + 2
                    better = r0 if rng.random() < 0.6 else r1
                    voters = rng.sample(user_ids, votes_per_item)
                    for v in range(votes_per_item):
                        n += 1
                        ai = rng.random() < 0.1
                        roll = rng.random()
                        preferred = (
                            None if roll < 0.1 else (better if roll < 0.8 else r0 + r1 - better)
                        )
                        payload = json.dumps(
                            {
                                "preferred": preferred,
                                "rejected": None if preferred is None else r0 + r1 - preferred,
                                "tie": preferred is None,
                                "strength": rng.choice((1, 2, 3)),
                                "rationale": None,
                                "aspects": {},
                            }
                        )
                        shown = f"{{{r0},{r1}}}" if rng.random() < 0.5 else f"{{{r1},{r0}}}"
                        made = EPOCH + timedelta(seconds=30 * (i * votes_per_item + v))
                        rows.append(
                            (
                                str(n),
                                str(pid),
                                str(item0 + i + 1),
                                "ai" if ai else "human",
                                "\\N" if ai else str(voters[v]),
                                str(rng.randint(1, 3)) if ai else "\\N",
                                payload,
                                "1",
                                shown,
                                str(rng.randint(2000, 60000)),
                                "f",
                                made.isoformat(),
                            )
                        )
                copy.write(_lines(rows))
        for table in ("items", "responses", "annotations", "users", "projects"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT max(id) FROM {table}))"
            )
        conn.execute("VACUUM ANALYZE items")
        conn.execute("VACUUM ANALYZE responses")
        conn.execute("VACUUM ANALYZE annotations")
    print(
        f"filled: {items:,} items, {items * votes_per_item:,} annotations"
        f" in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    return int(pid)


# --- measurements (each in a child process) ---------------------------------------------------


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """CPU time of this process so far, all threads, user + system."""
    t = os.times()
    return t.user + t.system


def backend_cpu_seconds(backend_pid: int) -> float | None:
    """CPU time of a PostgreSQL backend so far, when the server runs on this machine."""
    proc = Path(f"/proc/{backend_pid}")
    try:
        if b"postgres" not in (proc / "cmdline").read_bytes():
            return None
        fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class BackendClock:
    """CPU time spent by the PostgreSQL backends of the connections watched since they were."""

    def __init__(self) -> None:
        self.start: dict[int, float | None] = {}

    def watch(self, backend_pid: int) -> None:
        if backend_pid not in self.start:
            self.start[backend_pid] = backend_cpu_seconds(backend_pid)

    def seconds(self) -> float | None:
        total = 0.0
        for backend_pid, start in self.start.items():
            now = backend_cpu_seconds(backend_pid)
            if start is None or now is None:
                return None
            total += now - start
        return total


def measure_export(url: str, pid: int, fmt: str, extra: dict[str, Any]) -> dict[str, Any]:
    os.environ["TANDEM_DATABASE_URL"] = url
    from sqlalchemy import event

    from app.db import get_engine
    from app.exports.build import ExportRun
    from app.exports.schemas import ExportOptions
    from app.exports.writers import HashingSink

    options = ExportOptions.model_validate({"schema": "preference", "format": fmt, **extra})
    engine = get_engine()
    with engine.connect() as c:  # connect (and import everything) before the clock starts
        c.exec_driver_sql("SELECT 1")
    backends = BackendClock()
    event.listen(engine, "checkout", lambda dbapi, *_: backends.watch(dbapi.info.backend_pid))
    base = peak_rss_mb()
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / f"out.{fmt}", "wb") as f:
        sink = HashingSink(f)
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        outcome = ExportRun(engine, pid, options, sink).run()
        f.flush()
        seconds, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    return {
        "seconds": seconds,
        "cpu": cpu,
        "pg_cpu": backends.seconds(),
        "rows": outcome.stats.rows,
        "items": outcome.stats.items_considered,
        "annotations": outcome.stats.votes_read,
        "annotations_in_rows": outcome.stats.votes,
        "bytes": sink.bytes,
        "rss_before_mb": base,
        "peak_rss_mb": peak_rss_mb(),
    }


def _copy_sql(url: str, pid: int, extra: dict[str, Any], plain: bool) -> str:
    os.environ["TANDEM_DATABASE_URL"] = url
    from sqlalchemy import text
    from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg

    from app.exports.query import items_sql
    from app.exports.schemas import ExportOptions

    options = ExportOptions.model_validate({"schema": "preference", **extra})
    if plain:
        meta = " AND i.metadata @> %(meta)s::jsonb" if options.metadata else ""
        sql = (
            "SELECT a.id, a.source, a.user_id, a.judge_id, a.payload, a.shown_order, a.created_at,"
            " i.id, i.external_id, i.prompt, i.metadata, r0.text, r0.model, r1.text, r1.model"
            " FROM items i JOIN annotations a ON a.item_id = i.id"
            " JOIN responses r0 ON r0.item_id = i.id AND r0.position = 0"
            " JOIN responses r1 ON r1.item_id = i.id AND r1.position = 1"
            f" WHERE i.project_id = %(pid)s AND NOT i.is_gold{meta} ORDER BY i.id, a.id"
        )
        params: dict[str, Any] = {"pid": pid, "meta": json.dumps(options.metadata)}
    else:
        query, params = items_sql("pairwise", options)
        params = {**params, "pid": pid}
        sql = str(text(query).compile(dialect=pg_psycopg.dialect()))
    with psycopg.connect(url) as conn:
        return psycopg.ClientCursor(conn).mogrify(sql, params)


def measure_copy(url: str, pid: int, extra: dict[str, Any], plain: bool) -> dict[str, Any]:
    sql = _copy_sql(url, pid, extra, plain)
    with psycopg.connect(url) as conn:
        conn.execute("SELECT 1")
        total = lines = 0
        backends = BackendClock()
        backends.watch(conn.info.backend_pid)
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        with conn.cursor().copy(f"COPY ({sql}) TO STDOUT") as copy:
            for chunk in copy:
                total += len(chunk)
                lines += bytes(chunk).count(b"\n")
        seconds, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    return {
        "seconds": seconds,
        "cpu": cpu,
        "pg_cpu": backends.seconds(),
        "rows": lines,
        "bytes": total,
        "peak_rss_mb": peak_rss_mb(),
    }


def child(args: argparse.Namespace) -> int:
    extra = json.loads(args.extra)
    if args.measure == "copy":
        out = measure_copy(args.database_url, args.project, extra, plain=False)
    elif args.measure == "copy-plain":
        out = measure_copy(args.database_url, args.project, extra, plain=True)
    else:
        out = measure_export(args.database_url, args.project, args.measure, extra)
    print(json.dumps(out))
    return 0


def run_child(url: str, pid: int, what: str, extra: dict[str, Any]) -> dict[str, Any]:
    """The fastest of REPEAT runs (others' load on a shared machine only ever slows a run)."""
    runs = [_run_child(url, pid, what, extra) for _ in range(REPEAT)]
    best = min(runs, key=lambda r: float(r["seconds"]))
    best["load"] = os.getloadavg()[0]
    best["cpu"] = min(r["cpu"] for r in runs)
    pg = [r["pg_cpu"] for r in runs]
    best["pg_cpu"] = None if None in pg else min(pg)
    return best


def _run_child(url: str, pid: int, what: str, extra: dict[str, Any]) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--database-url",
        url,
        "--project",
        str(pid),
        "--measure",
        what,
        "--extra",
        json.dumps(extra),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- driver -----------------------------------------------------------------------------------


def _line(name: str, r: dict[str, Any], limit: dict[str, Any], annotations: int) -> str:
    rss = f"{r['peak_rss_mb']:6.0f}" if "rss_before_mb" in r else "     -"
    pg_cpu = "     -" if r.get("pg_cpu") is None else f"{r['pg_cpu']:6.2f}"
    return (
        f"{name:<28} {r['rows']:>9,} {r['seconds']:7.2f} {r['rows'] / r['seconds']:>9,.0f}"
        f" {annotations / r['seconds']:>10,.0f} {r['bytes'] / 1e6:8.1f} {rss}"
        f" {limit['seconds'] / r['seconds']:6.0%} {r['cpu']:6.2f} {pg_cpu} {r['load']:5.1f}"
    )


def report(url: str, pid: int, quick: bool) -> None:
    scopes = [("all items", {})]
    if not quick:
        scopes.append(("1/10 of the items (metadata shard=0)", {"metadata": {"shard": 0}}))
    for label, extra in scopes:
        limit = run_child(url, pid, "copy", extra)
        plain = run_child(url, pid, "copy-plain", extra)
        runs = [("export jsonl", run_child(url, pid, "jsonl", extra))]
        runs.append(("export parquet", run_child(url, pid, "parquet", extra)))
        if not quick:
            none = run_child(url, pid, "jsonl", {**extra, "aggregate": "none"})
            runs.append(("export jsonl aggregate=none", none))
        annotations = runs[0][1]["annotations"]
        print(
            f"\n== preference export, {label}: {limit['rows']:,} items, {annotations:,} annotations =="
        )
        print(
            f"{'':<28} {'rows':>9} {'seconds':>7} {'rows/s':>9} {'annot./s':>10} {'MB out':>8}"
            f" {'RSS MB':>6} {'vs lim':>6} {'CPU s':>6} {'PG CPU':>6} {'load':>5}"
        )
        print(_line("COPY (export SELECT): limit", limit, limit, annotations))
        print(_line("COPY (per-annotation join)", plain, limit, annotations))
        for name, r in runs:
            print(_line(name, r, limit, annotations), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--server",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="server URL whose user may create databases (for the scratch database)",
    )
    ap.add_argument("--database-url", help="use this (migrated) database instead of a scratch one")
    ap.add_argument("--items", type=int, default=200_000)
    ap.add_argument("--votes-per-item", type=int, default=5)
    ap.add_argument("--annotators", type=int, default=50)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="skip the 1/10 and aggregate=none runs")
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    ap.add_argument(
        "--project", type=int, help="with --database-url: measure this project, fill nothing"
    )
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    ap.add_argument("--extra", default="{}", help=argparse.SUPPRESS)
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement; the best counts")
    args = ap.parse_args()
    if args.measure:
        return child(args)
    global REPEAT
    REPEAT = args.repeat
    print(f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.1f}", flush=True)

    scratch = None
    url = args.database_url
    if url is None:
        scratch = f"tandem_bench_export_{os.getpid()}"
        url = args.server.rsplit("/", 1)[0] + "/" + scratch
        with psycopg.connect(args.server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{scratch}"')
    try:
        os.environ["TANDEM_DATABASE_URL"] = url
        from app.migrate import upgrade_head

        upgrade_head()
        pid = args.project or fill(url, args.items, args.votes_per_item, args.annotators, args.seed)
        report(url, pid, args.quick)
    finally:
        if scratch is not None and not args.keep:
            with psycopg.connect(args.server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        elif scratch is not None:
            print(f"kept database {url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
