"""Shared fixtures.

Every database test runs on SQLite and, when PARIS_AVENIR_TEST_DATABASE_URL is set, on
PostgreSQL too. The schema is built by the migrations (never by create_all), once per
backend; each test runs inside a transaction that is rolled back.

Every test but the browser tests runs on a frozen clock (`frozen_clock`): Wednesday
2 December 2026, 11:00 in Paris, ticking from there — a working day, outside quiet hours,
whatever hour CI runs at. A test that talks to a program with its own clock (an OpenID
provider in Node) is marked `wall_clock`.

PARIS_AVENIR_TEST_REQUIRE_ALL=1 (set by CI) turns every "not configured here" skip of the
PostgreSQL and browser tests into a failure, so CI cannot pass by skipping them.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import time_machine
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.app import create_app
from paris_avenir.config import Settings
from paris_avenir.db import create_database_engine, get_session, transaction_scope
from paris_avenir.migrate import upgrade_to_head
from tests.querycount import CountQueries, QueryCounter
from tests.schemas import fresh_schema_url
from tests.servers import BrevoSmsApi, OidcProvider, SmtpServer, running

# tests/log_privacy.py: the logs of the whole run are scanned for personal data at the end.
pytest_plugins = ["pytester", "tests.log_privacy"]

POSTGRES_URL_ENV = "PARIS_AVENIR_TEST_DATABASE_URL"
REQUIRE_ALL_ENV = "PARIS_AVENIR_TEST_REQUIRE_ALL"
BACKENDS = ["sqlite", "postgresql"]
# A Wednesday outside quiet hours and school holidays: 11:00 in Paris.
FROZEN_AT = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


# argon2id with the library's defaults (64 MiB, 3 passes, 4 lanes) costs a fraction of a second
# per hash and per check on a 2-core CI runner, and hundreds of sign-ins run here. The tests
# prove what is checked, not how much a check costs: every hash stays a real argon2id hash,
# verified for real, the unknown-email path still verifies a dummy hash of the same cost as
# the real ones (staff_local._DUMMY_HASH is made with the same hasher).
TEST_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashing() -> Iterator[None]:
    from paris_avenir.auth import staff_local

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(staff_local, "_hasher", TEST_HASHER)
        patch.setattr(staff_local, "_DUMMY_HASH", TEST_HASHER.hash("not a real password"))
        yield


@pytest.fixture(autouse=True, scope="session")
def route_analysis_shared_between_apps() -> Iterator[None]:
    """Every test builds its own app, and FastAPI reads every route's signature again for
    each app it is included in (pydantic fields, string annotations evaluated, a model per
    form body): about 200 ms for the platform's routes, paid by each test that walks them.
    What it builds depends only on the route's path, endpoint and dependencies, so the run
    reads each route once. Requests are still solved per app, with that app's dependency
    overrides (looked up at request time). A server process builds one app and pays it once."""
    from fastapi import routing
    from fastapi.dependencies.utils import _get_body_field as body_field

    build_dependant = routing._build_dependant_with_parameterless_dependencies
    dependants: dict[tuple[Any, ...], Any] = {}
    bodies: dict[tuple[Any, ...], Any] = {}

    def shared_dependant(*, path: str, call: Any, dependencies: Any) -> Any:
        key = (path, call, *dependencies)
        if key not in dependants:
            dependants[key] = build_dependant(path=path, call=call, dependencies=dependencies)
        return dependants[key]

    def shared_body_field(*, body_params: Any, name: str, embed_body_fields: bool) -> Any:
        key = (id(body_params), name, embed_body_fields)
        if key not in bodies:
            bodies[key] = (
                body_params,  # kept alive, so that its id is not reused
                body_field(body_params=body_params, name=name, embed_body_fields=embed_body_fields),
            )
        return bodies[key][1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(routing, "_build_dependant_with_parameterless_dependencies", shared_dependant)
        patch.setattr(routing, "_get_body_field", shared_body_field)
        yield


@pytest.fixture(autouse=True)
def frozen_clock(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.node.get_closest_marker("browser") or request.node.get_closest_marker("wall_clock"):
        yield
        return
    with time_machine.travel(FROZEN_AT, tick=True):
        yield


def skip_or_fail(reason: str) -> None:
    if os.environ.get(REQUIRE_ALL_ENV) == "1":
        pytest.fail(f"{reason} (required by {REQUIRE_ALL_ENV}=1)")
    pytest.skip(reason)


def reset_postgres_schema(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))


def postgres_schema_url(schema: str, *, needed_for: str) -> str:
    """A fresh, empty PostgreSQL schema of its own (the other tests' database is left alone),
    as a URL whose connections, in this process or another, search that schema."""
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        skip_or_fail(f"{needed_for}: {POSTGRES_URL_ENV} is not set")
    return fresh_schema_url(str(url), schema)


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
def connection(engine: Engine) -> Iterator[Connection]:
    """One connection per test, inside a transaction that is rolled back at the end."""
    with engine.connect() as db_connection:
        transaction = db_connection.begin()
        try:
            yield db_connection
        finally:
            transaction.rollback()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    """Sessions whose every commit is a savepoint inside the test's transaction."""
    return sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as db_session:
        yield db_session


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        env="dev",
        secret_key="test-secret-key-" + "x" * 32,
        database_url=f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        sms_file=tmp_path / "sms.jsonl",
        upload_dir=tmp_path / "uploads",
        # Nothing listens there: tests that need mail start their own SMTP server.
        smtp_url="smtp://127.0.0.1:9",
    )


@pytest.fixture
def app(
    settings: Settings, engine: Engine, session: Session, session_factory: sessionmaker[Session]
) -> FastAPI:
    # Background work (the outbox) opens its own sessions, on the test's connection too.
    application = create_app(settings, engine=engine, session_factory=session_factory)

    def test_session() -> Iterator[Session]:
        yield from transaction_scope(session)

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
    postgres = sum(bool(re.search(r"[\[-]postgresql[\]-]", report.nodeid)) for report in passed)
    browser = sum("/browser/" in report.nodeid for report in passed)
    terminalreporter.write_line(
        f"paris-avenir: {postgres} PostgreSQL tests passed, {browser} browser tests passed"
    )


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    yield from running(SmtpServer())


@pytest.fixture
def sms_api() -> Iterator[BrevoSmsApi]:
    yield from running(BrevoSmsApi())


@pytest.fixture
def oidc_provider() -> Iterator[OidcProvider]:
    yield from running(OidcProvider())
