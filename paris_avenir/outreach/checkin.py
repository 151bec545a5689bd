""" "Comment ça va ?": a link that opens without a password — signed, expiring, and single use
(the attempt it names is answered once) — with two one-tap answers."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from paris_avenir.db import utcnow
from paris_avenir.kit.crypto import id_from_signed, signed_id
from paris_avenir.outreach.models import OutreachAttempt, OutreachReason, OutreachResponse
from paris_avenir.staff import tasks
from paris_avenir.staff.models import TaskKind
from paris_avenir.youths.activity import Activity, record_activity
from paris_avenir.youths.models import Youth

LIFETIME = timedelta(days=14)
SALT = "paris-avenir check-in"


def link(attempt_id: uuid.UUID, *, secret_key: str, base_url: str) -> str:
    token = signed_id(attempt_id, secret_key=secret_key, salt=SALT)
    return f"{base_url.rstrip('/')}/point/{token}"


def attempt_for(session: Session, token: str, *, secret_key: str) -> OutreachAttempt | None:
    attempt_id = id_from_signed(token, secret_key=secret_key, salt=SALT, max_age=LIFETIME)
    if attempt_id is None:
        return None
    return session.scalar(
        select(OutreachAttempt).where(
            OutreachAttempt.id == attempt_id, OutreachAttempt.reason == OutreachReason.CHECK_IN
        )
    )


def answer(
    session: Session,
    attempt: OutreachAttempt,
    *,
    needs_help: bool,
    base_url: str,
    now: datetime | None = None,
) -> bool:
    """Records the answer once, even when the link is tapped twice at the same moment;
    "J'ai besoin d'aide" opens an urgent task: the référent (or, when absent, the
    supervisor) is emailed at once. False when it was already answered."""
    now = now or utcnow()
    response = OutreachResponse.NEEDS_HELP if needs_help else OutreachResponse.ALL_GOOD
    recorded = session.execute(
        update(OutreachAttempt)
        .where(OutreachAttempt.id == attempt.id, OutreachAttempt.responded_at.is_(None))
        .values(responded_at=now, response=response)
        .execution_options(synchronize_session=False)
    )
    if recorded.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.refresh(attempt)
    youth = session.get_one(Youth, attempt.youth_id)
    record_activity(session, youth, Activity.CHECK_IN, now)
    if needs_help:
        tasks.open_task(
            session,
            youth_id=youth.id,
            kind=TaskKind.NEEDS_HELP_ALERT,
            key=f"check-in:{attempt.id}",
            now=now,
            outreach_attempt_id=attempt.id,
            base_url=base_url,
        )
    return True
