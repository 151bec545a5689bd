"""A real server (uvicorn on loopback, demo data) and Debian's Chromium driven by Playwright.

Switched on by PARIS_AVENIR_BROWSER_TESTS=1; CI sets it. The server runs on SQLite and,
when PARIS_AVENIR_TEST_DATABASE_URL is set, on PostgreSQL too (in a schema of its own).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import Engine, text

from paris_avenir.app import create_app
from paris_avenir.config import Settings
from paris_avenir.db import create_database_engine, make_session_factory
from paris_avenir.demo import load_demo_data
from paris_avenir.migrate import upgrade_to_head
from tests.conftest import BACKENDS, POSTGRES_URL_ENV, skip_or_fail

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
BROWSER_SCHEMA = "browser_tests"


def _browser_tests_enabled() -> None:
    if os.environ.get("PARIS_AVENIR_BROWSER_TESTS") != "1":
        skip_or_fail("browser tests need PARIS_AVENIR_BROWSER_TESTS=1")
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        skip_or_fail("browser tests need Debian's chromium (apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_engine(backend: str, directory: Path) -> Engine:
    if backend == "sqlite":
        return create_database_engine(f"sqlite:///{directory / 'browser.sqlite3'}")
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        skip_or_fail(f"PostgreSQL browser tests need {POSTGRES_URL_ENV}")
    setup = create_database_engine(str(url))
    with setup.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {BROWSER_SCHEMA} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {BROWSER_SCHEMA}"))
    setup.dispose()
    return create_database_engine(
        str(url), connect_args={"options": f"-csearch_path={BROWSER_SCHEMA}"}
    )


@pytest.fixture(scope="session", params=BACKENDS)
def live_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    _browser_tests_enabled()
    directory = tmp_path_factory.mktemp(f"live-{request.param}")
    engine = _server_engine(request.param, directory)
    upgrade_to_head(engine)
    with make_session_factory(engine).begin() as session:
        load_demo_data(session)
    settings = Settings(
        env="dev",
        secret_key="browser-test-secret-" + "x" * 32,
        sms_file=directory / "sms.jsonl",
        upload_dir=directory / "uploads",
    )
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings, engine=engine), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


# Package scope: Playwright's sync API keeps an event loop running while it is open, which
# would break the asyncio tests that come after the browser tests.
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    _browser_tests_enabled()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


def new_phone_context(browser: Any, *, javascript: bool = True, width: int = 360) -> Any:
    """A fresh phone-sized context: no cache, no cookies, French first."""
    return browser.new_context(
        viewport={"width": width, "height": 640},
        java_script_enabled=javascript,
        locale="fr-FR",
        is_mobile=True,
        has_touch=True,
    )
