"""Engine, session factory and the declarative Base with a constraint naming convention."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any, Generic, TypeVar

from sqlalchemy import CheckConstraint, DateTime, Dialect, Engine, MetaData, create_engine, func
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import Text, TypeDecorator

from app.config import get_settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


E = TypeVar("E", bound=StrEnum)


def enum_check(column: str, enum: type[StrEnum], name: str | None = None) -> CheckConstraint:
    """CHECK (column IN (...every value of the enum...)), named `name` (default: the column).

    Adding a value to the enum changes the constraint the models declare: ship a migration that
    replaces it (tests/test_db.py compares the database with the models).
    """
    return CheckConstraint(sql_in(column, enum), name=name or column, info={"enum": enum})


def sql_in(column: str, values: Iterable[StrEnum]) -> str:
    """`column IN ('a', 'b')` from enum members (for CHECKs and partial-index predicates)."""
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class EnumText(TypeDecorator[E], Generic[E]):
    """A text column that holds a StrEnum's values: members go in, members come out."""

    impl = Text
    cache_ok = True

    def __init__(self, enum: type[E]) -> None:
        super().__init__()
        self.enum = enum

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        # A plain string is checked here, before PostgreSQL's CHECK would refuse it.
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)


class CreatedAt:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


@lru_cache
def get_engine() -> Engine:
    s = get_settings()
    return create_engine(
        s.require_database_url(),
        pool_size=s.db_pool_size,
        max_overflow=s.db_max_overflow,
        # No pre-ping (a round trip per request); a dropped connection invalidates the pool
        # and fails one request instead, and connections are renewed every half hour.
        pool_recycle=1800,
    )


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    session = get_sessionmaker()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


T = TypeVar("T")

# SQLSTATEs that mean "the same transaction may succeed if run again".
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


def request_session() -> Iterator[Session]:
    """A session per request (FastAPI dependency): committed after the route returns."""
    with session_scope() as session:
        yield session


def retrying(session: Session, fn: Callable[[], T], attempts: int = 5) -> T:
    """Run fn in the caller's session; on a deadlock or serialization failure roll back and rerun.

    For request handlers whose whole transaction is fn (nothing before it needs keeping).
    """
    for attempt in range(attempts):
        try:
            result = fn()
            session.flush()
            return result
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) not in RETRYABLE_SQLSTATES:
                raise
            if attempt == attempts - 1:
                raise
            session.rollback()
    raise AssertionError("unreachable")
