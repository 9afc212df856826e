"""Server processes we start and stop: the handle, escalating shutdown, data-dir locks, and
servers left running by a crashed run."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1

# (signal, seconds to wait for the process to exit before the next one)
StopSignals = Sequence[tuple[signal.Signals, float]]


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started."""


class DataDirLock:
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
        lock: DataDirLock,
        stop_signals: StopSignals,
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

    @property
    def executable(self) -> str:
        """The process name the kernel shows (/proc/<pid>/comm keeps 15 characters)."""
        args = self._process.args
        first = args[0] if isinstance(args, list | tuple) else args
        return Path(str(first)).name[:15]

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


def terminate(
    process: subprocess.Popen[bytes],
    signals: StopSignals,
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


def process_matches(pid: int, name: str, cwd: Path) -> bool | None:
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


def read_pid(path: Path) -> int | None:
    """The pid on the first line of a pid file, or None."""
    try:
        first = path.read_text().split("\n", 1)[0].strip()
    except FileNotFoundError:
        return None
    return int(first) if first.isdigit() else None


def clear_leftover(pid_file: Path, name: str, cwd: Path, signals: StopSignals) -> None:
    """Stop a server left running on this data by a crashed run, and drop stale pid files."""
    pid = read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return
    match = process_matches(pid, name, cwd)
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


def _stop_pid(pid: int, name: str, cwd: Path, signals: StopSignals) -> None:
    """Signal a process we did not start, escalating, until it is gone."""
    for sig, grace in signals:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and process_matches(pid, name, cwd):
            time.sleep(0.1)
        if not process_matches(pid, name, cwd):
            return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
