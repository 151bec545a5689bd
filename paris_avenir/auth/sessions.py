"""Server-side sessions: the cookie holds a random token, the database its hash.

Youth sessions last long on their own phone: they end after 90 days without a visit, and
90 days after the sign-in whatever the visits (then the youth signs in again, and the
sign-in page says why); sensitive changes ask for a fresh sign-in. Staff sessions end after
30 minutes idle and 10 hours in all.
Signing out, or disabling a staff account, revokes on the server: the old cookie is dead.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request, Response
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from paris_avenir.auth.models import AuthMethod, UserSession
from paris_avenir.config import Settings
from paris_avenir.db import utcnow
from paris_avenir.kit.crypto import new_token, token_hash
from paris_avenir.staff import assignments
from paris_avenir.staff.models import StaffUser
from paris_avenir.youths.activity import on_phone_reported_wrong
from paris_avenir.youths.models import Youth

YOUTH_LIFETIME = timedelta(days=90)  # without a visit (sliding)
YOUTH_MAX_LIFETIME = timedelta(days=90)  # after the sign-in, whatever the activity
# The cookie outlives the session by this much, so that the sign-in page can tell the youth
# why they must sign in again (the server-side session is dead either way).
YOUTH_COOKIE_GRACE = timedelta(days=30)
STAFF_IDLE_TIMEOUT = timedelta(minutes=30)
STAFF_LIFETIME = timedelta(hours=10)
# A youth's sensitive change (new phone, data export, linking FranceConnect) needs a
# sign-in this recent.
RECENT_AUTHENTICATION = timedelta(minutes=15)
# Writing last_seen_at on every request would turn every page view into a write.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class NewSession:
    token: str
    record: UserSession


def start_session(
    session: Session,
    *,
    youth_id: uuid.UUID | None = None,
    staff_id: uuid.UUID | None = None,
    method: AuthMethod,
    replacing_token: str | None = None,
    id_token: str | None = None,
    now: datetime | None = None,
) -> NewSession:
    """A new session (always a new id: no fixation), revoking the one it replaces."""
    if (youth_id is None) == (staff_id is None):
        raise ValueError("a session belongs to exactly one youth or one staff member")
    now = now or utcnow()
    if replacing_token:
        revoke(session, replacing_token, now=now)
    token = new_token()
    lifetime = min(YOUTH_LIFETIME, YOUTH_MAX_LIFETIME) if youth_id else STAFF_LIFETIME
    record = UserSession(
        token_hash=token_hash(token),
        youth_id=youth_id,
        staff_id=staff_id,
        auth_method=method,
        authenticated_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
        id_token=id_token,
    )
    session.add(record)
    session.flush()
    return NewSession(token=token, record=record)


# Built once, with a bound value: every signed-in request runs it, and a statement built per
# call costs its construction and cache key again (70 µs a lookup instead of 130 µs on SQLite).
_BY_TOKEN_HASH = select(UserSession).where(UserSession.token_hash == bindparam("token_hash"))


_WITH_YOUTH_BY_TOKEN_HASH = assignments.with_current_referent(
    select(UserSession, Youth)
    .outerjoin(Youth, Youth.id == UserSession.youth_id)
    .where(UserSession.token_hash == bindparam("token_hash")),
    UserSession.youth_id,
)


def find_active(
    session: Session, token: str | None, *, now: datetime | None = None
) -> UserSession | None:
    """The live session behind a cookie, or None (unknown, revoked, expired or idle)."""
    if not token:
        return None
    record = session.scalar(_BY_TOKEN_HASH, {"token_hash": token_hash(token)})
    return _still_live(record, now or utcnow())


@dataclass(frozen=True)
class YouthSignedIn:
    record: UserSession | None
    youth: Youth | None  # None unless the session is live and a youth's
    referent: StaffUser | None  # who follows that youth now (staff.assignments)


def find_active_with_youth(
    session: Session, token: str | None, *, now: datetime | None = None
) -> YouthSignedIn:
    """find_active, the youth it belongs to and their current référent, in one statement:
    every page of the youth's space starts with the three."""
    if not token:
        return YouthSignedIn(None, None, None)
    row = session.execute(_WITH_YOUTH_BY_TOKEN_HASH, {"token_hash": token_hash(token)}).first()
    record = _still_live(row[0], now or utcnow()) if row is not None else None
    if row is None or record is None or row[1] is None:
        return YouthSignedIn(record, None, None)
    return YouthSignedIn(record, row[1], row[2])


def _still_live(record: UserSession | None, now: datetime) -> UserSession | None:
    if record is None or record.revoked_at is not None or record.expires_at <= now:
        return None
    if record.youth_id is not None and now >= record.authenticated_at + YOUTH_MAX_LIFETIME:
        return None  # also for a session whose expiry slid on before this cap existed
    if record.staff_id is not None and now - record.last_seen_at > STAFF_IDLE_TIMEOUT:
        record.revoked_at = now
        record.id_token = None
        return None
    if now - record.last_seen_at >= LAST_SEEN_RESOLUTION:
        record.last_seen_at = now
        if record.youth_id is not None:
            # Slides with each visit, never past the absolute end.
            record.expires_at = min(
                now + YOUTH_LIFETIME, record.authenticated_at + YOUTH_MAX_LIFETIME
            )
    return record


def ended_by_max_lifetime(
    session: Session, token: str | None, *, now: datetime | None = None
) -> bool:
    """The youth session behind this cookie is over only because it reached its absolute
    lifetime (not signed out, not revoked): the sign-in page explains it."""
    if not token:
        return False
    now = now or utcnow()
    record = session.scalar(select(UserSession).where(UserSession.token_hash == token_hash(token)))
    return (
        record is not None
        and record.youth_id is not None
        and record.revoked_at is None
        and now >= record.authenticated_at + YOUTH_MAX_LIFETIME
    )


def revoke(session: Session, token: str, *, now: datetime | None = None) -> str | None:
    """Ends the session behind this token. Returns its provider's ID token when it had one
    (for the provider's sign-out), which the database no longer keeps."""
    id_token = session.scalar(
        select(UserSession.id_token).where(UserSession.token_hash == token_hash(token))
    )
    ended = session.execute(
        update(UserSession)
        .where(UserSession.token_hash == token_hash(token), UserSession.revoked_at.is_(None))
        .values(revoked_at=now or utcnow(), id_token=None)
        .returning(UserSession.id)
        .execution_options(synchronize_session=False)
    ).first()
    # Of two sign-outs at once, only the one that ended the session goes on to the provider.
    return id_token if ended is not None else None


def revoke_all_for_staff(
    session: Session, staff_id: uuid.UUID, *, now: datetime | None = None
) -> None:
    session.execute(
        update(UserSession)
        .where(UserSession.staff_id == staff_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=now or utcnow(), id_token=None)
    )


def revoke_code_sessions_for_youth(
    session: Session, youth_id: uuid.UUID, *, now: datetime | None = None
) -> int:
    """Ends the youth's sessions opened with a one-time code (whoever held the number may
    hold them); FranceConnect and link sessions stay."""
    result = session.execute(
        update(UserSession)
        .where(
            UserSession.youth_id == youth_id,
            UserSession.auth_method == AuthMethod.CODE,
            UserSession.revoked_at.is_(None),
        )
        .values(revoked_at=now or utcnow(), id_token=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def is_recently_authenticated(record: UserSession, *, now: datetime | None = None) -> bool:
    return (now or utcnow()) - record.authenticated_at <= RECENT_AUTHENTICATION


def set_session_cookie(response: Response, settings: Settings, token: str, *, staff: bool) -> None:
    response.set_cookie(
        settings.session_cookie_name,
        token,
        max_age=None if staff else int((YOUTH_MAX_LIFETIME + YOUTH_COOKIE_GRACE).total_seconds()),
        path="/",
        secure=settings.is_prod,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        settings.session_cookie_name,
        path="/",
        secure=settings.is_prod,
        httponly=True,
        samesite="lax",
    )


def session_token(request: Request) -> str | None:
    settings: Settings = request.app.state.settings
    return request.cookies.get(settings.session_cookie_name)


def signed_in_as(request: Request) -> str | None:
    """On a page without sign-in dependency (the home page, the rights, the sign-in page):
    "youth" or "staff" when the session cookie belongs to a live session, so that the header
    says "Mon espace" to a signed-in youth everywhere. Only with a session cookie; one
    indexed read on a deferred (never locking) connection, which changes nothing: the
    session's expiry slides only on pages that need the sign-in."""
    # The page shell (web/templating.py) calls this through app.state.signed_in_as.
    if getattr(request.state, "viewer_youth", None) or getattr(request.state, "viewer_staff", None):
        return None  # the page's own dependency knows better
    token = request.cookies.get(request.app.state.settings.session_cookie_name)
    if not token:
        return None
    now = utcnow()
    query = (
        select(UserSession.youth_id, UserSession.authenticated_at, UserSession.last_seen_at)
        .outerjoin(StaffUser, StaffUser.id == UserSession.staff_id)
        .where(
            UserSession.token_hash == token_hash(token),
            UserSession.revoked_at.is_(None),
            UserSession.expires_at > now,
            (UserSession.youth_id.is_not(None)) | StaffUser.is_active.is_(True),
        )
    )
    with request.app.state.session_factory() as session:
        connection = session.connection(execution_options={"sqlite_deferred": True})
        row = connection.execute(query).first()
    if row is None:
        return None
    if row.youth_id is not None:
        live = now < row.authenticated_at + YOUTH_MAX_LIFETIME
        return "youth" if live else None
    return "staff" if now - row.last_seen_at <= STAFF_IDLE_TIMEOUT else None


@on_phone_reported_wrong
def end_code_sessions(session: Session, youth: Youth, now: datetime) -> None:
    """A number someone else answers: whoever holds that phone may hold a code session."""
    revoke_code_sessions_for_youth(session, youth.id, now=now)
