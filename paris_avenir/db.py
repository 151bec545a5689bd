"""Database engine, declarative base and the request-scoped session.

One request = one transaction: the session dependency commits when the handler succeeds and
rolls back otherwise; service functions only flush.
"""

from __future__ import annotations

import enum
import functools
import json
import threading
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import anyio
import anyio.to_thread
from fastapi import Depends, HTTPException, Request
from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    cast,
    create_engine,
    event,
    func,
    literal_column,
    select,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ColumnClause, FunctionElement
from sqlalchemy.sql.functions import Function
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


class WriterQueue:
    """The write lock of one SQLite database in this process, handed over first come, first
    served: a transaction that writes waits for the one before it, not for luck.

    SQLite's own busy handler polls, sleeping up to 100 ms between tries: a waiting sign-in
    misses the moment a batch of the outreach cycle commits, and the cycle, which begins
    its next batch at once, takes the lock again, batch after batch. Here the holder hands
    the lock to the longest waiter when it commits. Other processes (the CLI) still meet the
    busy timeout."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: deque[threading.Lock] = deque()

    def acquire(self, timeout: float) -> bool:
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            waiter = threading.Lock()
            waiter.acquire()
            self._waiters.append(waiter)
        if waiter.acquire(timeout=timeout):
            return True
        with self._mutex:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
                return False
        return True  # handed over just as the wait ran out

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().release()  # still held: it changes hands
            else:
                self._held = False


# kit.dates.PARIS (kit builds on db: the zone is named again here, not imported).
_PARIS = ZoneInfo("Europe/Paris")


@functools.lru_cache(maxsize=65_536)
def _paris_date_of_hour(utc_hour: str) -> str:
    instant = datetime.strptime(utc_hour, "%Y-%m-%d %H").replace(tzinfo=UTC)
    return instant.astimezone(_PARIS).date().isoformat()


def _sqlite_paris_date(stored: str | None) -> str | None:
    """paris_date() for SQLite, which stores UTCDateTime as 'YYYY-MM-DD HH:MM:SS.ffffff':
    Paris changes its offset on the hour, so the UTC hour decides the day (and is cached)."""
    return None if stored is None else _paris_date_of_hour(stored[:13])


def _configure_sqlite(engine: Engine) -> None:
    """Give SQLite real transactions, foreign keys and concurrent readers.

    pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; SQLAlchemy's
    documented recipe hands transaction control back to SQLAlchemy.

    Every transaction begins IMMEDIATE: it takes the write lock at once, so a second writer
    waits its turn (WriterQueue in this process, the busy timeout across processes). A
    deferred transaction that reads, then writes after another one has committed cannot
    wait (its snapshot is stale): it fails at once with "database is locked", the failure
    parallel sign-ins would meet. Requests and workers cannot tell in advance whether they
    will write (a page view writes its audit entry), so all of them take their turn. Work
    known to only read asks for a deferred transaction with the connection option
    `sqlite_deferred=True`: with WAL it never waits, and reads the last committed state.
    """
    writers = WriterQueue()
    holders: set[int] = set()  # the DBAPI connections whose transaction holds the lock
    dialect = engine.dialect

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.create_function("paris_date", 1, _sqlite_paris_date, deterministic=True)
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
        if connection.get_execution_options().get("sqlite_deferred", False):
            connection.exec_driver_sql("BEGIN")
            return
        if not writers.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            raise OperationalError("BEGIN IMMEDIATE", None, Exception("database is locked"))
        holders.add(id(connection.connection.dbapi_connection))
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _release_writer(connection.connection)
            raise

    def _release_writer(proxied: Any) -> None:
        # A pooled connection, or the bare DBAPI one SQLAlchemy passes on first connect.
        raw = getattr(proxied, "dbapi_connection", proxied)
        if id(raw) in holders:
            holders.discard(id(raw))
            writers.release()

    def _then_release(end: Callable[[Any], None]) -> Callable[[Any], None]:
        # The lock goes with the transaction's end (commit, rollback, or the pool's reset
        # of a connection given back mid-transaction); SQLAlchemy's commit and rollback
        # events fire before it, so the dialect's own calls are wrapped.
        def ended(proxied: Any) -> None:
            try:
                end(proxied)
            finally:
                _release_writer(proxied)

        return ended

    # An attribute of this engine's dialect instance only; no class is changed.
    for name in ("do_commit", "do_rollback"):
        setattr(dialect, name, _then_release(getattr(dialect, name)))


class paris_date(FunctionElement[str]):
    """The day in Paris ('YYYY-MM-DD') of a stored UTC instant, on both backends."""

    type = String()
    inherit_cache = True


@compiles(paris_date, "postgresql")
def _paris_date_postgresql(element: paris_date, compiler: SQLCompiler, **kw: Any) -> str:
    instant = compiler.process(element.clauses, **kw)
    return f"to_char(timezone('Europe/Paris', {instant}), 'YYYY-MM-DD')"


@compiles(paris_date, "sqlite")
def _paris_date_sqlite(element: paris_date, compiler: SQLCompiler, **kw: Any) -> str:
    return f"paris_date({compiler.process(element.clauses, **kw)})"


class whole_days(FunctionElement[int]):
    """Whole days from the second instant to the first, as timedelta.days counts them
    (floored, to the microsecond), on both backends."""

    type = Integer()
    inherit_cache = True


@compiles(whole_days, "postgresql")
def _whole_days_postgresql(element: whole_days, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(floor(extract(epoch FROM ({later}) - ({earlier})) / 86400) AS INTEGER)"


@compiles(whole_days, "sqlite")
def _whole_days_sqlite(element: whole_days, compiler: SQLCompiler, **kw: Any) -> str:
    # Integer microseconds: seconds from strftime, the stored fraction from the text.
    later, earlier = (compiler.process(clause, **kw) for clause in element.clauses)

    def micros(value: str) -> str:
        return (
            f"(CAST(strftime('%s', {value}) AS INTEGER) * 1000000 "
            f"+ CAST(substr({value}, 21, 6) AS INTEGER))"
        )

    difference = f"({micros(later)} - {micros(earlier)})"
    # SQLite's integer division truncates: floor for a negative difference too.
    return (
        f"(CASE WHEN {difference} >= 0 THEN {difference} / 86400000000 "
        f"ELSE -((-{difference} + 86399999999) / 86400000000) END)"
    )


def insert_ignoring_conflicts(session: Session, entity: Any) -> Any:
    """INSERT … ON CONFLICT DO NOTHING for the session's backend: add RETURNING to learn
    which rows went in (a unique key already taken leaves its row out)."""
    dialect = session.get_bind().dialect.name
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(entity)
    return statement.on_conflict_do_nothing()


def insert_many_ignoring_conflicts(
    session: Session, entity: Any, rows: Sequence[Mapping[str, Any]], returning: str
) -> list[Any]:
    """insert_ignoring_conflicts() of many rows (each with the same keys), returning the
    column `returning` of the rows that went in. On PostgreSQL one short statement and one
    parameter, the rows as JSON (INSERT … SELECT FROM json_populate_recordset(…)): its text
    is the same whatever the number of rows, so psycopg and the server parse it once, where
    a multi-row VALUES of thousands of placeholders is parsed again for every batch; and
    json.dumps writes 500 rows in a few milliseconds, where psycopg's text dump of one array
    per column (unnest, before) ran two regular expressions on every value, ~20 % of a
    first cycle. SQLite: a multi-row INSERT.
    Python-side column defaults (ids, instants) are filled in here for columns the rows
    leave out, as an INSERT of the rows would."""
    if not rows:
        return []
    table = getattr(entity, "__table__", entity)
    if session.get_bind().dialect.name != "postgresql":
        statement = insert_ignoring_conflicts(session, table).returning(table.c[returning])
        return list(session.scalars(statement, rows))
    names = list(rows[0])
    filled = [dict(row) for row in rows]
    for column in table.c:
        default = column.default
        if (
            column.name in names
            or default is None
            or not (default.is_scalar or default.is_callable)
        ):
            continue
        names.append(column.name)
        for row in filled:
            row[column.name] = default.arg if default.is_scalar else default.arg(None)
    dialect = session.get_bind().dialect
    for name in names:
        process = _json_bind_processor(table.c[name], dialect)
        if process is not None:
            for row in filled:
                row[name] = process(row[name])
    statement = _insert_from_json(dialect, table, tuple(names), returning)
    payload = json.dumps(filled, default=str, ensure_ascii=False, check_circular=False)
    return list(session.scalars(statement, {"rows": payload}))


def _json_bind_processor(column: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """What SQLAlchemy would do to the column's value before sending it (encrypting a text,
    turning an instant to UTC…), except for a JSON column, whose value goes in as it is."""
    if isinstance(column.type, JSON):
        return None
    processor: Callable[[Any], Any] | None = column.type.bind_processor(dialect)
    return processor


@functools.lru_cache(maxsize=64)
def _insert_from_json(
    dialect: Dialect, table: Table, names: tuple[str, ...], returning: str
) -> Any:
    """INSERT … SELECT FROM json_populate_recordset(NULL::table, :rows) ON CONFLICT DO
    NOTHING RETURNING …: built once per table and columns, so prepared once."""
    # The record type is the table's own: our metadata's name, never a value from outside.
    record_type: ColumnClause[Any] = literal_column(
        f"NULL::{dialect.identifier_preparer.quote(table.name)}"
    )
    source = Function(
        "json_populate_recordset", record_type, cast(bindparam("rows", type_=String), JSON)
    ).table_valued(*names)
    return (
        postgresql.insert(table)
        .from_select(list(names), select(*(source.c[name] for name in names)))
        .on_conflict_do_nothing()
        .returning(table.c[returning])
    )


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
    engine = create_engine(url, **kwargs)
    _configure_postgresql(engine)
    return engine


def _configure_postgresql(engine: Engine) -> None:
    """Every connection runs without PostgreSQL's JIT compiler. It starts when a plan's
    estimated cost is high, as it is for the watch's queries over every youth, and then
    spends far more compiling than the query takes: the check-in selection over 40,000
    youths ran in 0.25 s and spent 0.94 s more in JIT; each cycle runs dozens of such
    statements. (JIT pays off on long analytical queries, which this platform has none of.)"""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET jit = off")
        dbapi_connection.commit()  # a SET in a transaction rolled back later would be undone


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


def _end_request_session(session: Session, error: BaseException | None) -> None:
    """transaction_scope's ending, then close: commit, or roll back after an error other
    than a CommittedHTTPException."""
    try:
        if error is None or isinstance(error, CommittedHTTPException):
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One transaction per request (see transaction_scope), in as few thread hops as can be.

    Making a Session does no I/O (the connection is checked out by the first query, in the
    worker thread of a sync dependency or handler), so it is made here on the event loop.
    A sync endpoint commits it in its own thread as it returns (web.routing.Route), so on
    success the end is a close on the event loop; otherwise (an error, an async endpoint
    that read) the end (commit or rollback, then close) takes one hop to a worker thread.
    As a sync generator it took two hops of its own, a quarter of a signed-in page's four.
    The end is shielded from cancellation (a client gone mid-request): an unended session
    would keep its connection, and on SQLite the write lock. Like FastAPI's own exit of a
    sync dependency, it runs outside the thread pool's limit, which requests waiting for a
    connection may hold."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    session = factory()
    error: BaseException | None = None
    try:
        yield session
    except BaseException as raised:
        error = raised
        raise
    finally:
        with anyio.CancelScope(shield=True):
            if session.in_transaction() or session.new or session.dirty or session.deleted:
                await anyio.to_thread.run_sync(
                    _end_request_session, session, error, limiter=anyio.CapacityLimiter(1)
                )
            else:  # nothing was read or written: no connection to give back
                session.close()


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
