"""Running PostgreSQL as root: the `embedded_postgres` system account and the minimal
permission changes (enter, read) it needs to reach the binaries and the data dir."""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from app.runtime.processes import EmbeddedServerError

logger = logging.getLogger(__name__)

POSTGRES_SYSTEM_USER = "embedded_postgres"


@dataclass(frozen=True)
class Account:
    """The system account PostgreSQL runs as when we are root."""

    uid: int
    gid: int


def postgres_account() -> Account | None:
    """None unless we are root; then the system user, created when missing."""
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
    return Account(entry.pw_uid, entry.pw_gid)


def _can_traverse(st: os.stat_result, account: Account) -> bool:
    if st.st_uid == account.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == account.gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def grant_traverse(path: Path, account: Account) -> list[Path]:
    """chmod o+x on each parent of path that the account could not enter."""
    changed = []
    for parent in path.parents:
        st = parent.stat()
        if not _can_traverse(st, account):
            parent.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXOTH)
            changed.append(parent)
    return changed


def grant_read(root: Path) -> list[Path]:
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


def log_changes(changed: list[Path]) -> None:
    for path in changed:
        mode = stat.S_IMODE(path.stat().st_mode)
        logger.warning("chmod %o %s so %s can reach it", mode, path, POSTGRES_SYSTEM_USER)
