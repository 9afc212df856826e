"""CLI commands find the servers of a `tandem up` on the same data dir, and fail in one line.

Run as real subprocesses without TANDEM_DATABASE_URL / TANDEM_REDIS_URL, as a person would in a
second terminal, against a real `tandem up` (embedded PostgreSQL and Valkey) in a temp dir.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

pytestmark = pytest.mark.timeout(240)

TANDEM = str(Path(sys.executable).with_name("tandem"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("TANDEM_DATABASE_URL", "TANDEM_REDIS_URL")
    }
    env.update(TANDEM_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1", **extra)
    return env


def tandem(data_dir: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TANDEM, *args], env=_env(data_dir, **extra), capture_output=True, text=True, timeout=120
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode != 0, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@dataclass
class Up:
    data_dir: Path
    process: subprocess.Popen[str]
    web: str

    @property
    def runtime_file(self) -> Path:
        return self.data_dir / "runtime.json"

    def runtime(self) -> dict[str, object]:
        doc: dict[str, object] = json.loads(self.runtime_file.read_text())
        return doc

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=90)


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    # Not tmp_path: as root the embedded_postgres user must traverse every parent folder.
    with tempfile.TemporaryDirectory(prefix="tandem-cli-") as tmp:
        yield Path(tmp) / "var"


@pytest.fixture(scope="module")
def up(data_dir: Path) -> Iterator[Up]:
    port = _free_port()
    log = open(data_dir.parent / "up.log", "w+")  # noqa: SIM115
    process = subprocess.Popen(
        [TANDEM, "up", "--port", str(port), "--no-worker"],
        env=_env(data_dir),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = Up(data_dir, process, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 180
        while "Tandem is running" not in (data_dir.parent / "up.log").read_text():
            assert process.poll() is None, (data_dir.parent / "up.log").read_text()
            assert time.monotonic() < deadline, "tandem up did not start"
            time.sleep(0.25)
        yield running
    finally:
        running.stop()
        log.close()


def test_tandem_up_writes_a_private_runtime_file_naming_its_servers(up: Up) -> None:
    assert up.runtime_file.stat().st_mode & 0o777 == 0o600
    doc = up.runtime()
    assert doc["pid"] == up.process.pid and doc["web_url"] == up.web
    names = [s["name"] for s in doc["servers"]]  # type: ignore[attr-defined]
    assert names == ["PostgreSQL", "Valkey"]
    with psycopg.connect(str(doc["database_url"]).replace("+psycopg", "")) as conn:
        assert conn.execute("SELECT count(*) FROM projects").fetchone() == (
            6,
        )  # the demo: a project of each kind, a routed one and the closed loop's


def test_database_commands_find_the_embedded_postgres(up: Up, tmp_path: Path) -> None:
    r = tandem(
        up.data_dir, "users", "create", "--email", "cli@example.org", "--password", "long enough pw"
    )
    assert r.returncode == 0 and "created user" in r.stdout, r.stderr
    r = tandem(up.data_dir, "db", "upgrade")
    assert r.returncode == 0 and "latest revision" in r.stdout, r.stderr
    r = tandem(up.data_dir, "demo")
    assert r.returncode == 0 and "admin@demo.tandem" in r.stdout, r.stderr

    out = tmp_path / "prefs.jsonl"
    manifest = tmp_path / "manifest.json"
    r = tandem(
        up.data_dir, "export", "1", "--schema", "raw", "-o", str(out), "--manifest", str(manifest)
    )
    assert r.returncode == 0, r.stderr
    assert out.exists() and json.loads(manifest.read_text())["schema"] == "raw"
    # Knowing that project 999 is missing takes the database: the command reached it.
    assert_one_line_error(tandem(up.data_dir, "import-raw", "999", str(out)), "project 999")


def test_failed_export_leaves_no_file_and_keeps_an_older_one(up: Up, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.jsonl"
    assert_one_line_error(tandem(up.data_dir, "export", "999", "-o", str(fresh)), "999")
    older = tmp_path / "older.jsonl"
    older.write_text("kept\n")
    assert_one_line_error(tandem(up.data_dir, "export", "999", "-o", str(older)), "999")
    assert older.read_text() == "kept\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["older.jsonl"]  # no .part left


def test_serve_and_worker_find_both_embedded_servers(up: Up) -> None:
    port = _free_port()
    serve = subprocess.Popen(
        [TANDEM, "serve", "--port", str(port)],
        env=_env(up.data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.HTTPError:
                assert serve.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["checks"] == {"database": "ok", "broker": "ok"}
    finally:
        serve.terminate()
        serve.wait(timeout=30)

    valkey_port = next(s["port"] for s in up.runtime()["servers"] if s["name"] == "Valkey")  # type: ignore[attr-defined]
    worker = subprocess.Popen(
        [TANDEM, "worker", "--concurrency", "1"],
        env=_env(up.data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert worker.stdout is not None
        deadline = time.monotonic() + 90
        seen = ""
        while f"Connected to redis://:**@127.0.0.1:{valkey_port}/0" not in seen:
            line = worker.stdout.readline()
            assert line and time.monotonic() < deadline, seen
            seen += line
        celery = [
            int(pid)
            for pid in Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
        ]
        assert celery
    finally:
        worker.terminate()  # `tandem worker` passes SIGTERM on to Celery and waits for it
        worker.wait(timeout=90)
    assert worker.returncode is not None
    for pid in celery:  # nothing is left running
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )


def test_after_tandem_up_stops_commands_say_so_in_one_line(up: Up) -> None:
    # Last in this module: it stops the shared `tandem up`.
    saved = up.runtime_file.read_text()
    up.stop()
    assert up.process.returncode == 0
    assert not up.runtime_file.exists()
    r = tandem(
        up.data_dir,
        "users",
        "create",
        "--email",
        "late@example.org",
        "--password",
        "long enough pw",
    )
    assert_one_line_error(r, "no database", "TANDEM_DATABASE_URL", str(up.data_dir))
    # A runtime file left behind by a killed `tandem up` is not believed.
    up.runtime_file.write_text(saved)
    r = tandem(up.data_dir, "export", "1", "-o", "-")
    assert_one_line_error(r, "no database", "has stopped")


def test_worker_without_a_broker_refuses_to_start(tmp_path: Path) -> None:
    r = tandem(tmp_path, "worker", TANDEM_DATABASE_URL="postgresql://postgres@127.0.0.1:5432/x")
    assert_one_line_error(r, "no broker", "TANDEM_REDIS_URL")
    r = tandem(tmp_path, "worker")
    assert_one_line_error(r, "no database and no broker")


def test_an_unreachable_database_is_one_line_and_no_file(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{_free_port()}/tandem"
    for args in (
        ("db", "upgrade"),
        ("demo",),
        ("users", "create", "--email", "x@example.org", "--password", "long enough pw"),
        ("export", "1", "-o", str(tmp_path / "out.jsonl")),
    ):
        r = tandem(tmp_path / "var", *args, TANDEM_DATABASE_URL=url)
        assert_one_line_error(r, "cannot connect to the database", "Connection refused")
    assert not (tmp_path / "out.jsonl").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name != "var"] == []  # no .part either
