"""Who follows a youth: the current référent, the team, its supervisor. Plain queries that
the rest of staff/ (tasks, reassignment, scope) builds on."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, SQLColumnExpression, and_, bindparam, select
from sqlalchemy.orm import Session, aliased

from paris_avenir.db import utcnow
from paris_avenir.staff.models import CaseloadAssignment, StaffRole, StaffUser


def is_current() -> ColumnElement[bool]:
    """The one definition of "the référent now": the assignment not ended (the partial
    unique index keeps at most one per youth). Every query about the current référent,
    a caseload or a scope uses it."""
    return CaseloadAssignment.ended_at.is_(None)


def current_assignment(session: Session, youth_id: uuid.UUID) -> CaseloadAssignment | None:
    """The youth's open caseload assignment (at most one: a partial unique index)."""
    return session.scalar(
        select(CaseloadAssignment).where(CaseloadAssignment.youth_id == youth_id, is_current())
    )


def current_referent_id(session: Session, youth_id: uuid.UUID) -> uuid.UUID | None:
    """The référent of the youth's open caseload assignment, if any."""
    return session.scalar(
        select(CaseloadAssignment.referent_id).where(
            CaseloadAssignment.youth_id == youth_id, is_current()
        )
    )


# Built once with a bound value: every youth page runs it (the sign-in check shows the
# référent), and a statement built per call pays its construction and cache key again.
_CURRENT_REFERENT = (
    select(StaffUser)
    .join(CaseloadAssignment, CaseloadAssignment.referent_id == StaffUser.id)
    .where(CaseloadAssignment.youth_id == bindparam("youth_id"), is_current())
)


def current_referent(session: Session, youth_id: uuid.UUID) -> StaffUser | None:
    """The référent who follows the youth now (one query), if any."""
    return session.scalar(_CURRENT_REFERENT, {"youth_id": youth_id})


# The référent as one more entity of another statement (the sign-in check's).
_REFERENT = aliased(StaffUser, name="current_referent")


def with_current_referent(
    statement: Select[*tuple[Any, ...]], youth_id: SQLColumnExpression[uuid.UUID | None]
) -> Select[*tuple[Any, ...]]:
    """`statement` with the current référent of the youth `youth_id` names (a StaffUser, or
    None when nobody follows them) as a last entity: current_referent's definition, joined
    instead of run on its own (the sign-in check of every youth page)."""
    return (
        statement.add_columns(_REFERENT)
        .outerjoin(CaseloadAssignment, and_(CaseloadAssignment.youth_id == youth_id, is_current()))
        .outerjoin(_REFERENT, _REFERENT.id == CaseloadAssignment.referent_id)
    )


def current_referents(
    session: Session, youth_ids: set[uuid.UUID], *, always_query: bool = False
) -> dict[uuid.UUID, StaffUser]:
    """The référent who follows each of these youths now. `always_query`: the queries run
    even for no youth, so that their time tells nothing (the import). Light rows of ids,
    then each référent once: a watch's batch names the same few people thousands of times,
    and a StaffUser built per row cost 3.8 s of a 20,000-youth cycle."""
    if not youth_ids and not always_query:
        return {}
    pairs = session.execute(
        select(CaseloadAssignment.youth_id, CaseloadAssignment.referent_id).where(
            CaseloadAssignment.youth_id.in_(youth_ids), is_current()
        )
    ).all()
    people = staff_by_id(
        session, {referent_id for _youth_id, referent_id in pairs}, always_query=always_query
    )
    return {youth_id: people[referent_id] for youth_id, referent_id in pairs}


def staff_by_id(
    session: Session, ids: set[uuid.UUID], *, always_query: bool = False
) -> dict[uuid.UUID, StaffUser]:
    """These staff members, one object each, in queries of at most 500 ids."""
    found: dict[uuid.UUID, StaffUser] = {}
    ordered = sorted(ids)
    for start in range(0, max(len(ordered), 1 if always_query else 0), 500):
        chunk = ordered[start : start + 500]
        found |= {
            person.id: person
            for person in session.scalars(select(StaffUser).where(StaffUser.id.in_(chunk)))
        }
    return found


def last_team_id(session: Session, youth_id: uuid.UUID) -> uuid.UUID | None:
    """The team of the youth's most recent référent, current or past."""
    return session.scalar(
        select(StaffUser.team_id)
        .join(CaseloadAssignment, CaseloadAssignment.referent_id == StaffUser.id)
        .where(CaseloadAssignment.youth_id == youth_id)
        .order_by(CaseloadAssignment.ended_at.desc().nulls_first())
        .limit(1)
    )


def team_supervisor(
    session: Session, team_id: uuid.UUID | None, *, now: datetime | None = None
) -> StaffUser | None:
    """The team's active supervisor (one who is not absent first; by name when several)."""
    if team_id is None:
        return None
    now = now or utcnow()
    supervisors = session.scalars(
        select(StaffUser)
        .where(
            StaffUser.team_id == team_id,
            StaffUser.role == StaffRole.SUPERVISOR,
            StaffUser.is_active.is_(True),
        )
        .order_by(StaffUser.full_name, StaffUser.id)
    ).all()
    present = [person for person in supervisors if not person.is_absent(now)]
    candidates = present or list(supervisors)
    return candidates[0] if candidates else None


def team_referents(session: Session, team_id: uuid.UUID | None) -> list[StaffUser]:
    return list(
        session.scalars(
            select(StaffUser)
            .where(
                StaffUser.team_id == team_id,
                StaffUser.role == StaffRole.REFERENT,
                StaffUser.is_active.is_(True),
            )
            .order_by(StaffUser.full_name)
        )
    )
