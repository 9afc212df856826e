"""Browser benchmark of the annotate page: 50 pairwise tasks in a row, in headless Chromium.

Prints the median and p95 time from pressing Enter (submit) to the next task being rendered
and painted, measured inside the page from the key event's timestamp to the first frame after
the workspace announced the new task (submit round trip + next-task round trip + DOM work),
and the bytes the annotate page transferred on a cold load (HTML + JS + CSS, then the task
data fetched by its script). Goals: p95 under 150 ms locally, page under 150 KB.

Self-contained: it creates a scratch database on a PostgreSQL server (dropped afterwards),
migrates it, seeds an annotator and a pairwise project, starts the app under uvicorn on a
free port, and drives Debian's Chromium (make deps-browser). Redis is only the login rate
limiter here, which fails open when it is absent.

    .venv/bin/python bench/ui.py                      # defaults: local PostgreSQL, 50 tasks
    .venv/bin/python bench/ui.py --pg postgresql://postgres@db:5432/postgres --tasks 100
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench password 123"
COLD_LOADS = 5
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# Records, in the page, Enter's timestamp and the first frame after the next task rendered.
PROBE = """
window.__bench = { key: 0, samples: [], first: 0 };
document.addEventListener('keydown', function (e) {
  if (e.key === 'Enter') window.__bench.key = e.timeStamp;
}, true);
document.addEventListener('tandem:task-rendered', function () {
  if (!window.__bench.first) {
    requestAnimationFrame(function () {
      setTimeout(function () { window.__bench.first = performance.now(); }, 0);
    });
  }
  var k = window.__bench.key;
  if (!k) return;
  window.__bench.key = 0;
  requestAnimationFrame(function () {
    setTimeout(function () { window.__bench.samples.push(performance.now() - k); }, 0);
  });
});
"""

WEIGHT = """
() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const out = { html: nav.transferSize, js: 0, css: 0, data: 0, other: 0 };
  for (const r of performance.getEntriesByType('resource')) {
    const kind = r.name.includes('.js') ? 'js' : r.name.includes('.css') ? 'css'
      : (r.initiatorType === 'fetch' || r.initiatorType === 'xmlhttprequest') ? 'data' : 'other';
    out[kind] += r.transferSize;
  }
  return out;
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _markdown_answer(i: int, side: str) -> str:
    return (
        f"**Answer {side} to question {i}.** Recursion solves a problem by reducing it to a"
        " smaller instance of itself until a base case is reached.\n\n"
        "```python\ndef factorial(n: int) -> int:\n    return 1 if n < 2 else n * factorial(n - 1)\n```\n\n"
        "- the base case stops the descent\n- each call waits for the smaller one\n"
        "- depth grows with the input, so very deep inputs need an iterative version\n\n"
        + "This paragraph pads the answer to a realistic length for a chat model. "
        * 4
    )


def _seed(n_items: int) -> tuple[str, int]:
    from app.auth.models import Role
    from app.auth.service import Principal, create_user
    from app.db import session_scope
    from app.items.importer import import_rows
    from app.migrate import upgrade_head
    from app.projects.models import TaskKind
    from app.projects.schemas import ProjectCreate
    from app.projects.service import add_member, create_project

    upgrade_head()
    email = "annotator@bench.tandem"
    with session_scope() as session:
        admin = create_user(session, "admin@bench.tandem", PASSWORD, Role.admin)
        user = create_user(session, email, PASSWORD, Role.annotator)
        principal = Principal(id=admin.id, email=admin.email, role=Role.admin, token="")
        body = ProjectCreate(
            name="UI bench",
            kind=TaskKind.pairwise,
            guidelines="# Guidelines\n\nPrefer the **correct** and *concise* answer.",
            aspects=["helpfulness", "honesty"],
        )
        project = create_project(session, principal, body)
        add_member(session, principal, project.id, user.id)
        rows = [
            (
                i + 1,
                {
                    "external_id": f"bench-{i}",
                    "prompt": f"Question {i}: explain recursion with a short example.",
                    "responses": [
                        {"text": _markdown_answer(i, "A")},
                        {"text": _markdown_answer(i, "B")},
                    ],
                },
            )
            for i in range(n_items)
        ]
        import_rows(session, project, rows)
        return email, project.id


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[rank]


def _drive(base: str, email: str, pid: int, tasks: int, chromium: str) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=base)
        context.add_init_script(PROBE)
        page = context.new_page()
        page.goto("/login")
        page.get_by_test_id("login-email").fill(email)
        page.get_by_test_id("login-password").fill(PASSWORD)
        page.get_by_test_id("login-submit").click()
        page.wait_for_url(base + "/")
        # Cold loads of the annotate page (cache emptied each time): bytes, and the time from
        # navigation to the first task painted (HTML, then its scripts, then the task data).
        cdp = context.new_cdp_session(page)
        first: list[float] = []
        for _ in range(COLD_LOADS):
            cdp.send("Network.clearBrowserCache")
            page.goto(f"/projects/{pid}/annotate")
            page.wait_for_function("() => window.__bench.first > 0")
            first.append(page.evaluate("window.__bench.first"))
        weight = page.evaluate(WEIGHT)
        # One warm-up task, then the measured ones.
        for i in range(tasks + 1):
            page.keyboard.press("1" if i % 2 else "2")
            page.keyboard.press("Enter")
            page.wait_for_function("n => window.__bench.samples.length >= n", arg=i + 1)
        samples: list[float] = page.evaluate("window.__bench.samples")[1:]
        browser.close()
    return {"samples": samples, "weight": weight, "first": first}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pg", default=os.environ.get("TANDEM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="a PostgreSQL server URL whose user may create databases")  # fmt: skip
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    db = f"tandem_bench_ui_{secrets.token_hex(3)}"
    db_url = args.pg.rsplit("/", 1)[0] + "/" + db
    os.environ.update(
        TANDEM_DATABASE_URL=db_url,
        TANDEM_REDIS_URL=args.redis,
        TANDEM_SECRET_KEY=secrets.token_urlsafe(48),
        TANDEM_DATA_DIR=f"/tmp/{db}",
        TANDEM_LOGIN_ATTEMPTS_PER_MINUTE="1000",
    )
    with psycopg.connect(args.pg, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    server = None
    try:
        email, pid = _seed(args.tasks + 5)
        from app.db import get_engine

        get_engine().dispose()
        port = _free_port()
        server = subprocess.Popen(
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
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.1)
        result = _drive(base, email, pid, args.tasks, args.chromium)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')

    samples, w, first = result["samples"], result["weight"], result["first"]
    page_bytes = w["html"] + w["js"] + w["css"]
    median, p95 = statistics.median(samples), _percentile(samples, 0.95)
    print(f"pairwise tasks measured: {len(samples)} (one warm-up task not counted)")
    print(
        f"Enter -> next task rendered: median {median:.1f} ms, p95 {p95:.1f} ms, max {max(samples):.1f} ms"
    )
    print(f"  p95 vs goal (150 ms): {p95 / 150:.2f}x")
    print(
        f"annotate page transferred (cold): html {w['html'] / 1024:.1f} KB + js {w['js'] / 1024:.1f} KB"
        f" + css {w['css'] / 1024:.1f} KB = {page_bytes / 1024:.1f} KB"
        f" (goal < 150 KB: {page_bytes / (150 * 1024):.2f}x); first task data {w['data'] / 1024:.1f} KB"
    )
    print(
        f"cold load -> first task painted ({len(first)} loads, empty cache):"
        f" median {statistics.median(first):.1f} ms, max {max(first):.1f} ms"
    )


if __name__ == "__main__":
    main()
