"""Import throughput: one large file, and 1,000-row requests into a project that already holds
many items, through the import service, against a COPY of the same rows.

Creates a scratch database (dropped at the end unless --keep) and measures, in one process:

  * big file: `--size` pairwise rows as one JSONL file through `app.items.importer.import_file`
    (what `POST /items` runs after reading the body: sniffing, JSON parsing, validation,
    duplicate check, COPY into items and responses, and the statistics policy), into an empty
    project; then COPY of the same rows (items and responses, straight through psycopg, no
    parsing or validation) into a second project: the limit;
  * requests: `--requests` rounds of 1,000-row files into the first project (which now holds
    `--size` items), each round importing one file under the current policy (ANALYZE only when
    an import adds a fifth of the items table), one file under the former policy (ANALYZE items,
    responses after every import of 1,000 rows or more), and the same rows by COPY into the
    second project. Interleaved, so that the three see the same table sizes and machine load.

Columns: items, seconds, items/s, and the ratio to COPY's items/s. The machine may be shared:
compare ratios within one run, not seconds across runs.

    .venv/bin/python bench/import.py                    # --size 200000, a few minutes
    .venv/bin/python bench/import.py --size 1000000     # the issue's size
    .venv/bin/python bench/import.py --size 20000 --requests 5

Prints numbers and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORDS = [
    "the",
    "model",
    "answer",
    "explains",
    "why",
    "a",
    "user",
    "asked",
    "about",
    "code",
    "tests",
    "data",
    "safety",
    "clear",
    "short",
    "long",
    "step",
    "first",
    "then",
    "finally",
    "because",
    "however",
    "example",
    "result",
    "value",
    "error",
    "fix",
    "change",
]


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def make_rows(prefix: str, n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "external_id": f"{prefix}-{i}",
            "prompt": _text(rng, 30),
            "responses": [
                {"text": _text(rng, 60), "model": "m-a"},
                {"text": _text(rng, 60), "model": "m-b"},
            ],
            "metadata": {"shard": i % 10},
        }
        for i in range(n)
    ]


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def copy_rows(url: str, pid: int, overlap: int, rows: list[dict[str, Any]]) -> None:
    """The limit: the same items and responses by COPY, ids drawn as the importer draws them."""
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        ids = [
            r[0]
            for r in cur.execute(
                "SELECT nextval(pg_get_serial_sequence('items', 'id')) FROM generate_series(1, %s)",
                (len(rows),),
            ).fetchall()
        ]
        with cur.copy(
            "COPY items (id, project_id, external_id, prompt, metadata, priority, is_gold,"
            " gold_answer, remaining) FROM STDIN"
        ) as copy:
            for item_id, r in zip(ids, rows, strict=True):
                copy.write_row(
                    (item_id, pid, r["external_id"], r["prompt"], Jsonb(r["metadata"]), 0,
                     False, None, overlap)
                )  # fmt: skip
        with cur.copy(
            "COPY responses (item_id, position, external_id, text, model) FROM STDIN"
        ) as copy:
            for item_id, r in zip(ids, rows, strict=True):
                for pos, resp in enumerate(r["responses"]):
                    copy.write_row((item_id, pos, None, resp["text"], resp["model"]))


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def line(name: str, items: int, seconds: float, copy_rate: float | None) -> str:
    rate = items / seconds if seconds else float("inf")
    ratio = f"{rate / copy_rate:6.2f}" if copy_rate else "     -"
    return f"{name:<44} {items:>9} {seconds:>9.2f} {rate:>10.0f} {ratio}"


def run(url: str, size: int, requests: int, request_rows: int, seed: int) -> None:
    from app.auth.models import Role, User
    from app.auth.service import Principal
    from app.db import session_scope
    from app.items import importer
    from app.projects.schemas import ProjectCreate
    from app.projects.service import create_project

    with session_scope() as s:
        user = User(email=f"bench-{os.getpid()}@example.org", password_hash="x", role="researcher")
        s.add(user)
        s.flush()
        principal = Principal(user.id, user.email, Role.researcher, "")
        service_pid = create_project(
            s, principal, ProjectCreate(name="import bench", kind="pairwise", overlap=3)
        ).id
        copy_pid = create_project(
            s, principal, ProjectCreate(name="import bench (COPY)", kind="pairwise", overlap=3)
        ).id

    def service_import(data: bytes) -> None:
        with session_scope() as s:
            result = importer.import_file(s, principal, service_pid, io.BytesIO(data), None)
        assert result.skipped == 0

    print(f"{'':<44} {'items':>9} {'seconds':>9} {'items/s':>10} {'/COPY':>6}")

    def big_file() -> None:
        rows = make_rows("big", size, seed)
        data = jsonl(rows)
        print(f"# one file of {size} rows ({len(data) / 1e6:.1f} MB of JSONL)", flush=True)
        service_s = timed(lambda: service_import(data))
        copy_s = timed(lambda: copy_rows(url, copy_pid, 3, rows))
        print(line("import service, one file", size, service_s, size / copy_s))
        print(line("COPY, the same rows", size, copy_s, size / copy_s), flush=True)

    big_file()  # its rows are freed before the requests start

    former = importer.needs_analyze
    every_import: Callable[[int, int], bool] = lambda created, _: created >= 1000  # noqa: E731
    times: dict[str, list[float]] = {"current": [], "former": [], "copy": []}
    print(
        f"# {requests} rounds of {request_rows}-row requests into the project of {size} items",
        flush=True,
    )
    for n in range(requests):
        for policy in ("current", "former"):
            chunk = make_rows(f"{policy}-{n}", request_rows, seed + n)
            body = jsonl(chunk)
            importer.needs_analyze = former if policy == "current" else every_import  # type: ignore[assignment]
            try:
                times[policy].append(timed(lambda body=body: service_import(body)))
            finally:
                importer.needs_analyze = former  # type: ignore[assignment]
        chunk = make_rows(f"copy-{n}", request_rows, seed + n)
        times["copy"].append(timed(lambda chunk=chunk: copy_rows(url, copy_pid, 3, chunk)))
    total = requests * request_rows
    copy_rate = total / sum(times["copy"])
    print(line("requests, ANALYZE on a fifth (current)", total, sum(times["current"]), copy_rate))
    print(line("requests, ANALYZE every import (former)", total, sum(times["former"]), copy_rate))
    print(line("requests, COPY", total, sum(times["copy"]), copy_rate))
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(
        f"# median ms per request: current {med['current']:.0f}, former {med['former']:.0f},"
        f" COPY {med['copy']:.0f}; current is {med['former'] / med['current']:.2f}x the former"
    )
    with psycopg.connect(url) as conn:
        n_items = conn.execute("SELECT count(*) FROM items").fetchone()
    print(f"# items table at the end: {n_items[0] if n_items else '?'} rows")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--server",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="server URL whose user may create databases (for the scratch database)",
    )
    ap.add_argument("--size", type=int, default=200_000, help="rows of the large file")
    ap.add_argument("--requests", type=int, default=20, help="rounds of 1,000-row requests")
    ap.add_argument("--request-rows", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.1f}", flush=True)
    scratch = f"tandem_bench_import_{os.getpid()}"
    url = args.server.rsplit("/", 1)[0] + "/" + scratch
    with psycopg.connect(args.server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{scratch}"')
    try:
        os.environ["TANDEM_DATABASE_URL"] = url
        from app.migrate import upgrade_head

        upgrade_head()
        run(url, args.size, args.requests, args.request_rows, args.seed)
        print(f"load average at end {os.getloadavg()[0]:.1f}")
    finally:
        if not args.keep:
            from app.db import get_engine

            get_engine().dispose()
            with psycopg.connect(args.server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        else:
            print(f"kept database {url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
