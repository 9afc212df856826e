"""How a `tandem` command fails: one line on stderr naming the problem, never a traceback.

`one_line_errors` wraps each command; `connect_servers` fills the server URLs a command needs
from the environment or from a `tandem up` running on the same data dir, or stops it with the
line that says how to provide them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

P = ParamSpec("P")
R = TypeVar("R")

# Set to 1 to get the traceback of an unexpected error (for bug reports).
DEBUG_VARIABLE = "TANDEM_DEBUG"


class MissingServer(Exception):
    """A command needs a server that is neither configured nor run by `tandem up`."""


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def describe(exc: BaseException) -> tuple[str, int]:
    """The sentence and exit code for an exception raised by a command."""
    from pydantic import ValidationError
    from sqlalchemy.exc import DBAPIError

    from app.config import InsecureSecretKey
    from app.errors import DomainError

    if isinstance(exc, MissingServer):
        return str(exc), 1
    if isinstance(exc, DomainError):
        return exc.message, 1
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "input"
        return f"{where}: {first['msg']}", 2
    if isinstance(exc, DBAPIError):
        return _database_error(exc), 1
    redis_error = _redis_error(exc)
    if redis_error is not None:
        return redis_error, 1
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return f"cannot access{where}: {exc.strerror or exc}", 1
    if isinstance(exc, InsecureSecretKey):
        return str(exc), 1
    hint = f"set {DEBUG_VARIABLE}=1 for the traceback"
    return f"unexpected {type(exc).__name__}: {_first_line(exc)} ({hint})", 1


def _database_error(exc: BaseException) -> str:
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from app.config import get_settings

    where = _safe_url(get_settings().database_url or "")
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if isinstance(exc, ProgrammingError) and sqlstate == "42P01":
        return f"the database {where} has no Tandem tables yet: run `tandem db upgrade`"
    if isinstance(exc, OperationalError) and sqlstate is None:
        return f"cannot connect to the database {where}: {_first_line(exc)}"
    return f"the database {where} refused the command: {_first_line(exc)}"


def _redis_error(exc: BaseException) -> str | None:
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
    except ImportError:  # pragma: no cover - redis is a dependency
        return None
    if not isinstance(exc, RedisConnectionError):
        return None
    from app.config import get_settings

    return f"cannot connect to the broker {_safe_url(get_settings().redis_url or '')}: {exc}"


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    if not url:
        return "(not configured)"
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def one_line_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn any failure of command into `error: <sentence>` and an exit code."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except Exception as exc:
            if os.environ.get(DEBUG_VARIABLE) == "1":
                raise
            message, code = describe(exc)
            raise fail(message, code) from None

    return run


def connect_servers(*, database: bool = True, broker: bool = False) -> None:
    """Make sure the URLs the command needs are set, taking them from a running `tandem up`.

    Fills TANDEM_DATABASE_URL / TANDEM_REDIS_URL in os.environ (so child processes inherit
    them) when unset and a live runtime file gives them; raises MissingServer otherwise.
    """
    from app.config import get_settings
    from app.runtime.discovery import RuntimeFileError, find_runtime

    settings = get_settings()
    wanted = {
        "TANDEM_DATABASE_URL": ("database", database and not settings.database_url),
        "TANDEM_REDIS_URL": ("broker", broker and not settings.redis_url),
    }
    missing = [(var, what) for var, (what, needed) in wanted.items() if needed]
    if not missing:
        return
    try:
        found = find_runtime(settings.data_dir)
    except RuntimeFileError as exc:
        raise MissingServer(str(exc)) from None
    if found.runtime is not None:
        urls = {
            "TANDEM_DATABASE_URL": found.runtime.database_url,
            "TANDEM_REDIS_URL": found.runtime.redis_url,
        }
        for var, _ in missing:
            os.environ[var] = urls[var]
        get_settings.cache_clear()
        return
    data_dir = settings.data_dir.expanduser().resolve()
    what = " and no ".join(w for _, w in missing)
    names = " and ".join(v for v, _ in missing)
    verb = "is" if len(missing) == 1 else "are"
    stale = f" ({found.path.name} there is from a `tandem up` that has stopped)"
    raise MissingServer(
        f"no {what}: {names} {verb} not set and no `tandem up` is running on the data dir "
        f"{data_dir}{stale if found.stale else ''}; start `tandem up` there (or point "
        f"TANDEM_DATA_DIR at its data dir), or set {names}"
    )
