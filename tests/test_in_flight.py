"""Never stop answering: requests beyond what the connection pool can serve wait their turn
(InFlightLimitMiddleware) instead of deadlocking the thread pool.

Without the bound, a signed-in page holds a pooled connection across its hops between
threads; at 56 connections and more, requests holding connections waited for threads taken
by requests waiting for connections, and the server answered nothing (then "QueuePool limit"
errors). Here 128 browsers at once on a real server, SQLite and PostgreSQL: every request is
answered, none with an error."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from paris_avenir.app import requests_in_flight
from paris_avenir.auth import sessions
from paris_avenir.auth.models import AuthMethod
from paris_avenir.config import Settings
from paris_avenir.db import SQLITE_BUSY_TIMEOUT_MS, create_database_engine
from paris_avenir.web.middleware import InFlightLimitMiddleware
from tests.conftest import BACKENDS, postgres_schema_url
from tests.factories import create_youth
from tests.servers import race_platform

BROWSERS = 128


class SlowApp:
    """An ASGI app that counts how many requests it handles at once."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.chunks_sent_while_held: list[int] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(0.01)
            if scope["path"] == "/erreur":
                raise RuntimeError("the handler failed")
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"a", "more_body": True})
            await asyncio.sleep(0.01)
            await send({"type": "http.response.body", "body": b"b"})
        finally:
            self.now -= 1


async def _call(app: Any, path: str) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "http", "path": path, "method": "GET", "headers": []}, receive, send)
    return sent


def test_at_most_the_limit_run_at_once_and_the_rest_wait_their_turn() -> None:
    inner = SlowApp()
    limited = InFlightLimitMiddleware(inner, limit=3)

    async def run() -> list[list[Message]]:
        return await asyncio.gather(*(_call(limited, "/") for _ in range(20)))

    answers = asyncio.run(run())
    assert inner.most == 3
    assert all(answer[-1] == {"type": "http.response.body", "body": b"b"} for answer in answers)


def test_a_failing_request_gives_its_slot_back() -> None:
    inner = SlowApp()
    limited = InFlightLimitMiddleware(inner, limit=1)

    async def run() -> list[Any]:
        failing = [_call(limited, "/erreur") for _ in range(5)]
        return await asyncio.gather(*failing, return_exceptions=True)

    assert all(isinstance(result, RuntimeError) for result in asyncio.run(run()))
    # Every slot came back: a normal request still goes through at once.
    assert asyncio.run(_call(limited, "/"))[-1]["body"] == b"b"


def test_static_files_take_no_slot() -> None:
    inner = SlowApp()
    limited = InFlightLimitMiddleware(inner, limit=1)

    async def run() -> None:
        await asyncio.gather(*(_call(limited, "/static/app.css") for _ in range(10)))

    asyncio.run(run())
    assert inner.most == 10


def test_the_bound_stays_below_the_connection_pool(tmp_path: Path) -> None:
    settings = Settings(env="dev", secret_key="k" * 40)
    pooled = create_database_engine(
        f"sqlite:///{tmp_path / 'a.sqlite3'}", pool_size=5, max_overflow=10
    )
    assert requests_in_flight(settings, pooled) == 9  # 15 connections less 6 held elsewhere
    chosen = Settings(env="dev", secret_key="k" * 40, max_requests_in_flight=4)
    assert requests_in_flight(chosen, pooled) == 4
    pooled.dispose()


@pytest.fixture(params=BACKENDS)
def platform(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if request.param == "postgresql":
        url = postgres_schema_url("in_flight", needed_for="the in-flight bound on PostgreSQL")
    else:
        url = f"sqlite:///{tmp_path / 'in-flight.sqlite3'}"
    # The default pool (5 connections and 10 more), as `serve` has it.
    with race_platform(url, tmp_path, pool={}) as server:
        with server.factory.begin() as session:
            youth = create_youth(session)
            fresh = sessions.start_session(session, youth_id=youth.id, method=AuthMethod.CODE)
        yield server.url, f"{server.settings.session_cookie_name}={fresh.token}"


def test_128_browsers_at_once_are_all_answered_without_an_error(
    platform: tuple[str, str],
) -> None:
    url, cookie = platform

    def browse(_index: int) -> list[int]:
        # A connection of its own, kept open: 128 connections at once.
        with httpx.Client(base_url=url, headers={"cookie": cookie}, timeout=120) as client:
            return [client.get(path).status_code for path in ("/mon-espace", "/mon-espace")]

    with ThreadPoolExecutor(max_workers=BROWSERS) as pool:
        statuses = Counter(code for codes in pool.map(browse, range(BROWSERS)) for code in codes)
    assert statuses == {200: 2 * BROWSERS}


def test_sqlite_connections_queue_their_writes_and_sync_at_checkpoints(tmp_path: Path) -> None:
    """WAL (readers never wait for the writer), a busy timeout (writers wait their turn
    instead of failing), synchronous=NORMAL (no fsync per commit in WAL mode)."""
    engine = create_database_engine(f"sqlite:///{tmp_path / 'pragmas.sqlite3'}")
    with engine.connect() as connection:
        pragmas = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
        }
    engine.dispose()
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 1,  # NORMAL
        "busy_timeout": SQLITE_BUSY_TIMEOUT_MS,
        "foreign_keys": 1,
    }


def test_postgresql_connections_run_without_jit() -> None:
    """PostgreSQL's JIT compiler starts on plans with a high estimated cost, such as the
    watch's selections over every youth, and then compiles for longer than the query runs
    (0.94 s of JIT for a 0.25 s check-in selection over 40,000 youths). Off on every
    connection, also after a transaction was rolled back and the connection went back to
    the pool."""
    engine = create_database_engine(
        postgres_schema_url("jit_off", needed_for="the JIT setting of PostgreSQL connections"),
        pool_size=1,
        max_overflow=0,
    )
    try:
        for _checkout in range(2):
            with engine.connect() as connection:
                assert connection.exec_driver_sql("SHOW jit").scalar() == "off"
                connection.rollback()
    finally:
        engine.dispose()
