"""Youth sign-in with a one-time code sent by SMS or email.

The code: 6 digits from `secrets`, stored as an HMAC bound to this attempt, valid 10
minutes, single use, void after 5 wrong tries. Unknown numbers and emails go through the
same steps (an attempt is recorded, the same pages answer) but nothing is sent, so nobody
can learn whether someone is registered. Rate limits are counted in the database, so they
hold across several web instances.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from paris_avenir.auth.models import SignInAttempt
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
from paris_avenir.messaging import message_templates, outbox, texts
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.youths.models import Channel, Youth

CODE_LIFETIME = timedelta(minutes=10)
MAX_WRONG_TRIES = 5
# (window, most codes in it): per number or email, and per IP address. The per-destination
# limits carry the weight; the per-address one only stops one machine spraying numbers, and
# must not lock out a shelter's wifi (a workshop of 30 youths, some asking twice).
DESTINATION_LIMITS = ((timedelta(minutes=15), 3), (timedelta(hours=24), 10))
IP_LIMITS = ((timedelta(minutes=15), 60), (timedelta(hours=24), 300))


class InvalidDestination(ValueError):
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


def _check_limits(session: Session, destination_hash: str, ip_hash: str, now: datetime) -> None:
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
class CodeRequest:
    attempt_token: str
    masked_destination: str
    outbox_message: OutboxMessage | None  # None for an unknown destination


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
    if channel is Channel.SMS:
        text = message_templates.render_sms(
            session,
            "sign_in_code",
            language,
            texts.sign_in_code_sms(code, language),
            code=code,
        )
        return outbox.enqueue(
            session,
            channel=Channel.SMS,
            recipient=recipient,
            template=template,
            body_text=text,
            idempotency_key=key,
            youth_id=youth.id,
            language=language,
            urgent=True,
            respects_quiet_hours=False,
            now=now,
        )
    email = texts.sign_in_code_email(code, language)
    return outbox.enqueue(
        session,
        channel=Channel.EMAIL,
        recipient=recipient,
        template=template,
        subject=email.subject,
        body_text=email.text,
        body_html=email.html,
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


def request_code(
    session: Session,
    *,
    secret_key: str,
    raw_destination: str,
    ip_address: str,
    language: str | None = None,
    now: datetime | None = None,
) -> CodeRequest:
    """Raises InvalidDestination (not a number or an email) or RateLimited."""
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
    # A number the team found to reach someone else gets nothing, and the same answer as an
    # unknown one: the code page still offers the youth's email.
    reported_wrong = (
        youth is not None
        and destination.channel is Channel.SMS
        and youth.phone_reported_wrong_at is not None
    )
    message = (
        _queue_code(session, youth, attempt, destination.channel, code, now, language)
        if youth and not reported_wrong
        else None
    )
    return CodeRequest(attempt_token, destination.masked, message)


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
    if attempt.youth_id is not None and constant_time_equals(candidate, attempt.code_hash):
        attempt.consumed_at = now
        by_sms = attempt.channel is Channel.SMS and attempt.email_fallback_at is None
        return CodeCheck(
            CodeOutcome.ACCEPTED, youth=session.get(Youth, attempt.youth_id), proved_phone=by_sms
        )
    attempt.wrong_tries += 1
    if attempt.wrong_tries >= MAX_WRONG_TRIES:
        attempt.voided_at = now
        return CodeCheck(CodeOutcome.VOIDED)
    return CodeCheck(CodeOutcome.WRONG, tries_left=MAX_WRONG_TRIES - attempt.wrong_tries)


def send_code_by_email_instead(
    session: Session,
    *,
    secret_key: str,
    attempt_token: str | None,
    language: str | None = None,
    now: datetime | None = None,
) -> OutboxMessage | None:
    """When the SMS does not arrive: a new code by email, once per attempt, if the youth
    has an email. The caller answers the same way whatever happens."""
    now = now or utcnow()
    attempt = find_attempt(session, attempt_token)
    if (
        attempt is None
        or attempt_token is None
        or attempt.youth_id is None
        or attempt.channel is not Channel.SMS
        or attempt.email_fallback_at is not None
        or attempt.consumed_at is not None
        or attempt.voided_at is not None
    ):
        return None
    youth = session.get(Youth, attempt.youth_id)
    if youth is None or not youth.email:
        return None
    code = new_numeric_code()
    attempt.code_hash = _code_hash(secret_key, attempt_token, code)
    attempt.expires_at = now + CODE_LIFETIME
    attempt.email_fallback_at = now
    return _queue_code(session, youth, attempt, Channel.EMAIL, code, now, language)
