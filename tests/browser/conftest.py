"""A real server (uvicorn on loopback, demo data) and Debian's Chromium driven by Playwright.

Switched on by PARIS_AVENIR_BROWSER_TESTS=1; CI sets it. The server runs on SQLite and,
when PARIS_AVENIR_TEST_DATABASE_URL is set, on PostgreSQL too (in a schema of its own).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir import demo
from paris_avenir.app import create_app
from paris_avenir.auth.staff_local import create_staff
from paris_avenir.config import Settings
from paris_avenir.db import create_database_engine, make_session_factory
from paris_avenir.demo import TEAM_NAME, load_demo_data
from paris_avenir.kit.crypto import build_cipher
from paris_avenir.migrate import upgrade_to_head
from paris_avenir.staff.models import StaffRole, StaffUser
from paris_avenir.web import i18n
from tests import html_check
from tests.conftest import BACKENDS, postgres_schema_url, skip_or_fail
from tests.servers import PlatformServer, SmtpServer, free_port

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


def pytest_configure(config: pytest.Config) -> None:
    """tests/html_check.py: the Nu HTML Checker on every page the browser tests visit."""
    if not config.pluginmanager.has_plugin(html_check.__name__):
        config.pluginmanager.register(html_check, html_check.__name__)


def _browser_tests_enabled() -> None:
    if os.environ.get("PARIS_AVENIR_BROWSER_TESTS") != "1":
        skip_or_fail("browser tests need PARIS_AVENIR_BROWSER_TESTS=1")
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        skip_or_fail("browser tests need Debian's chromium (apt-get install chromium)")


def _server_engine(backend: str, directory: Path) -> Engine:
    if backend == "sqlite":
        return create_database_engine(f"sqlite:///{directory / 'browser.sqlite3'}")
    return create_database_engine(
        postgres_schema_url(BROWSER_SCHEMA, needed_for="PostgreSQL browser tests")
    )


@dataclass
class LiveServer:
    url: str
    sms_file: Path
    smtp: SmtpServer
    # email → TOTP provisioning URI; one account per use, as a TOTP code works only once.
    staff_accounts: dict[str, str]
    # What an operator has: the server's settings and database (to run the dispatcher or a
    # cycle of the watch, as the scheduler would).
    settings: Settings
    session_factory: sessionmaker[Session]

    def dispatch_outbox(self, *, at_next_sending_time: bool = False) -> None:
        """One pass of the outbox dispatcher, as `serve` runs every 15 seconds; with
        `at_next_sending_time`, the pass of the first moment outside quiet hours (now, by
        day; 09:00 when the suite runs at night), so what waits for the morning leaves."""
        from paris_avenir.db import utcnow
        from paris_avenir.kit import quiet_hours
        from paris_avenir.messaging import outbox
        from paris_avenir.messaging.channels import build_channels

        now = utcnow()
        if at_next_sending_time:
            with self.session_factory() as session:
                now = quiet_hours.load(session).next_sending_time(now)
        outbox.dispatch_due(self.session_factory, build_channels(self.settings), now=now)

    def wait_for_email(self, to: str, *, after: int = 0) -> Any:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for message in self.smtp.inbox[after:]:
                if to in str(message["To"]):
                    return message
            time.sleep(0.05)
        raise AssertionError(f"no email to {to}")

    def last_sms_to(self, e164: str, *, after: int = 0) -> str:
        """The newest SMS to this number beyond the first `after` lines of the file; waits
        for it, since codes leave right after the response, not before."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lines = self.sms_file.read_text().splitlines() if self.sms_file.exists() else []
            for line in reversed(lines[after:]):
                sms = json.loads(line)
                if sms["to"] == e164:
                    return str(sms["text"])
            time.sleep(0.05)
        raise AssertionError(f"no SMS to {e164}")

    def sms_count(self) -> int:
        return len(self.sms_file.read_text().splitlines()) if self.sms_file.exists() else 0


STAFF_PASSWORD = "mot de passe de demonstration"
PAGES_STAFF = "agent.pages@example.org"
JOURNEY_STAFF = "agent.parcours@example.org"
PAGES_ADMIN = "admin.pages@example.org"


@pytest.fixture(scope="session", params=BACKENDS)
def live_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    _browser_tests_enabled()
    directory = tmp_path_factory.mktemp(f"live-{request.param}")
    engine = _server_engine(request.param, directory)
    upgrade_to_head(engine)
    smtp = SmtpServer()
    smtp.start()
    port = free_port()
    settings = Settings(
        env="dev",
        secret_key="browser-test-secret-" + "x" * 32,
        # Links in emails and SMS lead to this server, as they would in production.
        base_url=f"http://127.0.0.1:{port}",
        sms_file=directory / "sms.jsonl",
        upload_dir=directory / "uploads",
        smtp_url=smtp.url,
    )
    with make_session_factory(engine).begin() as session:
        # With the cipher, demo staff get the documented demo password and TOTP secret.
        load_demo_data(session, cipher=build_cipher(settings))
        staff_accounts = {}
        for email, role in (
            (PAGES_STAFF, StaffRole.SUPERVISOR),
            (JOURNEY_STAFF, StaffRole.SUPERVISOR),
            (PAGES_ADMIN, StaffRole.ADMIN),
        ):
            created = create_staff(
                session,
                build_cipher(settings),
                email=email,
                full_name="Agent Navigateur",
                role=role,
                team_name=TEAM_NAME,
                password=STAFF_PASSWORD,
            )
            staff_accounts[email] = created.totp_uri
    server = PlatformServer(create_app(settings, engine=engine), port)
    server.start()
    yield LiveServer(
        url=f"http://127.0.0.1:{port}",
        sms_file=settings.sms_file,
        smtp=smtp,
        staff_accounts=staff_accounts,
        settings=settings,
        session_factory=make_session_factory(engine),
    )
    server.stop()
    smtp.stop()
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
        # Every context records the platform's pages for the HTML check (tests/html_check.py).
        yield html_check.record_pages_of(chromium)
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


@dataclass(frozen=True)
class DemoYouth:
    """The n-th youth of the demo data (1 to 30)."""

    number: int

    @property
    def first_name(self) -> str:
        return demo.FIRST_NAMES[self.number - 1]

    @property
    def phone(self) -> str:
        return f"+3363998{self.number:04d}"

    @property
    def phone_as_typed(self) -> str:
        return f"06 39 98 {self.number // 100:02d} {self.number % 100:02d}"

    @property
    def email(self) -> str:
        last_name = demo.LAST_NAMES[self.number - 1]
        return f"{demo.ascii_slug(self.first_name)}.{demo.ascii_slug(last_name)}@example.org"


def words(language: str, text: str, **values: Any) -> str:
    """A text as a youth reads it in that language (from the gettext catalogs)."""
    with i18n.using_locale(language):
        return i18n.gettext(text, **values)


def sign_in_youth(
    page: Any,
    live: LiveServer,
    youth: DemoYouth = DemoYouth(1),
    *,
    by_email: bool = False,
    language: str = "fr",
) -> str:
    """The whole journey a youth makes: number or email, then the code that arrives (its
    text is returned).

    The language is chosen on the phone first (the language switch's cookie): several demo
    youths have another language in their profile, and the labels are read in `language`."""
    page.context.add_cookies([{"name": "langue", "value": language, "url": live.url}])
    page.goto(live.url + "/connexion")
    page.get_by_label(words(language, "Votre numéro de téléphone ou votre e-mail")).fill(
        youth.email if by_email else youth.phone_as_typed
    )
    inbox_before = len(live.smtp.inbox)
    sms_before = live.sms_count()
    page.get_by_role("button", name=words(language, "Recevoir un code"), exact=True).click()
    page.get_by_role("heading", name=words(language, "Entrez le code reçu")).wait_for()
    if by_email:
        deadline = time.monotonic() + 10
        while len(live.smtp.inbox) == inbox_before and time.monotonic() < deadline:
            time.sleep(0.05)
        text = live.smtp.text_of(live.smtp.inbox[-1])
    else:
        text = live.last_sms_to(youth.phone, after=sms_before)
    match = re.search(r"\b(\d{6})\b", text)
    assert match
    page.get_by_label(words(language, "Code à 6 chiffres")).fill(match.group(1))
    page.get_by_role("button", name=words(language, "Valider"), exact=True).click()
    page.get_by_role(
        "heading", name=words(language, "Bonjour %(name)s", name=youth.first_name)
    ).wait_for()
    return str(text)


def unused_totp(live: LiveServer, account: str, secret: str = demo.DEMO_TOTP_SECRET) -> str:
    """The current TOTP code of a demo account, which this live server then accepts. The
    platform refuses a step used twice (replay) and the browser tests share a live server, so
    the account's replay guard (the last step it signed in with) is cleared in the server's
    database first, as an operator with the database could. Waiting for the next step
    instead cost up to 30 seconds a sign-in (a minute and a half a run). The guard itself
    is tested without a browser (tests/test_auth_staff.py, tests/test_security_races.py)."""
    import pyotp

    with live.session_factory.begin() as session:
        session.execute(
            update(StaffUser).where(StaffUser.email == account).values(totp_last_step=None)
        )
    return str(pyotp.TOTP(secret).now())


def submit_staff_sign_in(
    page: Any, live: LiveServer, email: str, password: str, totp_code: str
) -> None:
    """The staff sign-in form, filled and sent, until the browser has left it."""
    page.goto(live.url + "/pro/connexion")
    page.get_by_label("E-mail professionnel").fill(email)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_label("Code de votre application d’authentification").fill(totp_code)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(lambda url: "/pro/connexion" not in url)


def sign_in_demo_staff(page: Any, live: LiveServer, email: str) -> None:
    """A demo account (the demo's password and TOTP secret)."""
    submit_staff_sign_in(page, live, email, demo.DEMO_STAFF_PASSWORD, unused_totp(live, email))


def sign_in_staff(page: Any, live: LiveServer, email: str = PAGES_STAFF) -> None:
    import pyotp

    secret = pyotp.parse_uri(live.staff_accounts[email]).secret
    submit_staff_sign_in(page, live, email, STAFF_PASSWORD, pyotp.TOTP(secret).now())
    # Each role has its home ("Mes jeunes", the admin's settings, the psychologist's agenda).
    page.locator("h1").first.wait_for()


@pytest.fixture(scope="package")
def youth_cookies(live_server: LiveServer, browser: Any) -> list[Any]:
    """One sign-in (demo youth 3) shared by the page checks: codes are rate-limited."""
    context = new_phone_context(browser)
    sign_in_youth(context.new_page(), live_server, DemoYouth(3))
    cookies = context.cookies()
    context.close()
    return list(cookies)


@pytest.fixture(scope="package")
def staff_cookies(live_server: LiveServer, browser: Any) -> list[Any]:
    context = browser.new_context()
    sign_in_staff(context.new_page(), live_server)
    cookies = context.cookies()
    context.close()
    return list(cookies)


@pytest.fixture(scope="package")
def admin_cookies(live_server: LiveServer, browser: Any) -> list[Any]:
    context = browser.new_context()
    sign_in_staff(context.new_page(), live_server, PAGES_ADMIN)
    cookies = context.cookies()
    context.close()
    return list(cookies)
