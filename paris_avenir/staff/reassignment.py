"""Who follows a youth, changed: the current assignment ends (kept as history), the new
one starts, the youth's open tasks follow, and the change is audited. The one path for a
supervisor's reassignment and for the ASE import's."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from paris_avenir.audit import service as audit
from paris_avenir.db import utcnow
from paris_avenir.kit.errors import DomainError
from paris_avenir.staff import tasks
from paris_avenir.staff.assignments import current_assignment
from paris_avenir.staff.models import CaseloadAssignment, StaffRole, StaffUser
from paris_avenir.web.i18n import gettext


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
