"""Staff local accounts: argon2 password plus a mandatory TOTP code; locked after repeated
failures. Never SMS for staff (SIM swapping).

Both counters are kept in the account's row by conditional UPDATEs, so they hold when many
requests arrive at once: the lock comes after exactly MAX_FAILURES failures, and a TOTP code
opens one session even when it is sent 30 times in parallel."""

from __future__ import annotations

import contextlib
import enum
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import InvalidToken, MultiFernet
from sqlalchemy import ColumnElement, case, func, or_, select, update
from sqlalchemy.orm import Session

from paris_avenir.db import utcnow
from paris_avenir.staff.models import StaffRole, StaffUser, Team
from paris_avenir.web.i18n import gettext

MAX_FAILURES = 5
LOCK_DURATION = timedelta(minutes=15)
TOTP_ISSUER = "Paris avenir"
_hasher = PasswordHasher()
# Verifying against this when the email is unknown costs the same time as a real check.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)


@dataclass(frozen=True)
class CreatedStaff:
    staff: StaffUser
    password: str
    totp_uri: str


def create_staff(
    session: Session,
    cipher: MultiFernet,
    *,
    email: str,
    full_name: str,
    role: StaffRole,
    team_name: str | None = None,
    password: str | None = None,
) -> CreatedStaff:
    password = password or secrets.token_urlsafe(15)
    totp_secret = new_totp_secret()
    staff = new_account(session, email=email, full_name=full_name, role=role, team_name=team_name)
    staff.password_hash = hash_password(password)
    staff.totp_secret_encrypted = cipher.encrypt(totp_secret.encode()).decode()
    session.flush()
    return CreatedStaff(staff, password, provisioning_uri(totp_secret, staff.email))


def new_account(
    session: Session, *, email: str, full_name: str, role: StaffRole, team_name: str | None
) -> StaffUser:
    """A staff account without secrets (the team created on first use); ValueError when the
    email is taken."""
    email = email.strip().lower()
    if session.scalar(select(StaffUser).where(func.lower(StaffUser.email) == email)):
        raise ValueError(gettext("Un compte existe déjà avec cet e-mail."))
    team = None
    if team_name:
        team = session.scalar(select(Team).where(Team.name == team_name))
        if team is None:
            team = Team(name=team_name)
            session.add(team)
            session.flush()
    staff = StaffUser(
        email=email, full_name=full_name, role=role, team_id=team.id if team else None
    )
    session.add(staff)
    session.flush()
    return staff


class SignInOutcome(enum.StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"  # wrong email, password or code, or a locked or disabled account


@dataclass(frozen=True)
class StaffSignIn:
    outcome: SignInOutcome
    staff: StaffUser | None = None  # set when the account exists, for the audit log
    locked_now: bool = False  # this failure was the one that locked the account


def totp_step(secret: str, code: str, now: datetime, last_step: int | None = None) -> int | None:
    """The time step this code belongs to (±1 step of clock drift), unless already used."""
    code = code.strip().replace(" ", "")
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in (current - 1, current, current + 1):
        if secrets.compare_digest(totp.generate_otp(step), code) and (
            last_step is None or step > last_step
        ):
            return step
    return None


def verify_password(staff: StaffUser, password: str) -> bool:
    if staff.password_hash is None:
        return False
    try:
        return _hasher.verify(staff.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _unlocked(now: datetime) -> ColumnElement[bool]:
    return or_(StaffUser.locked_until.is_(None), StaffUser.locked_until <= now)


def claim_totp_step(session: Session, staff: StaffUser, step: int, *, now: datetime) -> bool:
    """Marks the account's TOTP step used, once: the row keeps the last step used, and only
    a later one may follow, so of parallel sign-ins with one code exactly one gets True.
    False as well when the account was locked meanwhile."""
    claimed = session.execute(
        update(StaffUser)
        .where(
            StaffUser.id == staff.id,
            or_(StaffUser.totp_last_step.is_(None), StaffUser.totp_last_step < step),
            _unlocked(now),
        )
        .values(totp_last_step=step)
        .returning(StaffUser.id)
    ).first()
    return claimed is not None


def record_failure(session: Session, staff: StaffUser, *, now: datetime) -> bool:
    """Counts one failed sign-in in the row itself; the MAX_FAILURES-th locks the account for
    LOCK_DURATION and restarts the count. Failures during a lock are not counted. True when
    this failure locked the account (exactly one of 30 parallel wrong passwords)."""
    failures = StaffUser.failed_sign_in_count + 1
    locks = failures >= MAX_FAILURES
    locked_until = session.execute(
        update(StaffUser)
        .where(StaffUser.id == staff.id, _unlocked(now))
        .values(
            failed_sign_in_count=case((locks, 0), else_=failures),
            locked_until=case((locks, now + LOCK_DURATION), else_=StaffUser.locked_until),
        )
        .returning(StaffUser.locked_until)
    ).first()
    return locked_until is not None and locked_until[0] is not None and locked_until[0] > now


def sign_in(
    session: Session,
    cipher: MultiFernet,
    *,
    email: str,
    password: str,
    totp_code: str,
    now: datetime | None = None,
) -> StaffSignIn:
    now = now or utcnow()
    staff = session.scalar(
        select(StaffUser).where(func.lower(StaffUser.email) == email.strip().lower())
    )
    if staff is None or staff.password_hash is None or staff.totp_secret_encrypted is None:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password)
        return StaffSignIn(SignInOutcome.REFUSED, staff)
    if not staff.is_active or (staff.locked_until is not None and staff.locked_until > now):
        return StaffSignIn(SignInOutcome.REFUSED, staff)
    password_ok = verify_password(staff, password)
    try:
        secret = cipher.decrypt(staff.totp_secret_encrypted.encode()).decode()
    except InvalidToken:
        secret = None
    step = totp_step(secret, totp_code, now, staff.totp_last_step) if secret else None
    # A code already used (a replay, or the same form sent twice) is a failure too.
    if not password_ok or step is None or not claim_totp_step(session, staff, step, now=now):
        locked_now = record_failure(session, staff, now=now)
        return StaffSignIn(SignInOutcome.REFUSED, staff, locked_now=locked_now)
    if _hasher.check_needs_rehash(staff.password_hash):
        staff.password_hash = hash_password(password)
    staff.failed_sign_in_count = 0
    staff.locked_until = None
    staff.last_sign_in_at = now
    return StaffSignIn(SignInOutcome.ACCEPTED, staff)
