"""Files the embedded servers keep under the data dir: generated secrets and rotated logs."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import IO

LOG_ROTATE_BYTES = 10 * 1024 * 1024


def prepare_data_dir(data_dir: Path) -> Path:
    """The data dir as an absolute path, created when missing."""
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir


def read_or_create_secret(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    return write_secret(path)


def write_secret(path: Path) -> str:
    """A new random secret written durably to path (mode 0600, replaced atomically)."""
    value = secrets.token_hex(24)
    write_private(path, value + "\n")
    return value


def write_private(path: Path, text: str) -> None:
    """Write text to path, readable by its owner only, so a reader never sees half of it."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def open_log(path: Path) -> IO[bytes]:
    """Open a server log for appending, moving it to `*.1` first once past LOG_ROTATE_BYTES."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size > LOG_ROTATE_BYTES:
            path.replace(path.with_name(path.name + ".1"))
    return path.open("ab")


def log_tail(path: Path, offset: int, lines: int = 30) -> str:
    """The last lines a server wrote to its log since offset (for an error message)."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
