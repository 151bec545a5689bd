"""Rules about a youth's own account and preferences."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from paris_avenir.audit import service as audit
from paris_avenir.db import utcnow
from paris_avenir.web.i18n import is_offered
from paris_avenir.youths.activity import Activity, record_activity
from paris_avenir.youths.models import Channel, Youth


def opt_out_of_outreach(
    session: Session, youth: Youth, *, via: str, now: datetime | None = None
) -> None:
    """Honoured at once: no outreach message is queued for this youth from now on."""
    now = now or utcnow()
    if youth.outreach_opted_out_at is None:
        youth.outreach_opted_out_at = now
        audit.record(
            session,
            "youth.outreach_opt_out",
            actor_youth_id=youth.id,
            youth_id=youth.id,
            detail={"via": via},
            now=now,
        )


def opt_out_of_outreach_emails(
    session: Session, youth: Youth, *, via: str, now: datetime | None = None
) -> bool:
    """Like `opt_out_of_outreach`, for outreach emails only (an SMS may still go). False
    when it was already done. One conditional update: a mail provider that POSTs the
    one-click link several times at once records it once."""
    now = now or utcnow()
    stopped = session.execute(
        update(Youth)
        .where(Youth.id == youth.id, Youth.outreach_email_opted_out_at.is_(None))
        .values(outreach_email_opted_out_at=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(youth, ["outreach_email_opted_out_at"])
    if stopped.rowcount != 1:  # type: ignore[attr-defined]
        return False
    audit.record(
        session,
        "youth.outreach_email_opt_out",
        actor_youth_id=youth.id,
        youth_id=youth.id,
        detail={"via": via},
        now=now,
    )
    return True


def youths_with_phone(session: Session, e164: str) -> list[Youth]:
    return list(session.scalars(select(Youth).where(Youth.phone == e164)))


# --- Preferences ------------------------------------------------------------------------


def update_preferences(
    session: Session,
    youth: Youth,
    *,
    language: str,
    channel: Channel,
    outreach_opted_out: bool,
    outreach_email_opted_out: bool | None = None,
    now: datetime | None = None,
) -> None:
    now = now or utcnow()
    if is_offered(language):
        youth.language = language
    if (channel is Channel.SMS and youth.phone) or (channel is Channel.EMAIL and youth.email):
        youth.preferred_channel = channel
    if outreach_opted_out:
        opt_out_of_outreach(session, youth, via="profile", now=now)
    elif youth.outreach_opted_out_at is not None:
        youth.outreach_opted_out_at = None
        audit.record(
            session, "youth.outreach_opt_in", actor_youth_id=youth.id, youth_id=youth.id, now=now
        )
    if outreach_email_opted_out:
        opt_out_of_outreach_emails(session, youth, via="profile", now=now)
    elif outreach_email_opted_out is False and youth.outreach_email_opted_out_at is not None:
        youth.outreach_email_opted_out_at = None
        audit.record(
            session,
            "youth.outreach_email_opt_in",
            actor_youth_id=youth.id,
            youth_id=youth.id,
            now=now,
        )
    record_activity(session, youth, Activity.PROFILE, now)


def choose_message_detail(
    session: Session, youth: Youth, *, detailed: bool, now: datetime | None = None
) -> None:
    """ "Messages détaillés" (`detailed`) or "messages discrets" (the default): what the
    youth's SMS and emails may say from now on (messaging/notifications.py). Only the youth
    chooses it, on their profile."""
    now = now or utcnow()
    if youth.detailed_messages != detailed:
        youth.detailed_messages = detailed
        audit.record(
            session,
            "youth.messages_detail",
            actor_youth_id=youth.id,
            youth_id=youth.id,
            detail={"detailed": detailed},
            now=now,
        )
    record_activity(session, youth, Activity.PROFILE, now)


# --- A number flagged as not working ------------------------------------------------------


def confirm_phone(
    session: Session,
    youth: Youth,
    *,
    by_staff_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> bool:
    """The number flagged as not working is the youth's after all: messages and sign-in
    codes go to it again. Proven by the youth (a sign-in code sent to it by SMS came back),
    or said by the team when "mauvais numéro" was a mistake; audited either way. False when
    it was not flagged (nothing changes)."""
    now = now or utcnow()
    if youth.phone_unreachable_at is None and youth.phone_reported_wrong_at is None:
        return False
    youth.phone_unreachable_at = None
    youth.phone_reported_wrong_at = None
    audit.record(
        session,
        "youth.phone_confirmed",
        actor_youth_id=None if by_staff_id else youth.id,
        actor_staff_id=by_staff_id,
        youth_id=youth.id,
        now=now,
    )
    if by_staff_id is None:
        record_activity(session, youth, Activity.PHONE_CONFIRMED, now)
    return True
