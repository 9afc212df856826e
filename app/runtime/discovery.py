"""The runtime file: how a CLI command finds the servers that a running `tandem up` uses.

`tandem up` writes ``data_dir/runtime.json`` (mode 0600: it holds the servers' passwords) once
its servers run, and removes it when it stops. A command started with ``TANDEM_DATABASE_URL``
or ``TANDEM_REDIS_URL`` unset reads it, checks that it is live (the `tandem up` process and each
embedded server still run, under the same process start time, name and data folder, and
accept connections), and takes the missing URLs from it. A file left by a killed `tandem up`
is never believed.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.runtime.files import write_private
from app.runtime.ports import HOST, accepts
from app.runtime.processes import EmbeddedServer, process_matches

RUNTIME_FILE = "runtime.json"
VERSION = 1


class RuntimeFileError(RuntimeError):
    """The runtime file exists but cannot be read (another user's, or damaged)."""


@dataclass(frozen=True)
class ServerEntry:
    """An embedded server as recorded in the runtime file."""

    name: str
    pid: int
    port: int
    executable: str
    data_path: str


@dataclass(frozen=True)
class Runtime:
    """What one `tandem up` runs: its process, the URLs it gave web and worker, its servers."""

    pid: int
    started: str | None
    database_url: str
    redis_url: str
    web_url: str
    servers: list[ServerEntry] = field(default_factory=list)


def runtime_path(data_dir: Path) -> Path:
    return data_dir.expanduser().resolve() / RUNTIME_FILE


def process_start(pid: int) -> str | None:
    """The kernel's start time of pid (Linux), telling a process from a later one with its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) may hold spaces, so count from its closing paren.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def write_runtime(
    data_dir: Path,
    *,
    database_url: str,
    redis_url: str,
    web_url: str,
    servers: list[EmbeddedServer],
) -> Path:
    """Record this process's servers and URLs for CLI commands on the same data dir."""
    pid = os.getpid()
    runtime = Runtime(
        pid=pid,
        started=process_start(pid),
        database_url=database_url,
        redis_url=redis_url,
        web_url=web_url,
        servers=[
            ServerEntry(s.name, s.pid, s.port, s.executable, str(s.data_path)) for s in servers
        ],
    )
    document = {"version": VERSION, "written_at": datetime.now(UTC).isoformat(), **asdict(runtime)}
    path = runtime_path(data_dir)
    write_private(path, json.dumps(document, indent=2) + "\n")
    return path


def remove_runtime(data_dir: Path) -> None:
    """Delete the runtime file if this process wrote it (another `tandem up` may own it now)."""
    path = runtime_path(data_dir)
    with contextlib.suppress(OSError, ValueError, RuntimeFileError):
        found = _read(path)
        if found is not None and found.pid == os.getpid():
            path.unlink(missing_ok=True)


def _read(path: Path) -> Runtime | None:
    try:
        raw = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RuntimeFileError(f"cannot read {path}: {exc.strerror}") from None
    try:
        doc: dict[str, Any] = json.loads(raw)
        if doc.get("version") != VERSION:
            return None
        return Runtime(
            pid=int(doc["pid"]),
            started=doc.get("started"),
            database_url=str(doc["database_url"]),
            redis_url=str(doc["redis_url"]),
            web_url=str(doc.get("web_url", "")),
            servers=[ServerEntry(**entry) for entry in doc.get("servers", [])],
        )
    except (ValueError, KeyError, TypeError):
        # A damaged file (a crash mid-write cannot cause one: writes are atomic).
        return None


def _pid_alive(pid: int, started: str | None) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    now = process_start(pid)
    return started is None or now is None or now == started


def is_live(runtime: Runtime) -> bool:
    """True while the `tandem up` that wrote it and every embedded server it lists run."""
    if not _pid_alive(runtime.pid, runtime.started):
        return False
    for server in runtime.servers:
        if process_matches(server.pid, server.executable, Path(server.data_path)) is False:
            return False
        if not accepts(HOST, server.port):
            return False
    return True


@dataclass(frozen=True)
class Found:
    """The outcome of looking: the live runtime, or why there is none (for error messages)."""

    runtime: Runtime | None
    path: Path
    stale: bool = False


def find_runtime(data_dir: Path) -> Found:
    """The live runtime of data_dir, if a `tandem up` runs there."""
    path = runtime_path(data_dir)
    runtime = _read(path)
    if runtime is None:
        return Found(None, path)
    if not is_live(runtime):
        return Found(None, path, stale=True)
    return Found(runtime, path)
