"""Staff accounts: what changes an account (and must end its sessions)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from paris_avenir.audit import service as audit
from paris_avenir.auth import sessions
from paris_avenir.db import utcnow
from paris_avenir.kit.errors import DomainError
from paris_avenir.staff import tasks
from paris_avenir.staff.assignments import current_assignment, team_referents
from paris_avenir.staff.models import CaseloadAssignment, StaffRole, StaffUser
from paris_avenir.web.i18n import gettext


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


# --- Caseload assignments -----------------------------------------------------------------


class AssignmentError(DomainError):
    """The message is for the supervisor."""


def reassign(
    session: Session,
    youth_id: uuid.UUID,
    *,
    to_referent_id: uuid.UUID,
    by: StaffUser,
    reason: str | None = None,
    now: datetime | None = None,
    base_url: str | None = None,
) -> CaseloadAssignment:
    """Ends the current assignment (kept as history) and starts the new one: from now on the
    former référent no longer reaches this youth."""
    now = now or utcnow()
    target = session.get(StaffUser, to_referent_id)
    if (
        target is None
        or target.role is not StaffRole.REFERENT
        or not target.is_active
        or (by.role is StaffRole.SUPERVISOR and target.team_id != by.team_id)
    ):
        raise AssignmentError(gettext("Choisissez un référent actif de votre équipe."))
    current = current_assignment(session, youth_id)
    if current is not None and current.referent_id == target.id:
        return current
    if current is not None:
        current.ended_at = now
        session.flush()  # the partial unique index allows one current assignment
    assignment = CaseloadAssignment(
        youth_id=youth_id,
        referent_id=target.id,
        started_at=now,
        assigned_by_id=by.id,
        reason=(reason or "").strip()[:500] or None,
    )
    session.add(assignment)
    session.flush()
    moved = tasks.follow_reassignment(session, youth_id, now=now, by_id=by.id, base_url=base_url)
    audit.record(
        session,
        "youth.reassigned",
        actor_staff_id=by.id,
        youth_id=youth_id,
        object_type="caseload_assignment",
        object_id=assignment.id,
        detail={
            "from": str(current.referent_id) if current else None,
            "to": str(target.id),
            "tasks_moved": moved,
        },
        now=now,
    )
    return assignment


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
            .where(CaseloadAssignment.referent_id.in_(ids), CaseloadAssignment.ended_at.is_(None))
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
                CaseloadAssignment.ended_at.is_(None),
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
