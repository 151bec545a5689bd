"""Shared fixtures.

Every database test runs on SQLite and, when PARIS_AVENIR_TEST_DATABASE_URL is set, on
PostgreSQL too. The schema is built by the migrations (never by create_all), once per
backend; each test runs inside a transaction that is rolled back.

PARIS_AVENIR_TEST_REQUIRE_ALL=1 (set by CI) turns every "not configured here" skip of the
PostgreSQL and browser tests into a failure, so CI cannot pass by skipping them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session

from paris_avenir.app import create_app
from paris_avenir.config import Settings
from paris_avenir.db import create_database_engine, get_session
from paris_avenir.migrate import upgrade_to_head
from tests.querycount import CountQueries, QueryCounter

POSTGRES_URL_ENV = "PARIS_AVENIR_TEST_DATABASE_URL"
REQUIRE_ALL_ENV = "PARIS_AVENIR_TEST_REQUIRE_ALL"
BACKENDS = ["sqlite", "postgresql"]


def skip_or_fail(reason: str) -> None:
    if os.environ.get(REQUIRE_ALL_ENV) == "1":
        pytest.fail(f"{reason} (required by {REQUIRE_ALL_ENV}=1)")
    pytest.skip(reason)


def reset_postgres_schema(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))


def make_migrated_engine(backend: str, directory: Path) -> Engine:
    if backend == "sqlite":
        engine = create_database_engine(f"sqlite:///{directory / 'test.sqlite3'}")
    else:
        url = os.environ.get(POSTGRES_URL_ENV)
        if not url:
            skip_or_fail(f"PostgreSQL tests need {POSTGRES_URL_ENV}")
        engine = create_database_engine(str(url))
        reset_postgres_schema(engine)
    upgrade_to_head(engine)
    return engine


@pytest.fixture(scope="session", params=BACKENDS)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    migrated = make_migrated_engine(request.param, tmp_path_factory.mktemp(request.param))
    yield migrated
    migrated.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose every commit is a savepoint inside one rolled-back transaction."""
    connection = engine.connect()
    transaction = connection.begin()
    db_session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield db_session
    finally:
        db_session.close()
        transaction.rollback()
        connection.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        env="dev",
        secret_key="test-secret-key-" + "x" * 32,
        database_url=f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        sms_file=tmp_path / "sms.jsonl",
        upload_dir=tmp_path / "uploads",
    )


@pytest.fixture
def app(settings: Settings, engine: Engine, session: Session) -> FastAPI:
    application = create_app(settings, engine=engine)

    def test_session() -> Iterator[Session]:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise

    application.dependency_overrides[get_session] = test_session
    return application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def count_queries(engine: Engine) -> CountQueries:
    """`with count_queries() as counter:` counts the SQL a request runs (savepoints aside)."""

    @contextmanager
    def counting() -> Iterator[QueryCounter]:
        counter = QueryCounter()

        def before_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO")):
                counter.statements.append(statement)

        event.listen(engine, "before_cursor_execute", before_execute)
        try:
            yield counter
        finally:
            event.remove(engine, "before_cursor_execute", before_execute)

    return counting


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Says how many PostgreSQL and browser tests ran, so a CI log shows they did."""
    passed = terminalreporter.stats.get("passed", [])
    postgres = sum("postgresql" in report.nodeid for report in passed)
    browser = sum("/browser/" in report.nodeid for report in passed)
    terminalreporter.write_line(
        f"paris-avenir: {postgres} PostgreSQL tests passed, {browser} browser tests passed"
    )
