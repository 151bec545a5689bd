""" "Comment ça va ?": a link that opens without a password — signed, expiring, and single use
(the attempt it names is answered once) — with two one-tap answers."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timedelta

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.db import utcnow
from paris_avenir.outreach.models import (
    OutreachAttempt,
    OutreachReason,
    OutreachResponse,
    StaffTask,
    StaffTaskKind,
)
from paris_avenir.staff.service import current_referent_id
from paris_avenir.youths.models import Youth

LIFETIME = timedelta(days=14)
SALT = "paris-avenir check-in"


def _signer(secret_key: str) -> TimestampSigner:
    return TimestampSigner(secret_key, salt=SALT)


def link(attempt_id: uuid.UUID, *, secret_key: str, base_url: str) -> str:
    # The id's 16 bytes, not its 36-character text: the link must leave room in one SMS.
    compact = base64.urlsafe_b64encode(attempt_id.bytes).rstrip(b"=")
    token = _signer(secret_key).sign(compact).decode()
    return f"{base_url.rstrip('/')}/point/{token}"


def attempt_for(session: Session, token: str, *, secret_key: str) -> OutreachAttempt | None:
    try:
        compact = _signer(secret_key).unsign(token, max_age=int(LIFETIME.total_seconds()))
        attempt_id = uuid.UUID(bytes=base64.urlsafe_b64decode(compact + b"=="))
    except (BadSignature, SignatureExpired, ValueError):
        return None
    return session.scalar(
        select(OutreachAttempt).where(
            OutreachAttempt.id == attempt_id, OutreachAttempt.reason == OutreachReason.CHECK_IN
        )
    )


def answer(
    session: Session, attempt: OutreachAttempt, *, needs_help: bool, now: datetime | None = None
) -> bool:
    """Records the answer once; "J'ai besoin d'aide" alerts the référent.
    False when it was already answered."""
    now = now or utcnow()
    if attempt.responded_at is not None:
        return False
    attempt.responded_at = now
    attempt.response = OutreachResponse.NEEDS_HELP if needs_help else OutreachResponse.ALL_GOOD
    youth = session.get_one(Youth, attempt.youth_id)
    youth.last_activity_at = now
    if needs_help:
        referent_id = current_referent_id(session, youth.id)
        session.add(
            StaffTask(
                youth_id=youth.id,
                assignee_id=referent_id,
                kind=StaffTaskKind.NEEDS_HELP_ALERT,
                outreach_attempt_id=attempt.id,
                due_at=now + timedelta(days=1),
            )
        )
    return True
