"""`tandem up`: embedded servers unless URLs are set, migrations, demo data, then web and worker."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import NoReturn

from app.config import InsecureSecretKey, get_settings
from app.runtime.discovery import remove_runtime, write_runtime
from app.runtime.embedded import (
    EmbeddedServer,
    EmbeddedServerError,
    die_with_parent,
    port_is_free,
    start_postgres,
    start_valkey,
    terminate,
)

WORKER_QUEUES = "default,gpu,cpu-train"
WORKER_CONCURRENCY = 2
# uvicorn finishes in-flight requests; Celery's warm shutdown lets running tasks end first.
_WEB_STOP = ((signal.SIGTERM, 15.0),)
_WORKER_STOP = ((signal.SIGTERM, 60.0), (signal.SIGQUIT, 10.0))
_STEP_STOP = ((signal.SIGTERM, 10.0),)
_POLL_SECONDS = 0.5


class _Stop(BaseException):
    """Raised in the main thread by the first SIGINT or SIGTERM."""


class _Failed(Exception):
    """Startup failed or a process died: stop everything and exit with code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class _Signals:
    """SIGINT/SIGTERM: the first stops `tandem up` (raising _Stop where allowed), later ones
    cut the shutdown's grace periods short."""

    def __init__(self) -> None:
        self.received = False
        self.hurry = False
        self._raising = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received:
            self.hurry = True
            return
        self.received = True
        if self._raising:
            self._raising = False
            raise _Stop

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """Inside the block a signal raises _Stop; outside, it is only recorded."""
        if self.received:
            raise _Stop
        self._raising = True
        try:
            yield
        finally:
            self._raising = False

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold _Stop back until the block ends: between Popen and recording the child it
        would orphan it. (Not a signal mask: children would inherit it and ignore SIGTERM.)"""
        raising, self._raising = self._raising, False
        try:
            yield
        finally:
            self._raising = raising
        if raising and self.received:
            self._raising = False
            raise _Stop


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    stop_signals: Sequence[tuple[signal.Signals, float]]


def _say(message: str) -> None:
    print(f"tandem up: {message}", file=sys.stderr, flush=True)


def _tandem() -> list[str]:
    # The console script next to this interpreter, else the same entry point through -c.
    script = Path(sys.executable).with_name("tandem")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from app.cli import main; main()"]


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _connect_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _banner(url: str, servers: list[EmbeddedServer], data_dir: Path, with_worker: bool) -> None:
    lines = [f"Tandem is running at {url}"]
    names = {server.name: server for server in servers}
    for label, name, variable in (
        ("database", "PostgreSQL", "TANDEM_DATABASE_URL"),
        ("broker", "Valkey", "TANDEM_REDIS_URL"),
    ):
        server = names.get(name)
        where = (
            f"embedded {name} on 127.0.0.1:{server.port}, data in {_display(server.data_path)}"
            if server
            else f"external, from {variable}"
        )
        lines.append(f"  {label + ':':<10}{where}")
    worker = f"queues {WORKER_QUEUES} and the sweeper" if with_worker else "not started"
    lines.append(f"  {'worker:':<10}{worker}")
    if servers:
        lines.append(f"  {'logs:':<10}{_display(data_dir / 'log')}")
    lines.append("Press Ctrl-C to stop.")
    print("\n".join(lines), flush=True)


def _supervise(
    children: list[_Child],
    servers: list[EmbeddedServer],
    host: str,
    port: int,
    on_ready: Callable[[], None],
) -> NoReturn:
    """Watch until a child or server exits (_Failed) or a signal arrives (_Stop)."""
    announced = False
    while True:
        for child in children:
            code = child.process.poll()
            if code is not None:
                how = f"exit code {code}" if code >= 0 else signal.Signals(-code).name
                raise _Failed(f"{child.name} stopped unexpectedly ({how})", code if code > 0 else 1)
        for server in servers:
            if not server.alive():
                raise _Failed(f"embedded {server.name} exited; see {_display(server.log_path)}")
        if not announced and _accepts(_connect_host(host), port):
            on_ready()
            announced = True
        time.sleep(_POLL_SECONDS)


class _Launch:
    """The processes one `tandem up` started, so that whatever happens they get stopped."""

    def __init__(self) -> None:
        self.signals = _Signals()
        self.servers: list[EmbeddedServer] = []
        self.children: list[_Child] = []
        self.runtime_dir: Path | None = None  # where the runtime file was written
        self.env = dict(os.environ)
        self.env.setdefault("PYTHONUNBUFFERED", "1")

    def _popen(self, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            # Own session: Ctrl-C reaches only us, so we stop children in order, and can kill
            # a hung child's whole group (Celery's pool included).
            start_new_session=True,
            # Should we die by SIGKILL, children still get SIGTERM (Linux).
            preexec_fn=die_with_parent(signal.SIGTERM),
        )

    def step(self, what: str, argv: Sequence[str]) -> None:
        """Run a command to completion; raise _Failed if it fails."""
        _say(what)
        with self.signals.deferred():
            process = self._popen(argv)
        try:
            code = process.wait()
        except BaseException:
            terminate(process, _STEP_STOP)
            raise
        if code != 0:
            raise _Failed(f"{what} failed (exit code {code})", code)

    def spawn(
        self, name: str, argv: Sequence[str], stop: Sequence[tuple[signal.Signals, float]]
    ) -> None:
        with self.signals.deferred():
            self.children.append(_Child(name, self._popen(argv), stop))

    def stop_all(self) -> None:
        self.signals.received = True  # from now on Ctrl-C hurries the shutdown
        if self.runtime_dir is not None:
            remove_runtime(self.runtime_dir)  # first: CLI commands must stop using the servers
        running = [child for child in self.children if child.process.poll() is None]
        if running or self.servers:
            _say("stopping (Ctrl-C again to hurry)")

        def hurry() -> bool:
            return self.signals.hurry

        # Signal every child first so web and worker shut down side by side.
        for child in running:
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(child.stop_signals[0][0])
        for child in running:
            terminate(child.process, child.stop_signals, hurry, first_sent=True)
        # Servers last, newest first: the children needed them to shut down cleanly.
        for server in reversed(self.servers):
            server.stop(hurry)


def up(host: str, port: int, with_worker: bool = True) -> int:
    """Run Tandem in the foreground until Ctrl-C / SIGTERM; return the exit code."""
    launch = _Launch()
    with launch.signals.installed():
        try:
            with launch.signals.interruptible():
                _up(launch, host, port, with_worker)
        except _Stop:
            return 0
        except (_Failed, EmbeddedServerError, InsecureSecretKey) as exc:
            _say(str(exc))
            return exc.code if isinstance(exc, _Failed) else 1
        finally:
            launch.stop_all()


def _up(launch: _Launch, host: str, port: int, with_worker: bool) -> NoReturn:
    settings = get_settings()
    data_dir = settings.data_dir.expanduser().resolve()
    if not port_is_free(port, host):
        raise _Failed(f"{host}:{port} is already in use; pick another port with --port")
    # Created once here: web and worker starting together would race to create it.
    settings.resolved_secret_key()

    env = launch.env
    env["TANDEM_DATA_DIR"] = str(data_dir)
    if not settings.database_url:
        _say(f"starting embedded PostgreSQL in {_display(data_dir / 'postgres')}")
        launch.servers.append(start_postgres(data_dir))
        env["TANDEM_DATABASE_URL"] = launch.servers[-1].url
    if not settings.redis_url:
        _say(f"starting embedded Valkey in {_display(data_dir / 'valkey')}")
        launch.servers.append(start_valkey(data_dir))
        env["TANDEM_REDIS_URL"] = launch.servers[-1].url

    shown = _connect_host(host)
    url = f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"
    # CLI commands run in another shell on this data dir find the servers through this file.
    launch.runtime_dir = data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    write_runtime(
        data_dir,
        database_url=env["TANDEM_DATABASE_URL"],
        redis_url=env["TANDEM_REDIS_URL"],
        web_url=url,
        servers=launch.servers,
    )

    tandem = _tandem()
    launch.step("applying migrations", [*tandem, "db", "upgrade"])
    launch.step("loading demo data", [*tandem, "demo"])

    # Through `tandem serve`, so that proxy trust (TANDEM_TRUSTED_PROXIES) is decided in one place.
    launch.spawn("web server", [*tandem, "serve", "--host", host, "--port", str(port)], _WEB_STOP)
    if with_worker:
        worker = [sys.executable, "-m", "celery", "-A", "worker.celery_app:celery_app", "worker"]
        # The worker runs the sweeper loop itself (recovery of dead jobs): no beat needed.
        worker += ["-Q", WORKER_QUEUES, "--concurrency", str(WORKER_CONCURRENCY)]
        launch.spawn("worker", [*worker, "--loglevel", "INFO"], _WORKER_STOP)

    servers = launch.servers
    _supervise(
        launch.children, servers, host, port, lambda: _banner(url, servers, data_dir, with_worker)
    )
