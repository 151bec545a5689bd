"""What a youth who asked for help reads about it ("J’ai besoin d’aide", a check-in answer):
who was told and by when they will be called."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from paris_avenir.db import utcnow
from paris_avenir.kit.dates import paris_day
from paris_avenir.staff.models import StaffRole, StaffTask, StaffUser, TaskKind


@dataclass(frozen=True)
class AlertForYouth:
    """What a youth who asked for help reads: who was told, by when they will be called."""

    asked_at: datetime
    due_at: datetime
    told_name: str | None
    told_is_referent: bool
    # "today", "tomorrow" or "later" (then the date), or "passed": plain words, and no
    # promise left on the page once its moment has gone.
    when: str


def _when(due_at: datetime, now: datetime) -> str:
    if due_at <= now:
        return "passed"
    days = (paris_day(due_at) - paris_day(now)).days
    return "today" if days == 0 else "tomorrow" if days == 1 else "later"


# Columns, built once: the youth's dashboard asks on every visit (see auth.sessions).
_OPEN_ALERT_OF_YOUTH = (
    select(StaffTask.opened_at, StaffTask.due_at, StaffUser.full_name, StaffUser.role)
    .outerjoin(StaffUser, StaffUser.id == StaffTask.assignee_id)
    .where(
        StaffTask.youth_id == bindparam("youth_id"),
        StaffTask.kind == TaskKind.NEEDS_HELP_ALERT,
        StaffTask.done_at.is_(None),
    )
    .order_by(StaffTask.opened_at.desc())
    .limit(1)
)


def open_alert_for_youth(
    session: Session, youth_id: uuid.UUID, *, now: datetime | None = None
) -> AlertForYouth | None:
    row = session.execute(_OPEN_ALERT_OF_YOUTH, {"youth_id": youth_id}).first()
    if row is None:
        return None
    return AlertForYouth(
        asked_at=row.opened_at,
        due_at=row.due_at,
        told_name=row.full_name,
        told_is_referent=row.role is StaffRole.REFERENT,
        when=_when(row.due_at, now or utcnow()),
    )


def alert_for_attempt(session: Session, attempt_id: uuid.UUID) -> AlertForYouth | None:
    """The alert opened by this check-in answer, as the youth reads it."""
    youth_id = session.scalar(
        select(StaffTask.youth_id).where(
            StaffTask.outreach_attempt_id == attempt_id,
            StaffTask.kind == TaskKind.NEEDS_HELP_ALERT,
        )
    )
    return open_alert_for_youth(session, youth_id) if youth_id else None
