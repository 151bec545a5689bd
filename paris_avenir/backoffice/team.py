"""The team: what changes a staff account (and must end its sessions), and each référent's
load for the supervisor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from paris_avenir.audit import service as audit
from paris_avenir.auth import sessions
from paris_avenir.db import utcnow
from paris_avenir.staff import assignments, tasks
from paris_avenir.staff.assignments import team_referents
from paris_avenir.staff.models import CaseloadAssignment, StaffUser


def disable_staff(
    session: Session, staff: StaffUser, *, by: StaffUser | None, base_url: str | None = None
) -> None:
    """A disabled account is signed out everywhere at once, and its open tasks go to whoever
    should hold them now."""
    now = utcnow()
    staff.is_active = False
    sessions.revoke_all_for_staff(session, staff.id, now=now)
    tasks.release(session, staff, now=now, by_id=by.id if by else None, base_url=base_url)
    audit.record(
        session,
        "staff.disabled",
        actor_staff_id=by.id if by else None,
        object_type="staff_user",
        object_id=staff.id,
        now=now,
    )


@dataclass(frozen=True)
class TeamLoad:
    referent: StaffUser
    youths: int
    overdue_requests: int

    @property
    def over_target(self) -> bool:
        return self.youths > CASELOAD_TARGET[1]


# The programme's target: 25 to 30 youths per social worker (down from 40).
CASELOAD_TARGET = (25, 30)


def team_load(
    session: Session, supervisor: StaffUser, *, now: datetime | None = None
) -> list[TeamLoad]:
    """Caseload size and overdue requests per référent of the team, in three queries."""
    from paris_avenir.aid_requests.instruction import OVERDUE_DAYS, QUEUE_STATUSES
    from paris_avenir.aid_requests.models import AidRequest

    now = now or utcnow()
    referents = team_referents(session, supervisor.team_id)
    ids = [referent.id for referent in referents]
    sizes = {
        row[0]: int(row[1])
        for row in session.execute(
            select(CaseloadAssignment.referent_id, func.count())
            .where(CaseloadAssignment.referent_id.in_(ids), assignments.is_current())
            .group_by(CaseloadAssignment.referent_id)
        )
    }
    overdue = {
        row[0]: int(row[1])
        for row in session.execute(
            select(CaseloadAssignment.referent_id, func.count())
            .join(AidRequest, AidRequest.youth_id == CaseloadAssignment.youth_id)
            .where(
                CaseloadAssignment.referent_id.in_(ids),
                assignments.is_current(),
                AidRequest.status.in_(QUEUE_STATUSES),
                AidRequest.submitted_at <= now - timedelta(days=OVERDUE_DAYS),
            )
            .group_by(CaseloadAssignment.referent_id)
        )
    }
    return [
        TeamLoad(referent, sizes.get(referent.id, 0), overdue.get(referent.id, 0))
        for referent in referents
    ]
