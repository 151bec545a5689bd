"""Staff accounts: what changes an account (and must end its sessions)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from paris_avenir.audit import service as audit
from paris_avenir.auth import sessions
from paris_avenir.db import utcnow
from paris_avenir.staff.models import StaffUser


def disable_staff(session: Session, staff: StaffUser, *, by: StaffUser | None) -> None:
    """A disabled account is signed out everywhere at once."""
    now = utcnow()
    staff.is_active = False
    sessions.revoke_all_for_staff(session, staff.id, now=now)
    audit.record(
        session,
        "staff.disabled",
        actor_staff_id=by.id if by else None,
        object_type="staff_user",
        object_id=staff.id,
        now=now,
    )
