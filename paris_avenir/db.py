"""Database engine, declarative base and the request-scoped session.

One request = one transaction: the session dependency commits when the handler succeeds and
rolls back otherwise; service functions only flush.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from sqlalchemy import DateTime, Engine, MetaData, create_engine, event, func
from sqlalchemy import Enum as SAEnum
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import QueuePool
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware instant, stored in UTC on every backend.

    SQLite has no time zone type: without this, values would come back naive and
    comparisons with aware datetimes would fail or, worse, silently shift by an hour.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: every instant must carry its time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class RecordMixin:
    """UUID identity and creation/modification instants, shared by every table."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.current_timestamp()
    )
    modified_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow, server_default=func.current_timestamp()
    )


SQLITE_BUSY_TIMEOUT_MS = 20_000


def _configure_sqlite(engine: Engine) -> None:
    """Give SQLite real transactions, foreign keys and concurrent readers.

    pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; SQLAlchemy's
    documented recipe hands transaction control back to SQLAlchemy.

    Every transaction begins IMMEDIATE: it takes the write lock at once, so a second writer
    waits on the busy timeout for its turn. A deferred transaction that reads, then writes
    after another one has committed cannot wait (its snapshot is stale): it fails at once
    with "database is locked", the failure parallel sign-ins would meet. Requests and
    workers cannot tell in advance whether they will write (a page view writes its audit
    entry), so all of them take their turn. Work known to only read asks for a deferred
    transaction with the connection option `sqlite_deferred=True`: with WAL it never waits,
    and reads the last committed state.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        # Writers queue for the lock: 30 staff sign-ins at once (each verifies an argon2
        # hash while it holds the lock) can make the last wait several seconds on a busy
        # machine, and a slow answer beats a 500.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        # In WAL mode, NORMAL syncs at checkpoints instead of every commit: a power cut can
        # lose the last commits, never corrupt the file (SQLite's documentation). The
        # embedded default serves a pilot; production runs on PostgreSQL.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        deferred = connection.get_execution_options().get("sqlite_deferred", False)
        connection.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")


def normalise_database_url(url: str) -> str:
    """Accept the usual postgresql:// spelling and use the psycopg 3 driver for it."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_database_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"check_same_thread": False})
        # Bound values (phone numbers, emails) never reach error messages or logs.
        kwargs.setdefault("hide_parameters", True)
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("hide_parameters", True)
    return create_engine(url, **kwargs)


def connection_capacity(engine: Engine) -> int | None:
    """How many connections the engine's pool lends at once (None: no fixed bound)."""
    pool = engine.pool
    if isinstance(pool, QueuePool):
        # QueuePool keeps its overflow bound in an attribute without a public accessor.
        return pool.size() + max(0, int(getattr(pool, "_max_overflow", 0)))
    return None


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


class CommittedHTTPException(HTTPException):
    """An error answer whose flushed changes must still be committed: the audit entry of a
    refused access outlives the 404 it answers."""


def transaction_scope(session: Session) -> Iterator[Session]:
    """Commit on success, roll back on error, except for a CommittedHTTPException."""
    try:
        yield session
    except CommittedHTTPException:
        session.commit()
        raise
    except BaseException:
        session.rollback()
        raise
    else:
        session.commit()


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request (see transaction_scope)."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    with factory() as session:
        yield from transaction_scope(session)


# scope="function": the commit happens before the response leaves, so a 303 is never sent
# for a change that then fails to commit.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def str_enum(enum_class: type[enum.StrEnum], name: str) -> SAEnum:
    """A portable enum column: VARCHAR plus a named CHECK constraint on both backends.

    Native PostgreSQL enums make every new value a migration of its own; a CHECK is
    simpler to evolve and behaves the same on SQLite.
    """
    return SAEnum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )
