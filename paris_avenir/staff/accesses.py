"""What a youth reads under "Qui a consulté mon dossier": the audit log's entries about them,
grouped per staff member and per day. It joins the audit log to the staff, so it lives with
the staff, above the audit log (which knows no domain)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.audit.models import AuditEvent
from paris_avenir.audit.service import ACTION_LABELS
from paris_avenir.kit.dates import PARIS, paris_day
from paris_avenir.staff.models import StaffRole, StaffUser
from paris_avenir.web.i18n import N_, gettext

# In the youth's sentence: "Awa Diallo (référent) a consulté votre dossier".
ROLE_WORDS: dict[StaffRole, str] = {
    StaffRole.REFERENT: N_("référent"),
    StaffRole.PSYCHOLOGIST: N_("psychologue"),
    StaffRole.SUPERVISOR: N_("superviseur"),
    StaffRole.ADMIN: N_("administrateur"),
}


@dataclass(frozen=True)
class AccessVisit:
    """One staff member's work on a youth's file during one day (Paris time): what they
    did, each kind of action once with how many times, from the first to the last time."""

    staff_name: str
    role_label: str
    first_at: datetime
    last_at: datetime
    actions: list[tuple[str, int]]  # (what, times), in the order first done that day

    @property
    def single_moment(self) -> bool:
        return self.first_at.astimezone(PARIS).strftime("%H:%M") == self.last_at.astimezone(
            PARIS
        ).strftime("%H:%M")


def staff_accesses_to(
    session: Session, youth_id: uuid.UUID, *, limit: int = 1000
) -> list[AccessVisit]:
    """Who among the staff looked at or changed this youth's data, grouped per person and
    per day, the latest day first (one query; two minutes of work read as one line)."""
    rows = session.execute(
        select(
            AuditEvent.occurred_at,
            AuditEvent.action,
            AuditEvent.actor_staff_id,
            StaffUser.full_name,
            StaffUser.role,
        )
        .join(StaffUser, StaffUser.id == AuditEvent.actor_staff_id)
        .where(AuditEvent.youth_id == youth_id, AuditEvent.action.in_(ACTION_LABELS))
        .order_by(AuditEvent.occurred_at.desc())
        .limit(limit)
    ).all()
    groups: dict[tuple[uuid.UUID, date], list[Any]] = {}
    for row in rows:
        groups.setdefault((row.actor_staff_id, paris_day(row.occurred_at)), []).append(row)
    visits = []
    for events in groups.values():  # newest group first: rows come newest first
        counts: dict[str, int] = {}
        for event in reversed(events):  # in the order the person did them
            what = gettext(ACTION_LABELS[event.action])
            counts[what] = counts.get(what, 0) + 1
        visits.append(
            AccessVisit(
                staff_name=events[0].full_name,
                role_label=gettext(ROLE_WORDS[events[0].role]),
                first_at=events[-1].occurred_at,
                last_at=events[0].occurred_at,
                actions=list(counts.items()),
            )
        )
    return visits
