"""A judge run whose worker is killed (SIGKILL) mid-run: every item is judged exactly once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Actor
from tests.inference.misbehaving_server import _answer
from tests.jobs.helpers import job_row, sql, wait_for_status, wait_until, worker_processes
from tests.judges.helpers import make_project, start


@pytest.fixture
def slow_judge_server() -> Iterator[str]:
    """Answers the label of the response that starts with "good", after 0.15 s."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            user = body["messages"][-1]["content"]
            shown_a = user.split("Response A:\n", 1)[1]
            time.sleep(0.15)
            payload = json.dumps(_answer(body, "A" if shown_a.startswith("good") else "B"))
            data = payload.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    yield f"http://{host!s}:{port}/v1"
    server.shutdown()
    server.server_close()


def test_a_killed_worker_resumes_and_judges_every_item_exactly_once(
    admin: Actor, researcher: Actor, slow_judge_server: str, tmp_path: Path
) -> None:
    n = 24
    pid = make_project(researcher, "pairwise", n)
    body = {
        "name": "slow",
        "backend": "openai",
        "model": "m",
        "params": {"base_url": slow_judge_server, "chunk_size": 2, "max_retries": 0},
        "costs": {"per_call": 1.0},
    }
    r = admin.client.post("/api/v1/judges", json=body)
    assert r.status_code == 201, r.text
    with worker_processes(tmp_path) as workers:
        first = workers()
        first.wait_ready()
        queued = start(researcher, pid, r.json()["id"])
        job_id = queued["job_id"]

        def judged() -> int:
            return int(sql("SELECT count(*) FROM judge_outputs")[0][0])

        wait_until(lambda: judged() >= 6, timeout=90, what="6 items judged")
        first.kill()
        before = judged()
        assert 6 <= before < n, before
        assert job_row(job_id)["status"] == "running"
        second = workers()
        second.wait_ready()
        job = wait_for_status(job_id, "succeeded", "failed", timeout=120)
    assert job["status"] == "succeeded", job
    assert (job["attempts"], job["lost_attempts"]) == (2, 1)
    # Every item once: one output and one vote each, counters and cost counted once.
    per_item = sql(
        "SELECT i.id, (SELECT count(*) FROM judge_outputs o WHERE o.item_id = i.id),"
        " (SELECT count(*) FROM annotations a WHERE a.item_id = i.id AND a.source = 'ai')"
        " FROM items i WHERE i.project_id = %s",
        pid,
    )
    assert len(per_item) == n and {(o, a) for _, o, a in per_item} == {(1, 1)}
    run = researcher.client.get(f"/api/v1/projects/{pid}/judge-runs/{queued['run_id']}").json()
    assert (run["status"], run["total"], run["done"], run["failed"]) == ("succeeded", n, n, 0)
    assert run["cost"] == pytest.approx(2.0 * n)  # two calls per item, each counted once
    assert run["progress"] == 1.0
