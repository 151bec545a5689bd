"""Youth sign-in with a one-time code sent by SMS or email.

The code: 6 digits from `secrets`, stored as an HMAC bound to this attempt, valid 10
minutes, single use, void after 5 wrong tries. Unknown numbers and emails go through the
same steps (an attempt is recorded, the same pages answer) but nothing is sent, so nobody
can learn whether someone is registered. The request does the same database work for both;
the code is rendered and queued after the response (`queue_code_now`), so both answer
in the same time.

Every counter holds under parallel requests: the rate limits are counted in the database
behind a row lock per destination and per client address (so they hold across several web
instances too), and a wrong try, a use or an email fallback is one conditional UPDATE.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from paris_avenir.auth.models import SignInAttempt, SignInLimitLock
from paris_avenir.db import utcnow
from paris_avenir.kit import phone as phones
from paris_avenir.kit.crypto import (
    constant_time_equals,
    keyed_hash,
    new_numeric_code,
    new_token,
    token_hash,
)
from paris_avenir.kit.email_address import InvalidEmail, mask_email, normalise_email
from paris_avenir.kit.errors import DomainError
from paris_avenir.messaging import message_templates, outbox, texts
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.youths.models import Channel, Youth

CODE_LIFETIME = timedelta(minutes=10)
MAX_WRONG_TRIES = 5
# (window, most codes in it), per number or email: these carry the weight. Nobody guesses a
# code this way (at most 3 codes × 5 tries in 15 minutes for one number), nor floods one
# phone with SMS.
DESTINATION_LIMITS = ((timedelta(minutes=15), 3), (timedelta(hours=24), 10))
# Per client address, only a flood from one address is stopped: a shelter's or a youth
# hostel's Wi-Fi, a school, a mobile operator's shared address (CGNAT) or a misconfigured
# proxy put many youths behind one address, and a limit near the city's own sign-in traffic
# (a few hundred codes a day) would lock them all out.
IP_LIMITS = ((timedelta(minutes=15), 100), (timedelta(hours=24), 500))
# Rows of SignInLimitLock older than the longest window serve nothing any more.
LIMIT_LOCKS_KEPT = max(window for window, _most in DESTINATION_LIMITS + IP_LIMITS)


class InvalidDestination(DomainError):
    pass


class RateLimited(Exception):
    pass


@dataclass(frozen=True)
class Destination:
    channel: Channel
    value: str
    masked: str


def parse_destination(raw: str) -> Destination:
    raw = raw.strip()
    if "@" in raw:
        try:
            value = normalise_email(raw)
        except InvalidEmail:
            raise InvalidDestination(raw) from None
        return Destination(Channel.EMAIL, value, mask_email(value))
    try:
        value = phones.normalise_phone(raw)
    except phones.InvalidPhoneNumber:
        raise InvalidDestination(raw) from None
    return Destination(Channel.SMS, value, phones.mask(value))


def _code_hash(secret_key: str, attempt_token: str, code: str) -> str:
    return keyed_hash(secret_key, f"{attempt_token}:{code}", purpose="sign-in-code")


def _recent_count(
    session: Session, column: InstrumentedAttribute[str], value: str, since: datetime
) -> int:
    count = session.scalar(
        select(func.count())
        .select_from(SignInAttempt)
        .where(column == value, SignInAttempt.created_at >= since)
    )
    return int(count or 0)


def _lock_limits(session: Session, key_hashes: Iterable[str], now: datetime) -> None:
    """Takes the row lock of each key (creating its row the first time), in one order for
    every request so that two requests never wait for each other in a circle. Held until
    the commit: the next request for the same number or address counts after this one's
    attempt is written. On SQLite the IMMEDIATE transaction already runs writers one at a
    time; the same statement keeps one code path."""
    dialect = session.get_bind().dialect.name
    for key_hash in sorted(key_hashes):
        values = {"key_hash": key_hash, "last_request_at": now}
        changes = {"last_request_at": now, "modified_at": now}
        if dialect == "postgresql":
            session.execute(
                postgresql.insert(SignInLimitLock)
                .values(values)
                .on_conflict_do_update(index_elements=["key_hash"], set_=changes)
            )
        else:
            session.execute(
                sqlite.insert(SignInLimitLock)
                .values(values)
                .on_conflict_do_update(index_elements=["key_hash"], set_=changes)
            )


def purge_limit_locks(session: Session, *, now: datetime) -> int:
    """Deletes the lock rows no window looks at any more (the daily purge)."""
    result = session.execute(
        delete(SignInLimitLock).where(SignInLimitLock.last_request_at < now - LIMIT_LOCKS_KEPT)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _check_limits(session: Session, destination_hash: str, ip_hash: str, now: datetime) -> None:
    _lock_limits(session, (destination_hash, ip_hash), now)
    for window, most in DESTINATION_LIMITS:
        if (
            _recent_count(session, SignInAttempt.destination_hash, destination_hash, now - window)
            >= most
        ):
            raise RateLimited
    for window, most in IP_LIMITS:
        if _recent_count(session, SignInAttempt.ip_hash, ip_hash, now - window) >= most:
            raise RateLimited


def _find_youth(session: Session, destination: Destination) -> Youth | None:
    column = Youth.phone if destination.channel is Channel.SMS else Youth.email
    matches = session.scalars(
        select(Youth)
        .where(column == destination.value, Youth.deletion_requested_at.is_(None))
        .limit(2)
    ).all()
    # A number shared by two youths (shared phones happen) cannot say who signs in: both
    # can still use their email.
    return matches[0] if len(matches) == 1 else None


@dataclass(frozen=True)
class PendingCode:
    """A code to render and queue after the response, for a known destination or not: the
    code itself lives only here, in memory, and in the message that carries it."""

    attempt_id: uuid.UUID
    channel: Channel
    code: str = field(repr=False)
    language: str | None = None


@dataclass(frozen=True)
class CodeRequest:
    attempt_token: str
    masked_destination: str
    pending: PendingCode


def queue_code(
    session: Session,
    *,
    youth: Youth,
    channel: Channel,
    recipient: str,
    code: str,
    template: str,
    key: str,
    now: datetime,
    language: str | None = None,
) -> OutboxMessage:
    """A one-time code to `recipient` in the youth's language, queued as urgent (sign-in
    codes, and codes proving a new phone number or email). `language` is the one the youth
    is reading the page in, when they chose it: the code comes in the same words."""
    language = language or youth.language
    subject: str | None = None
    html: str | None = None
    if channel is Channel.SMS:
        text = message_templates.render_sms(
            session,
            "sign_in_code",
            language,
            texts.sign_in_code_sms(code, language),
            code=code,
        )
    else:
        email = texts.sign_in_code_email(code, language)
        subject, text, html = email.subject, email.text, email.html
    return outbox.enqueue(
        session,
        channel=channel,
        recipient=recipient,
        template=template,
        subject=subject,
        body_text=text,
        body_html=html,
        idempotency_key=key,
        youth_id=youth.id,
        language=language,
        urgent=True,
        respects_quiet_hours=False,
        now=now,
    )


def _queue_code(
    session: Session,
    youth: Youth,
    attempt: SignInAttempt,
    channel: Channel,
    code: str,
    now: datetime,
    language: str | None = None,
) -> OutboxMessage:
    recipient = youth.phone if channel is Channel.SMS else youth.email
    assert recipient is not None
    return queue_code(
        session,
        youth=youth,
        channel=channel,
        recipient=recipient,
        code=code,
        template="sign_in_code",
        key=f"sign-in-code:{attempt.id}:{channel.value}:{attempt.expires_at.isoformat()}",
        now=now,
        language=language,
    )


def start_code_request(
    session: Session,
    *,
    secret_key: str,
    raw_destination: str,
    ip_address: str,
    language: str | None = None,
    now: datetime | None = None,
) -> CodeRequest:
    """What the sign-in request does, the same for a known and an unknown destination: the
    limits, the lookup, the attempt. The code leaves with `queue_code_now` once the
    response is gone. Raises InvalidDestination (not a number or an email) or RateLimited."""
    now = now or utcnow()
    destination = parse_destination(raw_destination)
    destination_hash = keyed_hash(
        secret_key,
        f"{destination.channel.value}:{destination.value}",
        purpose="sign-in-destination",
    )
    ip_hash = keyed_hash(secret_key, ip_address, purpose="sign-in-ip")
    _check_limits(session, destination_hash, ip_hash, now)
    youth = _find_youth(session, destination)
    attempt_token = new_token()
    code = new_numeric_code()
    attempt = SignInAttempt(
        created_at=now,
        token_hash=token_hash(attempt_token),
        channel=destination.channel,
        destination_hash=destination_hash,
        masked_destination=destination.masked,
        ip_hash=ip_hash,
        youth_id=youth.id if youth else None,
        code_hash=_code_hash(secret_key, attempt_token, code),
        expires_at=now + CODE_LIFETIME,
    )
    session.add(attempt)
    session.flush()
    pending = PendingCode(attempt.id, destination.channel, code, language)
    return CodeRequest(attempt_token, destination.masked, pending)


def queue_pending_code(
    session: Session, pending: PendingCode, *, now: datetime | None = None
) -> OutboxMessage | None:
    """Renders and queues the code, if the attempt has a youth who can get it there."""
    now = now or utcnow()
    attempt = session.get(SignInAttempt, pending.attempt_id)
    youth = session.get(Youth, attempt.youth_id) if attempt and attempt.youth_id else None
    if attempt is None or youth is None:
        return None
    recipient = youth.phone if pending.channel is Channel.SMS else youth.email
    # A number the team found to reach someone else gets nothing, and the same answer as an
    # unknown one: the code page still offers the youth's email.
    if not recipient or (
        pending.channel is Channel.SMS and youth.phone_reported_wrong_at is not None
    ):
        return None
    return _queue_code(
        session, youth, attempt, pending.channel, pending.code, now, pending.language
    )


def queue_code_now(
    session_factory: sessionmaker[Session], pending: PendingCode
) -> uuid.UUID | None:
    """After the response (a background task): queue the code in its own transaction and
    return the message to send at once. For an unknown destination, nothing is queued."""
    with session_factory.begin() as session:
        message = queue_pending_code(session, pending)
        return message.id if message is not None else None


def find_attempt(session: Session, attempt_token: str | None) -> SignInAttempt | None:
    if not attempt_token:
        return None
    return session.scalar(
        select(SignInAttempt).where(SignInAttempt.token_hash == token_hash(attempt_token))
    )


class CodeOutcome(enum.StrEnum):
    ACCEPTED = "accepted"
    WRONG = "wrong"
    VOIDED = "voided"  # too many wrong tries
    EXPIRED = "expired"  # too old, already used, or no attempt in this browser


@dataclass(frozen=True)
class CodeCheck:
    outcome: CodeOutcome
    youth: Youth | None = None
    tries_left: int = 0
    # The code came by SMS to the youth's number: that number works.
    proved_phone: bool = False


def check_code(
    session: Session,
    *,
    secret_key: str,
    attempt_token: str | None,
    code: str,
    now: datetime | None = None,
) -> CodeCheck:
    now = now or utcnow()
    attempt = find_attempt(session, attempt_token)
    if attempt is None or attempt.consumed_at is not None or attempt.expires_at <= now:
        return CodeCheck(CodeOutcome.EXPIRED)
    if attempt.voided_at is not None:
        return CodeCheck(CodeOutcome.VOIDED)
    assert attempt_token is not None
    candidate = _code_hash(secret_key, attempt_token, code.strip().replace(" ", ""))
    still_open = (
        SignInAttempt.id == attempt.id,
        SignInAttempt.consumed_at.is_(None),
        SignInAttempt.voided_at.is_(None),
    )
    if attempt.youth_id is not None and constant_time_equals(candidate, attempt.code_hash):
        # Used once: of two requests with the right code, one signs in. The code checked is
        # still the attempt's (an email fallback replaces it).
        used = session.execute(
            update(SignInAttempt)
            .where(*still_open, SignInAttempt.code_hash == attempt.code_hash)
            .values(consumed_at=now)
            .returning(SignInAttempt.id)
        ).first()
        if used is None:
            return _settled_meanwhile(session, attempt)
        by_sms = attempt.channel is Channel.SMS and attempt.email_fallback_at is None
        return CodeCheck(
            CodeOutcome.ACCEPTED, youth=session.get(Youth, attempt.youth_id), proved_phone=by_sms
        )
    # Counted in the row itself: 40 wrong codes at once count 5 tries, then the attempt is
    # void, whatever the order they arrive in.
    tries = session.execute(
        update(SignInAttempt)
        .where(*still_open)
        .values(
            wrong_tries=SignInAttempt.wrong_tries + 1,
            voided_at=case((SignInAttempt.wrong_tries + 1 >= MAX_WRONG_TRIES, now), else_=None),
        )
        .returning(SignInAttempt.wrong_tries)
    ).scalar_one_or_none()
    if tries is None:
        return _settled_meanwhile(session, attempt)
    if tries >= MAX_WRONG_TRIES:
        return CodeCheck(CodeOutcome.VOIDED)
    return CodeCheck(CodeOutcome.WRONG, tries_left=MAX_WRONG_TRIES - tries)


def _settled_meanwhile(session: Session, attempt: SignInAttempt) -> CodeCheck:
    """Another request voided or used this attempt between our read and our write."""
    session.refresh(attempt)
    if attempt.voided_at is not None:
        return CodeCheck(CodeOutcome.VOIDED)
    return CodeCheck(CodeOutcome.EXPIRED)


def start_email_fallback(
    session: Session,
    *,
    secret_key: str,
    attempt_token: str | None,
    language: str | None = None,
    now: datetime | None = None,
) -> PendingCode | None:
    """When the SMS does not arrive: a new code, once per attempt (one conditional UPDATE:
    30 taps at once replace the code once), to go by email after the response if the youth
    has an email. Known or not, the request does the same work; the caller answers the same
    way whatever happens."""
    if not attempt_token:
        return None
    now = now or utcnow()
    code = new_numeric_code()
    attempt_id = session.execute(
        update(SignInAttempt)
        .where(
            SignInAttempt.token_hash == token_hash(attempt_token),
            SignInAttempt.channel == Channel.SMS,
            SignInAttempt.email_fallback_at.is_(None),
            SignInAttempt.consumed_at.is_(None),
            SignInAttempt.voided_at.is_(None),
        )
        .values(
            code_hash=_code_hash(secret_key, attempt_token, code),
            expires_at=now + CODE_LIFETIME,
            email_fallback_at=now,
        )
        .returning(SignInAttempt.id)
    ).scalar_one_or_none()
    if attempt_id is None:
        return None
    return PendingCode(attempt_id, Channel.EMAIL, code, language)


def send_code_by_email_instead(
    session: Session,
    *,
    secret_key: str,
    attempt_token: str | None,
    language: str | None = None,
    now: datetime | None = None,
) -> OutboxMessage | None:
    """start_email_fallback() and queue_pending_code() in one transaction."""
    pending = start_email_fallback(
        session, secret_key=secret_key, attempt_token=attempt_token, language=language, now=now
    )
    return queue_pending_code(session, pending, now=now) if pending is not None else None
