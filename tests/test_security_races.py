"""SQLite under parallel writers: every transaction begins IMMEDIATE, so a second writer
waits its turn instead of failing with "database is locked"; a read-only connection does not
wait at all."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from paris_avenir.db import create_database_engine

# --- SQLite: writers wait, readers read -------------------------------------------------


def _increment(engine: Engine, *, hold: float, deferred: bool, has_read: threading.Event) -> None:
    """Reads a count, waits `hold` seconds, writes count + 1: a read-modify-write."""
    with engine.connect() as connection:
        connection.execution_options(sqlite_deferred=deferred)
        with connection.begin():
            hits = connection.execute(text("SELECT hits FROM counter")).scalar_one()
            has_read.set()
            time.sleep(hold)
            connection.execute(text("UPDATE counter SET hits = :hits"), {"hits": hits + 1})


def _counter_engine(path: Path) -> Engine:
    engine = create_database_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE counter (hits INTEGER)"))
        connection.execute(text("INSERT INTO counter VALUES (0)"))
    return engine


def _hits(engine: Engine) -> int:
    with engine.connect() as connection:
        connection.execution_options(sqlite_deferred=True)
        return int(connection.execute(text("SELECT hits FROM counter")).scalar_one())


def test_sqlite_writers_wait_their_turn_and_readers_do_not_wait(tmp_path: Path) -> None:
    engine = _counter_engine(tmp_path / "wait.sqlite3")
    has_read = threading.Event()
    first = threading.Thread(
        target=_increment,
        kwargs={"engine": engine, "hold": 0.6, "deferred": False, "has_read": has_read},
    )
    first.start()
    has_read.wait()
    # A read-only connection reads the committed state at once, during the write.
    started = time.monotonic()
    assert _hits(engine) == 0
    assert time.monotonic() - started < 0.3
    # The second writer waits for the first, then counts from its result.
    _increment(engine, hold=0, deferred=False, has_read=threading.Event())
    first.join()
    assert _hits(engine) == 2
    engine.dispose()


def test_without_immediate_transactions_the_second_writer_fails(tmp_path: Path) -> None:
    """What BEGIN IMMEDIATE prevents: two deferred read-modify-writes, one fails at once."""
    engine = _counter_engine(tmp_path / "deferred.sqlite3")
    has_read = threading.Event()
    failures: list[BaseException] = []

    def slow() -> None:
        try:
            _increment(engine, hold=0.6, deferred=True, has_read=has_read)
        except OperationalError as error:
            failures.append(error)

    first = threading.Thread(target=slow)
    first.start()
    has_read.wait()
    _increment(engine, hold=0, deferred=True, has_read=threading.Event())
    first.join()
    assert len(failures) == 1 and "database is locked" in str(failures[0])
    assert _hits(engine) == 1
    engine.dispose()
