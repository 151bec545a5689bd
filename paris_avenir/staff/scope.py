"""Who on the staff may see which youth. Every staff-side query about youths goes through
here: a référent sees their caseload, a supervisor their team's, a psychologist only their
own appointments (never a youth's file), an admin configuration and no youth file.

Anything out of scope answers 404, exactly like an id that does not exist, and leaves an
`access_denied` entry in the audit log.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar

from sqlalchemy import ColumnElement, Select, and_, bindparam, false, select
from sqlalchemy.orm import Session

from paris_avenir.audit import service as audit
from paris_avenir.db import CommittedHTTPException
from paris_avenir.staff import assignments
from paris_avenir.staff.models import CaseloadAssignment, StaffRole, StaffUser
from paris_avenir.youths.models import Youth

T = TypeVar("T")


ScopeKey = tuple[StaffRole, uuid.UUID, uuid.UUID | None]


def scope_key(staff: StaffUser) -> ScopeKey:
    """What a staff member's scope depends on: a key for statements built once per scope
    (a staff object itself is a new key on every request)."""
    return (staff.role, staff.id, staff.team_id)


def youth_scope(staff: StaffUser) -> ColumnElement[bool]:
    """A WHERE clause on Youth: the youths this staff member may see. An anonymised file
    (retention.files) is nobody's: out of every list, search and page, like a missing id."""
    return youth_scope_of(scope_key(staff))


@lru_cache(maxsize=1024)
def youth_scope_of(key: ScopeKey) -> ColumnElement[bool]:
    """youth_scope, by scope key. A clause is immutable: one per scope serves every
    statement (building it was a sixth of the cost of building a caseload query)."""
    role, staff_id, team_id = key
    current = assignments.is_current()
    if role is StaffRole.REFERENT:
        caseload = select(CaseloadAssignment.youth_id).where(
            current, CaseloadAssignment.referent_id == staff_id
        )
    elif role is StaffRole.SUPERVISOR and team_id is not None:
        caseload = (
            select(CaseloadAssignment.youth_id)
            .join(StaffUser, StaffUser.id == CaseloadAssignment.referent_id)
            .where(current, StaffUser.team_id == team_id)
        )
    else:
        return false()
    return and_(Youth.id.in_(caseload), Youth.anonymised_at.is_(None))


class NotInScope(CommittedHTTPException):
    """404, byte-identical to a missing id; the audit entry it carries is committed."""

    def __init__(self) -> None:
        super().__init__(status_code=404)


def deny(
    session: Session,
    staff: StaffUser,
    *,
    object_type: str,
    object_id: uuid.UUID | str,
    ip_address: str | None,
) -> NotInScope:
    audit.record(
        session,
        "access_denied",
        actor_staff_id=staff.id,
        object_type=object_type,
        object_id=object_id if isinstance(object_id, uuid.UUID) else None,
        ip_address=ip_address,
        detail={} if isinstance(object_id, uuid.UUID) else {"malformed_id": True},
    )
    return NotInScope()


def one_in_scope(
    session: Session,
    staff: StaffUser,
    raw_id: str,
    find: Callable[[uuid.UUID], Select[T] | tuple[Select[T], dict[str, object]]],
    *,
    object_type: str,
    ip_address: str | None,
) -> T:
    """The object whose id came in the path, if `find` (a query already limited to what the
    staff member may reach, or such a query built once and its bound values) returns it;
    otherwise, malformed id or not, deny()'s 404."""
    try:
        parsed = uuid.UUID(raw_id)
    except ValueError:
        raise deny(
            session, staff, object_type=object_type, object_id=raw_id, ip_address=ip_address
        ) from None
    query = find(parsed)
    statement, values = query if isinstance(query, tuple) else (query, {})
    found = session.scalar(statement, values)
    if found is None:
        raise deny(session, staff, object_type=object_type, object_id=parsed, ip_address=ip_address)
    return found


@lru_cache(maxsize=1024)
def _youth_in_scope(key: ScopeKey) -> Select[Youth]:
    # Built once per scope: every page about a youth starts with it.
    return select(Youth).where(Youth.id == bindparam("youth_id"), youth_scope_of(key))


def youth_for_staff(
    session: Session,
    staff: StaffUser,
    youth_id: str,
    *,
    ip_address: str | None,
    action: str | None = "youth.view",
) -> Youth:
    """The youth, if in scope, its access audited as `action` (None when the caller audits
    something more precise); otherwise raises NotInScope."""
    youth = one_in_scope(
        session,
        staff,
        youth_id,
        lambda parsed: (_youth_in_scope(scope_key(staff)), {"youth_id": parsed}),
        object_type="youth",
        ip_address=ip_address,
    )
    if action is not None:
        audit.record(
            session,
            action,
            actor_staff_id=staff.id,
            youth_id=youth.id,
            object_type="youth",
            object_id=youth.id,
            ip_address=ip_address,
        )
    return youth
