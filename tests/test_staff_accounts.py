"""Staff secrets stay theirs: an admin creates an account and gets a one-time activation
link, never a password or a TOTP secret; the person who opens it chooses a password (12
characters, not a common one) and enrols TOTP; from "Mon compte" they change either. The
link works once, even opened 30 times at the same moment on PostgreSQL."""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pyotp
import pytest
import time_machine
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-untyped]

from paris_avenir.audit.models import AuditEvent
from paris_avenir.auth import sessions, staff_account
from paris_avenir.auth.models import AuthMethod, StaffActivation, UserSession
from paris_avenir.db import create_database_engine, utcnow
from paris_avenir.migrate import upgrade_to_head
from paris_avenir.staff.models import StaffRole, StaffUser
from tests.conftest import postgres_schema_url
from tests.factories import create_staff
from tests.helpers import CliResult, csrf_token, post_form, run_cli, sign_in_as
from tests.servers import RacePlatform, race_platform

STRONG = "lampadaire girafe orageuse 42"
COMMON = next(word for word in FREQUENCY_LISTS["passwords"] if len(word) >= 12)
SECRET_IN_PAGE = re.compile(r'id="totp-secret">([A-Z2-7]{32})<')


@pytest.fixture
def admin_staff(app: FastAPI, client: httpx.AsyncClient, session: Session) -> StaffUser:
    admin = create_staff(session, StaffRole.ADMIN, full_name="Claire Admin")
    sign_in_as(client, app, session, staff=admin)
    return admin


async def _invite(client: httpx.AsyncClient, email: str = "nadia@example.org") -> str:
    created = await post_form(
        client,
        "/pro/admin/agents",
        {"email": email, "nom": "Nadia Benali", "role": "referent", "equipe": "Est"},
    )
    assert created.status_code == 200
    link = re.search(r'id="lien-activation">http://[^/]+(/pro/activation/[^<]+)<', created.text)
    assert link, "the activation link is shown to the admin once"
    assert "otpauth" not in created.text and "Mot de passe provisoire" not in created.text
    return link.group(1)


async def _activation_secret(client: httpx.AsyncClient, link: str) -> str:
    page = await client.get(link)
    assert page.status_code == 200 and "<svg" in page.text  # the QR code
    found = SECRET_IN_PAGE.search(page.text)
    assert found
    return found.group(1)


async def _activate(
    client: httpx.AsyncClient,
    link: str,
    *,
    password: str = STRONG,
    confirmation: str | None = None,
    code: str,
) -> httpx.Response:
    token = await csrf_token(client, link)
    return await client.post(
        link,
        data={
            "csrftoken": token,
            "password": password,
            "confirmation": password if confirmation is None else confirmation,
            "totp": code,
        },
    )


async def _sign_in(client: httpx.AsyncClient, password: str, code: str) -> httpx.Response:
    return await post_form(
        client,
        "/pro/connexion",
        {"email": "nadia@example.org", "password": password, "totp": code},
    )


def _next_code(secret: str) -> str:
    """A code of the next time step (accepted for clock drift, not yet used)."""
    return str(pyotp.TOTP(secret).at(utcnow() + timedelta(seconds=30)))


async def test_the_new_staff_member_chooses_password_and_totp_and_the_admin_sees_neither(
    app: FastAPI, client: httpx.AsyncClient, session: Session, admin_staff: StaffUser
) -> None:
    link = await _invite(client)
    session.expire_all()
    account = session.scalars(select(StaffUser).where(StaffUser.email == "nadia@example.org")).one()
    assert (account.password_hash, account.totp_secret_encrypted) == (None, None)
    stored = session.scalars(select(StaffActivation)).one()
    assert link.rsplit("/", 1)[1] not in stored.token_hash  # only the hash is kept
    listing = (await client.get("/pro/admin/agents")).text
    assert "en attente d’activation" in listing and "/pro/activation/" not in listing

    client.cookies.clear()  # the new staff member's own browser
    secret = await _activation_secret(client, link)
    assert secret not in (stored.totp_secret_encrypted or "")
    code = pyotp.TOTP(secret).now()
    for password, confirmation, expected in (
        ("court1234", None, "12 caractères au moins"),
        (COMMON, None, "plus courants"),
        ("azertyuiop123", None, "trop facile à deviner"),
        (STRONG, STRONG + "x", "pas identiques"),
    ):
        refused = await _activate(
            client, link, password=password, confirmation=confirmation, code=code
        )
        assert refused.status_code == 422 and expected in refused.text, password
    wrong_code = await _activate(client, link, code="000000" if code != "000000" else "111111")
    assert wrong_code.status_code == 422 and "ne correspond pas" in wrong_code.text

    done = await _activate(client, link, code=code)
    assert done.status_code == 303 and done.headers["location"] == "/pro/connexion?active=1"
    assert "Votre compte est activé" in (await client.get(done.headers["location"])).text
    again = await client.get(link)
    assert again.status_code == 410 and "ne fonctionne plus" in again.text
    # The enrolment code cannot sign in too; the next one does, with the chosen password.
    assert (await _sign_in(client, STRONG, code)).status_code == 422
    signed_in = await _sign_in(client, STRONG, _next_code(secret))
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/pro"
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.object_id == account.id)
    ).all()
    assert {"staff.created", "staff.activation_issued", "staff.activated"} <= set(actions)


async def test_an_activation_link_expires_after_72_hours(
    client: httpx.AsyncClient, session: Session, admin_staff: StaffUser
) -> None:
    link = await _invite(client)
    client.cookies.clear()
    secret = await _activation_secret(client, link)
    with time_machine.travel(utcnow() + timedelta(hours=72, minutes=1)):
        late = await client.get(link)
        assert late.status_code == 410
        refused = await _activate(client, link, code=pyotp.TOTP(secret).now())
        assert refused.status_code == 410
    session.expire_all()
    assert (
        session.scalars(
            select(StaffUser.password_hash).where(StaffUser.email == "nadia@example.org")
        ).one()
        is None
    )


async def test_the_admin_resets_lost_secrets_with_a_new_link(
    app: FastAPI, client: httpx.AsyncClient, session: Session, admin_staff: StaffUser
) -> None:
    link = await _invite(client)
    admin_cookies = dict(client.cookies)
    client.cookies.clear()
    secret = await _activation_secret(client, link)
    assert (await _activate(client, link, code=pyotp.TOTP(secret).now())).status_code == 303
    session.expire_all()
    account = session.scalars(select(StaffUser).where(StaffUser.email == "nadia@example.org")).one()
    token = sign_in_as(client, app, session, staff=account)
    client.cookies.clear()
    client.cookies.update(admin_cookies)
    reset = await post_form(client, f"/pro/admin/agents/{account.id}/activation")
    assert reset.status_code == 200 and "ne marchent plus" in reset.text
    new_link = re.search(r'id="lien-activation">http://[^/]+(/pro/activation/[^<]+)<', reset.text)
    assert new_link and new_link.group(1) != link
    session.expire_all()
    assert sessions.find_active(session, token) is None  # their sessions ended
    client.cookies.clear()
    assert (await _sign_in(client, STRONG, _next_code(secret))).status_code == 422
    assert (await client.get(new_link.group(1))).status_code == 200
    client.cookies.clear()
    client.cookies.update(admin_cookies)
    own = await post_form(client, f"/pro/admin/agents/{admin_staff.id}/activation")
    assert own.status_code == 422 and "Mon compte" in own.text


async def test_staff_change_their_password_and_totp_from_their_account(
    app: FastAPI, client: httpx.AsyncClient, session: Session, admin_staff: StaffUser
) -> None:
    link = await _invite(client)
    client.cookies.clear()
    secret = await _activation_secret(client, link)
    assert (await _activate(client, link, code=pyotp.TOTP(secret).now())).status_code == 303
    assert (await _sign_in(client, STRONG, _next_code(secret))).status_code == 303
    session.expire_all()
    account = session.scalars(select(StaffUser).where(StaffUser.email == "nadia@example.org")).one()
    elsewhere = sessions.start_session(
        session, staff_id=account.id, method=AuthMethod.PASSWORD_TOTP
    )
    session.commit()

    page = await client.get("/pro/compte")
    assert page.status_code == 200 and "Changer de mot de passe" in page.text
    new_password = "tabouret cerf-volant minuit 7"
    wrong = await post_form(
        client,
        "/pro/compte/mot-de-passe",
        {"actuel": "pas le bon", "nouveau": new_password, "confirmation": new_password},
    )
    assert wrong.status_code == 422 and "actuel n’est pas le bon" in wrong.text
    weak = await post_form(
        client,
        "/pro/compte/mot-de-passe",
        {"actuel": STRONG, "nouveau": "a", "confirmation": "a"},
    )
    assert weak.status_code == 422 and "12 caractères" in weak.text
    changed = await post_form(
        client,
        "/pro/compte/mot-de-passe",
        {"actuel": STRONG, "nouveau": new_password, "confirmation": new_password},
    )
    assert changed.status_code == 303
    assert "Votre mot de passe est changé" in (await client.get(changed.headers["location"])).text
    session.expire_all()
    assert sessions.find_active(session, elsewhere.token) is None  # other sessions end

    # A new phone: a fresh secret, confirmed by one of its codes and the password.
    page = await client.get("/pro/compte")
    fresh = SECRET_IN_PAGE.search(page.text)
    assert fresh and fresh.group(1) != secret
    bad = await post_form(
        client,
        "/pro/compte/totp",
        {"actuel": new_password, "secret": fresh.group(1), "totp": "12345"},
    )
    assert bad.status_code == 422 and "ne correspond pas" in bad.text
    assert fresh.group(1) in bad.text  # the same secret, to try again
    enrolled = await post_form(
        client,
        "/pro/compte/totp",
        {
            "actuel": new_password,
            "secret": fresh.group(1),
            "totp": pyotp.TOTP(fresh.group(1)).now(),
        },
    )
    assert enrolled.status_code == 303
    audits = session.scalars(
        select(AuditEvent.action).where(AuditEvent.actor_staff_id == account.id)
    ).all()
    assert {"staff.password_changed", "staff.totp_reenrolled"} <= set(audits)
    client.cookies.clear()
    assert (await _sign_in(client, STRONG, _next_code(fresh.group(1)))).status_code == 422
    assert (await _sign_in(client, new_password, _next_code(secret))).status_code == 422
    assert (await _sign_in(client, new_password, _next_code(fresh.group(1)))).status_code == 303


async def test_wrong_current_passwords_on_my_account_lock_it_like_the_sign_in(
    app: FastAPI, client: httpx.AsyncClient, session: Session, admin_staff: StaffUser
) -> None:
    """A session left open on a shared computer is not a way to try passwords: five wrong
    current passwords lock the account and end its sessions, this one included."""
    link = await _invite(client)
    client.cookies.clear()
    secret = await _activation_secret(client, link)
    assert (await _activate(client, link, code=pyotp.TOTP(secret).now())).status_code == 303
    assert (await _sign_in(client, STRONG, _next_code(secret))).status_code == 303
    new_password = "tabouret cerf-volant minuit 7"
    for form in ("mot-de-passe", "totp") * 2 + ("mot-de-passe",):
        fields = {"actuel": "pas le bon"}
        fields |= (
            {"nouveau": new_password, "confirmation": new_password}
            if form == "mot-de-passe"
            else {"secret": "A" * 32, "totp": "123456"}
        )
        wrong = await post_form(client, f"/pro/compte/{form}", fields)
        assert wrong.status_code == 422 and "actuel n’est pas le bon" in wrong.text
    session.expire_all()
    account = session.scalars(select(StaffUser).where(StaffUser.email == "nadia@example.org")).one()
    assert account.locked_until is not None and account.locked_until > utcnow()
    # Signed out, and the right password does not open it before the lock ends.
    assert (await client.get("/pro/compte")).status_code in {303, 401}
    client.cookies.clear()
    assert (await _sign_in(client, STRONG, _next_code(secret))).status_code == 422


def test_the_password_policy() -> None:
    assert staff_account.password_problem("Abc123!") is not None
    assert staff_account.password_problem(COMMON) is not None
    assert staff_account.password_problem("x" * 129) is not None
    assert staff_account.password_problem("aaaaaaaaaaaaaaaa") is not None
    assert staff_account.password_problem(STRONG) is None


def test_create_staff_with_a_password_applies_the_same_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    upgrade_to_head(create_database_engine(database))
    environment = {"PARIS_AVENIR_DATABASE_URL": database}
    account = ["create-staff", "--email", "ops@example.org", "--name", "Ops", "--role", "admin"]

    def create(password: str) -> CliResult:
        return run_cli(
            monkeypatch, capsys, environment, *account, "--password-stdin", stdin=password + "\n"
        )

    short = create("a")
    assert short.returncode == 1 and "12 caractères" in short.stderr
    common = create(COMMON)
    assert common.returncode == 1 and "courants" in common.stderr
    created = create(STRONG)
    assert created.returncode == 0 and "otpauth://totp/" in created.stdout
    assert STRONG not in created.stdout


# --- 30 activations of one link at once, on PostgreSQL ----------------------------------

SCHEMA = "staff_account_races"
PARALLEL = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RacePlatform]:
    url = postgres_schema_url(SCHEMA, needed_for="races on PostgreSQL")
    with race_platform(url, tmp_path_factory.mktemp("accounts")) as platform:
        yield platform


def test_thirty_activations_of_one_link_at_once_activate_once(server: RacePlatform) -> None:
    with server.factory.begin() as session:
        invitation = staff_account.invite_staff(
            session,
            server.app.state.cipher,
            email="course@example.org",
            full_name="Course Essai",
            role=StaffRole.REFERENT,
            team_name=None,
            base_url=server.url,
            by=None,
        )
        staff_id = invitation.staff.id
    link = invitation.link.removeprefix(server.url)
    with httpx.Client(base_url=server.url) as client:
        page = client.get(link)
        token = re.search(r'"x-csrftoken": "([^"]+)"', page.text)
        secret = SECRET_IN_PAGE.search(page.text)
        assert page.status_code == 200 and token and secret
        cookies = dict(client.cookies)
    code = pyotp.TOTP(secret.group(1)).now()
    barrier = threading.Barrier(PARALLEL)

    def activate(index: int) -> int:
        barrier.wait()
        with httpx.Client(base_url=server.url, cookies=cookies, timeout=60) as client:
            response = client.post(
                link,
                data={
                    "csrftoken": token.group(1),
                    "password": f"{STRONG} {index}",
                    "confirmation": f"{STRONG} {index}",
                    "totp": code,
                },
            )
            return response.status_code

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        statuses = Counter(pool.map(activate, range(PARALLEL)))
    assert statuses[303] == 1 and statuses[303] + statuses[410] == PARALLEL, statuses
    with server.factory() as session:
        activations = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "staff.activated", AuditEvent.object_id == staff_id)
        )
        used = session.scalar(
            select(func.count())
            .select_from(StaffActivation)
            .where(StaffActivation.staff_id == staff_id, StaffActivation.used_at.is_not(None))
        )
        account = session.get_one(StaffUser, staff_id)
        assert (activations, used) == (1, 1) and account.password_hash is not None
        assert (
            session.scalar(
                select(func.count())
                .select_from(UserSession)
                .where(UserSession.staff_id == staff_id)
            )
            == 0
        )
