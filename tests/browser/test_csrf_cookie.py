"""Production's cookies in a real browser: `__Host-csrftoken` and `__Host-session` are Secure,
so they need a secure context; Chromium counts http://127.0.0.1 as one, which lets this test
run the prod settings without TLS. A youth signs in (two forms) and sends one more form."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from paris_avenir.app import create_app
from paris_avenir.config import Settings
from paris_avenir.db import create_database_engine, make_session_factory
from paris_avenir.demo import load_demo_data
from paris_avenir.kit.crypto import build_cipher
from paris_avenir.migrate import upgrade_to_head
from tests.browser.conftest import (
    DemoYouth,
    LiveServer,
    _browser_tests_enabled,
    new_phone_context,
    sign_in_youth,
)
from tests.servers import PlatformServer, SmtpServer, free_port

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def prod_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    _browser_tests_enabled()
    directory: Path = tmp_path_factory.mktemp("live-prod")
    engine = create_database_engine(f"sqlite:///{directory / 'prod.sqlite3'}")
    upgrade_to_head(engine)
    smtp = SmtpServer()
    smtp.start()
    port = free_port()
    settings = Settings(
        env="prod",
        secret_key="browser-prod-secret-" + "z" * 32,
        encryption_keys=Fernet.generate_key().decode(),
        base_url=f"http://127.0.0.1:{port}",
        sms_file=directory / "sms.jsonl",
        upload_dir=directory / "uploads",
        smtp_url=smtp.url,
    )
    # The app first: it sets the keys the engine's encrypted columns use (prod's own keys),
    # so that the demo data is written with them.
    app = create_app(settings, engine=engine)
    with make_session_factory(engine).begin() as session:
        load_demo_data(session, cipher=build_cipher(settings))
    server = PlatformServer(app, port)
    server.start()
    yield LiveServer(
        url=settings.base_url,
        sms_file=settings.sms_file,
        smtp=smtp,
        staff_accounts={},
        settings=settings,
        session_factory=make_session_factory(engine),
    )
    server.stop()
    smtp.stop()
    engine.dispose()


def test_forms_work_with_production_s_host_prefixed_cookies(
    prod_server: LiveServer, browser: Any
) -> None:
    context = new_phone_context(browser)
    page = context.new_page()
    sign_in_youth(page, prod_server, DemoYouth(5))
    cookies = {cookie["name"]: cookie for cookie in context.cookies()}
    assert {"__Host-csrftoken", "__Host-session"} <= set(cookies)
    assert "csrftoken" not in cookies and "session" not in cookies
    for name in ("__Host-csrftoken", "__Host-session"):
        assert cookies[name]["secure"] is True
        assert cookies[name]["path"] == "/"
        assert cookies[name]["domain"] == "127.0.0.1"  # host-only: no Domain attribute
    # One more form, with the token bound to the new session.
    page.get_by_role("button", name="Se déconnecter").click()
    page.get_by_role("heading", name="Se connecter").wait_for()
    assert "La page a expiré" not in page.content()
    context.close()
