"""Staff sign in with a password and a TOTP code (never SMS), lock after failures, and
their sessions end when idle, after 10 hours, at sign-out or when the account is disabled."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pyotp
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.audit.models import AuditEvent
from paris_avenir.auth import sessions
from paris_avenir.auth.models import AuthMethod
from paris_avenir.auth.staff_local import CreatedStaff, create_staff
from paris_avenir.backoffice.team import disable_staff
from paris_avenir.db import create_database_engine, utcnow
from paris_avenir.migrate import upgrade_to_head
from paris_avenir.staff.models import StaffRole
from tests.helpers import post_form, run_cli

PASSWORD = "correct horse battery staple"


@pytest.fixture
def account(app: FastAPI, session: Session) -> CreatedStaff:
    created = create_staff(
        session,
        app.state.cipher,
        email="Awa.Referente@example.org",
        full_name="Awa Référente",
        role=StaffRole.REFERENT,
        password=PASSWORD,
    )
    session.commit()
    return created


def current_code(account: CreatedStaff) -> str:
    return str(pyotp.TOTP(pyotp.parse_uri(account.totp_uri).secret).now())


async def sign_in(
    client: httpx.AsyncClient,
    *,
    password: str = PASSWORD,
    code: str,
    email: str = "awa.referente@example.org",
) -> httpx.Response:
    return await post_form(
        client, "/pro/connexion", {"email": email, "password": password, "totp": code}
    )


async def test_password_and_totp_open_the_back_office(
    client: httpx.AsyncClient, account: CreatedStaff, session: Session
) -> None:
    response = await sign_in(client, code=current_code(account))
    assert response.status_code == 303 and response.headers["location"] == "/pro"
    page = await client.get("/pro")
    assert page.status_code == 200 and "Mes jeunes" in page.text
    assert session.scalars(
        select(AuditEvent.action).where(AuditEvent.actor_staff_id == account.staff.id)
    ).all() == ["staff.sign_in"]


async def test_the_secret_is_stored_encrypted_and_the_password_hashed(
    account: CreatedStaff,
) -> None:
    secret = pyotp.parse_uri(account.totp_uri).secret
    assert account.staff.totp_secret_encrypted and secret not in account.staff.totp_secret_encrypted
    assert account.staff.password_hash and account.staff.password_hash.startswith("$argon2id$")


@pytest.mark.parametrize("wrong", ["password", "code"])
async def test_a_wrong_password_or_code_is_refused_the_same_way(
    client: httpx.AsyncClient, account: CreatedStaff, wrong: str
) -> None:
    code = current_code(account)
    bad_code = f"{(int(code) + 1) % 1_000_000:06d}"
    response = await sign_in(
        client,
        password="nope" if wrong == "password" else PASSWORD,
        code=bad_code if wrong == "code" else code,
    )
    assert response.status_code == 422
    assert "Connexion refusée" in response.text
    assert (await client.get("/pro")).status_code == 303


async def test_an_unknown_email_is_refused_like_a_wrong_password(client: httpx.AsyncClient) -> None:
    response = await sign_in(client, email="personne@example.org", code="123456")
    assert response.status_code == 422 and "Connexion refusée" in response.text


async def test_a_totp_code_cannot_be_replayed(
    client: httpx.AsyncClient, account: CreatedStaff
) -> None:
    code = current_code(account)
    assert (await sign_in(client, code=code)).status_code == 303
    await post_form(client, "/deconnexion")
    assert (await sign_in(client, code=code)).status_code == 422


async def test_five_failures_lock_the_account(
    client: httpx.AsyncClient, account: CreatedStaff, session: Session
) -> None:
    for _ in range(5):
        await sign_in(client, password="wrong", code=current_code(account))
    session.refresh(account.staff)
    assert account.staff.locked_until is not None
    assert account.staff.locked_until - utcnow() > timedelta(minutes=14)
    response = await sign_in(client, code=current_code(account))  # right credentials, locked
    assert response.status_code == 422


def test_staff_sessions_end_after_30_minutes_idle_and_10_hours(
    session: Session, account: CreatedStaff
) -> None:
    now = utcnow()
    new = sessions.start_session(
        session, staff_id=account.staff.id, method=AuthMethod.PASSWORD_TOTP, now=now
    )
    assert sessions.find_active(session, new.token, now=now + timedelta(minutes=29)) is not None
    assert sessions.find_active(session, new.token, now=now + timedelta(minutes=29 + 31)) is None

    busy = sessions.start_session(
        session, staff_id=account.staff.id, method=AuthMethod.PASSWORD_TOTP, now=now
    )
    for step in range(1, 30):  # active every 20 minutes until 9 h 40
        moment = now + timedelta(minutes=20 * step)
        assert sessions.find_active(session, busy.token, now=moment) is not None
    assert (
        sessions.find_active(session, busy.token, now=now + timedelta(hours=10, minutes=1)) is None
    )


def test_youth_sessions_stay_on_their_phone(session: Session) -> None:
    from tests.factories import create_youth

    youth = create_youth(session)
    now = utcnow()
    new = sessions.start_session(session, youth_id=youth.id, method=AuthMethod.CODE, now=now)
    assert sessions.find_active(session, new.token, now=now + timedelta(days=30)) is not None
    assert not sessions.is_recently_authenticated(new.record, now=now + timedelta(minutes=16))


async def test_disabling_an_account_ends_all_its_sessions(
    app: FastAPI, client: httpx.AsyncClient, account: CreatedStaff, session: Session
) -> None:
    assert (await sign_in(client, code=current_code(account))).status_code == 303
    assert (await client.get("/pro")).status_code == 200
    disable_staff(session, account.staff, by=None)
    session.commit()
    assert (await client.get("/pro")).status_code == 303


def test_create_staff_prints_the_totp_uri_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    upgrade_to_head(create_database_engine(database))
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("PARIS_AVENIR_")
    }
    environment["PARIS_AVENIR_DATABASE_URL"] = database
    # The console script's real process once; the refusal that follows in this process.
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "paris_avenir.cli",
            "create-staff",
            "--email",
            "nadia@example.org",
            "--name",
            "Nadia Essai",
            "--role",
            "referent",
            "--team",
            "Sud",
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # Without --password-stdin, an activation link: the person chooses password and TOTP.
    assert "/pro/activation/" in created.stdout and "otpauth" not in created.stdout
    again = run_cli(
        monkeypatch,
        capsys,
        {"PARIS_AVENIR_DATABASE_URL": database},
        *("create-staff", "--email", "nadia@example.org", "--name", "N", "--role", "referent"),
    )
    assert again.returncode == 1 and "otpauth" not in again.stdout
