"""Rules about a youth's own account and preferences."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.audit import service as audit
from paris_avenir.db import utcnow
from paris_avenir.youths.models import Youth


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


def youths_with_phone(session: Session, e164: str) -> list[Youth]:
    return list(session.scalars(select(Youth).where(Youth.phone == e164)))
