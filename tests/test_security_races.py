"""Attacks on the security counters, with 30–40 requests at once against a real server on
loopback, on PostgreSQL and on SQLite (a file database): the counts must be exact.

- 40 wrong codes at once count 5 tries, then the attempt is void;
- 30 code requests at once for one number send 3 SMS (the limit), and one address asking
  for 30 numbers at once gets exactly its limit;
- 30 wrong staff passwords at once lock the account at the 5th failure, exactly once;
- one TOTP code sent 30 times at once opens one session;
- one sign-in link used 30 times at once opens one session;
- 30 taps on "recevoir le code par e-mail" replace the code once, one email;
- a new number for the profile: 30 requests at once send 3 codes, 40 wrong codes at once
  count 5 tries, the right code sent 30 times at once changes the number once.

(A check-in answered once under 30 taps is raced in tests/test_task_races.py.)
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.audit.models import AuditEvent
from paris_avenir.auth import codes, links, sessions
from paris_avenir.auth.models import AuthMethod, SignInAttempt, UserSession
from paris_avenir.config import Settings
from paris_avenir.db import create_database_engine
from paris_avenir.kit.crypto import build_cipher
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.outreach import checkin
from paris_avenir.staff.models import StaffTask, StaffUser
from paris_avenir.youths.models import Channel, ContactVerification, Youth
from tests import factories
from tests.conftest import BACKENDS, TEST_HASHER, postgres_schema_url
from tests.factories import create_check_in, create_staff, create_youth
from tests.helpers import at_once
from tests.servers import race_platform

SCHEMA = "security_races"
PARALLEL = 30
PASSWORD = "un mot de passe assez long pour la course"
# A cheap argon2 for the tests' accounts (verification reads the parameters from the hash):
# 30 verifications at once with the default 64 MiB each would only measure the machine.
CHEAP_HASHER = TEST_HASHER


@dataclass
class Server:
    backend: str
    url: str
    settings: Settings
    factory: sessionmaker[Session]

    def sms_to(self, e164: str) -> list[str]:
        path = Path(self.settings.sms_file)
        lines = path.read_text().splitlines() if path.exists() else []
        return [sms["text"] for sms in map(json.loads, lines) if sms["to"] == e164]

    def wait_for_sms(self, e164: str, count: int) -> list[str]:
        """Codes leave after the response: wait for them, then a little more, so that an
        extra one would be seen."""
        deadline = time.monotonic() + 15
        while len(self.sms_to(e164)) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        return self.sms_to(e164)


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp(f"security-races-{request.param}")
    if request.param == "postgresql":
        url = postgres_schema_url(SCHEMA, needed_for="races on PostgreSQL")
    else:
        url = f"sqlite:///{directory / 'races.sqlite3'}"
    with race_platform(url, directory) as platform:
        yield Server(request.param, platform.url, platform.settings, platform.factory)


def _browser(server: Server, page: str = "/connexion") -> tuple[dict[str, str], str]:
    """Cookies and CSRF token of one browser, shared by every parallel request."""
    with httpx.Client(base_url=server.url) as client:
        response = client.get(page)
        token = re.search(r'"x-csrftoken": "([^"]+)"', response.text)
        assert token, response.status_code
        return dict(client.cookies), token.group(1)


_numbers = iter(range(1000, 10000))


def _new_phone() -> str:
    return f"+3363998{next(_numbers):04d}"


def _youth(server: Server, **values: Any) -> tuple[Youth, str]:
    phone = _new_phone()
    with server.factory.begin() as session:
        youth = create_youth(session, phone=phone, **values)
    return youth, phone


def _post(
    server: Server, cookies: dict[str, str], url: str, data: dict[str, str]
) -> httpx.Response:
    with httpx.Client(base_url=server.url, cookies=cookies, timeout=60) as client:
        return client.post(url, data=data)


# --- Youth: sign-in codes -------------------------------------------------------------


def test_forty_wrong_codes_at_once_count_five_tries(server: Server) -> None:
    _youth_row, phone = _youth(server)
    cookies, token = _browser(server)
    with httpx.Client(base_url=server.url, cookies=cookies) as client:
        response = client.post("/connexion", data={"csrftoken": token, "destination": phone})
        assert response.status_code == 303
        cookies = dict(client.cookies)
    (sms,) = server.wait_for_sms(phone, 1)
    good = re.search(r"\b(\d{6})\b", sms)
    assert good
    wrong = "000000" if good.group(1) != "000000" else "111111"

    def try_code(_index: int) -> str:
        page = _post(server, cookies, "/connexion/code", {"csrftoken": token, "code": wrong})
        assert page.status_code == 422
        left = re.search(r"Essais restants : (\d)", page.text)
        return left.group(1) if left else ("void" if "Trop d’essais" in page.text else page.text)

    answers = Counter(at_once(40, try_code))
    # Each try counted once: 4, 3, 2, 1 tries left, then the 5th voids the attempt.
    assert answers == {"4": 1, "3": 1, "2": 1, "1": 1, "void": 36}
    with server.factory() as session:
        attempt = session.scalars(
            select(SignInAttempt)
            .where(SignInAttempt.masked_destination.contains(phone[-2:]))
            .order_by(SignInAttempt.created_at.desc())
        ).first()
        assert attempt is not None and attempt.wrong_tries == 5 and attempt.voided_at is not None
    # The right code no longer works either.
    page = _post(server, cookies, "/connexion/code", {"csrftoken": token, "code": good.group(1)})
    assert page.status_code == 422 and "Trop d’essais" in page.text


def test_thirty_code_requests_for_one_number_send_three_sms(server: Server) -> None:
    youth, phone = _youth(server)
    cookies, token = _browser(server)

    def ask(_index: int) -> int:
        return _post(
            server, cookies, "/connexion", {"csrftoken": token, "destination": phone}
        ).status_code

    statuses = Counter(at_once(PARALLEL, ask))
    limit = codes.DESTINATION_LIMITS[0][1]
    assert limit == 3
    assert statuses == {303: limit, 429: PARALLEL - limit}
    assert len(server.wait_for_sms(phone, limit)) == limit
    with server.factory() as session:
        queued = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.youth_id == youth.id, OutboxMessage.template == "sign_in_code")
        )
        attempts = session.scalar(
            select(func.count())
            .select_from(SignInAttempt)
            .where(SignInAttempt.youth_id == youth.id)
        )
        assert (queued, attempts) == (limit, limit)


def test_one_address_asking_for_thirty_numbers_at_once_gets_exactly_its_limit(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every request of this module comes from the loopback address: its limit here is what
    # it has already used, plus 7.
    window = codes.IP_LIMITS[0][0]
    since = datetime.now(UTC) - window
    with server.factory() as session:
        used = int(
            session.scalar(
                select(func.count())
                .select_from(SignInAttempt)
                .where(SignInAttempt.created_at >= since)
            )
            or 0
        )
    monkeypatch.setattr(codes, "IP_LIMITS", ((window, used + 7), (timedelta(hours=24), 10_000)))
    numbers = [_new_phone() for _ in range(PARALLEL)]
    cookies, token = _browser(server)

    def ask(index: int) -> int:
        return _post(
            server, cookies, "/connexion", {"csrftoken": token, "destination": numbers[index]}
        ).status_code

    assert Counter(at_once(PARALLEL, ask)) == {303: 7, 429: PARALLEL - 7}


def test_thirty_taps_on_the_email_fallback_send_one_email(server: Server) -> None:
    youth, phone = _youth(server, email=f"repli.{time.monotonic_ns()}@example.org")
    cookies, token = _browser(server)
    with httpx.Client(base_url=server.url, cookies=cookies) as client:
        client.post("/connexion", data={"csrftoken": token, "destination": phone})
        cookies = dict(client.cookies)

    def tap(_index: int) -> int:
        return _post(server, cookies, "/connexion/code/email", {"csrftoken": token}).status_code

    assert Counter(at_once(PARALLEL, tap)) == {200: PARALLEL}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with server.factory() as session:
            emails = session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.youth_id == youth.id, OutboxMessage.channel == Channel.EMAIL)
            )
        if emails:
            break
        time.sleep(0.05)
    time.sleep(0.5)
    with server.factory() as session:
        emails = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.youth_id == youth.id, OutboxMessage.channel == Channel.EMAIL)
        )
        assert emails == 1


# --- Sign-in links --------------------------------------------------------------------


# --- Youth: a new number or email on the profile (contact verification) ---------------------


def _signed_in_youth(server: Server) -> tuple[Youth, dict[str, str], str]:
    youth, _phone = _youth(server)
    with server.factory.begin() as session:
        fresh = sessions.start_session(session, youth_id=youth.id, method=AuthMethod.CODE)
    # The CSRF token is bound to the session: take it from a page of the signed-in youth.
    with httpx.Client(
        base_url=server.url, cookies={server.settings.session_cookie_name: fresh.token}
    ) as client:
        page = client.get("/mon-espace/profil")
        found = re.search(r'"x-csrftoken": "([^"]+)"', page.text)
        assert page.status_code == 200 and found
        return youth, dict(client.cookies), found.group(1)


def _verifications(server: Server, youth: Youth) -> list[ContactVerification]:
    with server.factory() as session:
        return list(
            session.scalars(
                select(ContactVerification).where(ContactVerification.youth_id == youth.id)
            )
        )


def test_thirty_requests_for_a_new_number_at_once_send_three_codes(server: Server) -> None:
    youth, cookies, token = _signed_in_youth(server)
    new_phone = _new_phone()

    def ask(_index: int) -> int:
        return _post(
            server,
            cookies,
            "/mon-espace/profil/contact",
            {"csrftoken": token, "nouveau": new_phone},
        ).status_code

    assert Counter(at_once(PARALLEL, ask)) == {200: 3, 422: PARALLEL - 3}
    assert len(_verifications(server, youth)) == 3
    assert len(server.wait_for_sms(new_phone, 3)) == 3


def test_forty_wrong_contact_codes_count_five_and_the_right_one_changes_the_number_once(
    server: Server,
) -> None:
    youth, cookies, token = _signed_in_youth(server)
    new_phone = _new_phone()
    page = _post(
        server, cookies, "/mon-espace/profil/contact", {"csrftoken": token, "nouveau": new_phone}
    )
    assert page.status_code == 200
    (sms,) = server.wait_for_sms(new_phone, 1)
    good = re.search(r"\b(\d{6})\b", sms)
    assert good
    wrong = "000000" if good.group(1) != "000000" else "111111"

    def try_code(code: str) -> Callable[[int], int]:
        def post(_index: int) -> int:
            return _post(
                server,
                cookies,
                "/mon-espace/profil/contact/code",
                {"csrftoken": token, "code": code},
            ).status_code

        return post

    assert Counter(at_once(40, try_code(wrong))) == {422: 40}
    (verification,) = _verifications(server, youth)
    assert verification.wrong_tries == 5 and verification.consumed_at is None
    # Void now: even the right code does not work, and the number is unchanged.
    assert (
        _post(
            server,
            cookies,
            "/mon-espace/profil/contact/code",
            {"csrftoken": token, "code": good.group(1)},
        ).status_code
        == 422
    )

    # A new code, then the right one sent 30 times at once: one change, one audit entry.
    another = _new_phone()
    _post(server, cookies, "/mon-espace/profil/contact", {"csrftoken": token, "nouveau": another})
    (sms,) = server.wait_for_sms(another, 1)
    good = re.search(r"\b(\d{6})\b", sms)
    assert good
    statuses = Counter(at_once(PARALLEL, try_code(good.group(1))))
    assert statuses == {303: 1, 422: PARALLEL - 1}
    with server.factory() as session:
        assert session.get_one(Youth, youth.id).phone == another
        changes = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.youth_id == youth.id, AuditEvent.action == "youth.contact_changed")
        )
        assert changes == 1


def test_one_link_used_thirty_times_at_once_opens_one_session(server: Server) -> None:
    youth, _phone = _youth(server)
    with server.factory.begin() as session:
        url = links.create_login_link(session, youth.id, purpose="invitation", base_url="")
    cookies, token = _browser(server, url)

    def use(_index: int) -> int:
        return _post(server, cookies, url, {"csrftoken": token}).status_code

    assert Counter(at_once(PARALLEL, use)) == {303: 1, 410: PARALLEL - 1}
    with server.factory() as session:
        opened = session.scalar(
            select(func.count())
            .select_from(UserSession)
            .where(UserSession.youth_id == youth.id, UserSession.auth_method == AuthMethod.LINK)
        )
        assert opened == 1


def test_thirty_taps_on_one_check_in_answer_it_once_on_sqlite_too(server: Server) -> None:
    """On PostgreSQL this race is in tests/test_task_races.py; here on SQLite as well."""
    if server.backend != "sqlite":
        pytest.skip("raced on PostgreSQL in tests/test_task_races.py")
    youth, _phone = _youth(server)
    with server.factory.begin() as session:
        found = session.get_one(Youth, youth.id)
        attempt = create_check_in(session, found, at=datetime.now(UTC))
        url = checkin.link(attempt.id, secret_key=server.settings.secret_key, base_url="")
        attempt_id = attempt.id
    cookies, token = _browser(server, url)

    def answer(_index: int) -> str:
        page = _post(server, cookies, url, {"csrftoken": token, "reponse": "aide"})
        assert page.status_code == 200
        return "thanks" if "Quelqu’un va vous appeler" in page.text else "already"

    assert Counter(at_once(PARALLEL, answer)) == {"thanks": 1, "already": PARALLEL - 1}
    with server.factory() as session:
        alerts = session.scalar(
            select(func.count())
            .select_from(StaffTask)
            .where(StaffTask.outreach_attempt_id == attempt_id)
        )
        assert alerts == 1


# --- Staff: password and TOTP ---------------------------------------------------------


@dataclass
class Account:
    staff_id: Any
    email: str
    totp: pyotp.TOTP


def _account(server: Server) -> Account:
    secret = pyotp.random_base32()
    email = f"course.{time.monotonic_ns()}@example.org"
    with server.factory.begin() as session:
        staff = create_staff(
            session,
            email=email,
            password_hash=CHEAP_HASHER.hash(PASSWORD),
            totp_secret_encrypted=build_cipher(server.settings).encrypt(secret.encode()).decode(),
        )
    return Account(staff.id, email, pyotp.TOTP(secret))


def _staff_sign_in(server: Server, account: Account, *, password: str, code: str) -> int:
    cookies, token = _browser(server, "/pro/connexion")
    data = {"csrftoken": token, "email": account.email, "password": password, "totp": code}
    return _post(server, cookies, "/pro/connexion", data).status_code


def _staff_row(server: Server, account: Account) -> StaffUser:
    with server.factory() as session:
        return session.get_one(StaffUser, account.staff_id)


def test_wrong_passwords_at_once_lock_the_account_at_exactly_the_fifth(server: Server) -> None:
    account = _account(server)
    cookies, token = _browser(server, "/pro/connexion")
    wrong = {"csrftoken": token, "email": account.email, "password": "pas le bon", "totp": "000000"}

    def fail(_index: int) -> int:
        return _post(server, cookies, "/pro/connexion", wrong).status_code

    # Four at once: four failures counted, not one, and no lock yet.
    assert Counter(at_once(4, fail)) == {422: 4}
    staff = _staff_row(server, account)
    assert (staff.failed_sign_in_count, staff.locked_until) == (4, None)
    # Thirty more at once: the first of them is the 5th failure and locks, once.
    assert Counter(at_once(PARALLEL, fail)) == {422: PARALLEL}
    staff = _staff_row(server, account)
    assert staff.locked_until is not None and staff.locked_until > datetime.now(UTC)
    with server.factory() as session:
        details = session.scalars(
            select(AuditEvent.detail).where(
                AuditEvent.actor_staff_id == account.staff_id,
                AuditEvent.action == "staff.sign_in_failed",
            )
        ).all()
        assert len(details) == 4 + PARALLEL
        assert sum(bool((detail or {}).get("locked")) for detail in details) == 1
    # Locked: the right password and code are refused too.
    assert _staff_sign_in(server, account, password=PASSWORD, code=account.totp.now()) == 422


def test_one_totp_code_sent_thirty_times_at_once_opens_one_session(server: Server) -> None:
    account = _account(server)
    code = account.totp.now()
    cookies, token = _browser(server, "/pro/connexion")
    data = {"csrftoken": token, "email": account.email, "password": PASSWORD, "totp": code}

    def sign_in(_index: int) -> int:
        return _post(server, cookies, "/pro/connexion", data).status_code

    assert Counter(at_once(PARALLEL, sign_in)) == {303: 1, 422: PARALLEL - 1}
    with server.factory() as session:
        opened = session.scalar(
            select(func.count())
            .select_from(UserSession)
            .where(UserSession.staff_id == account.staff_id)
        )
        assert opened == 1
    assert _staff_row(server, account).totp_last_step is not None


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


def test_the_limit_locks_go_with_the_daily_purge(session: Session) -> None:
    from paris_avenir.auth.models import SignInLimitLock
    from paris_avenir.retention.service import purge

    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    for destination in ("06 39 98 00 41", "06 39 98 00 42"):
        factories.request_code(
            session,
            secret_key="k" * 32,
            raw_destination=destination,
            ip_address="10.0.0.1",
            now=now,
        )
    # Two numbers and one address: three rows, whoever asks again reuses them.
    assert session.scalar(select(func.count()).select_from(SignInLimitLock)) == 3
    purge(session, now=now + timedelta(hours=23))
    assert session.scalar(select(func.count()).select_from(SignInLimitLock)) == 3
    purge(session, now=now + timedelta(hours=25))
    assert session.scalar(select(func.count()).select_from(SignInLimitLock)) == 0
