"""The référent's (or supervisor's) caseload at a glance, in a fixed number of queries
whatever its size: one for the page of youths, one for the total, one for the requests
waiting on staff, one for the next appointments."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    String,
    and_,
    bindparam,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from paris_avenir.aid_requests.models import WAITING_ON_STAFF, AidRequest
from paris_avenir.appointments.models import (
    FOLLOW_UP_INTERVIEW_AFTER_EXIT,
    Appointment,
    AppointmentKind,
    AppointmentStatus,
)
from paris_avenir.db import utcnow
from paris_avenir.kit.dates import add_months, birthday, paris_day
from paris_avenir.staff.models import StaffUser
from paris_avenir.staff.scope import ScopeKey, scope_key, youth_scope_of
from paris_avenir.web.i18n import gettext
from paris_avenir.youths.models import Youth

PAGE_SIZE = 25
QUIET_AFTER = timedelta(days=30)
MILESTONE_HORIZONS = {21: timedelta(days=60), 25: timedelta(days=90)}


class Filter(enum.StrEnum):
    ALL = "tous"
    QUIET = "silencieux"
    UNREACHABLE = "injoignables"
    WAITING = "demandes"
    OPTED_OUT = "desinscrits"


class Sort(enum.StrEnum):
    QUIETEST = "silence"
    NAME = "nom"
    ASE_REF = "reference"


@dataclass
class CaseloadRow:
    youth: Youth
    quiet_days: int | None  # None: never signed in
    waiting_requests: int
    next_appointment: datetime | None
    milestones: list[str] = field(default_factory=list)

    @property
    def is_quiet(self) -> bool:
        return self.quiet_days is None or self.quiet_days >= QUIET_AFTER.days


@dataclass
class CaseloadPage:
    rows: list[CaseloadRow]
    total: int
    page: int
    page_count: int


def milestones(youth: Youth, today: date) -> list[str]:
    """What is coming soon for this youth, in plain words for the référent."""
    coming = []
    for age, horizon in MILESTONE_HORIZONS.items():
        day = birthday(youth.birth_date, age)
        if today <= day <= today + horizon:
            coming.append(
                gettext("%(age)s ans le %(date)s", age=age, date=day.strftime("%d/%m/%Y"))
            )
    if youth.ase_exit_date is not None:
        interview = add_months(youth.ase_exit_date, FOLLOW_UP_INTERVIEW_AFTER_EXIT)
        if today - timedelta(days=30) <= interview <= today + timedelta(days=30):
            coming.append(
                gettext("Entretien des 6 mois dû le %(date)s", date=interview.strftime("%d/%m/%Y"))
            )
    return coming


def _filter_clause(chosen: Filter) -> ColumnElement[bool] | None:
    if chosen is Filter.QUIET:
        return or_(
            Youth.last_activity_at.is_(None), Youth.last_activity_at <= bindparam("quiet_since")
        )
    if chosen is Filter.UNREACHABLE:
        return or_(Youth.phone_unreachable_at.is_not(None), Youth.email_unreachable_at.is_not(None))
    if chosen is Filter.OPTED_OUT:
        return Youth.outreach_opted_out_at.is_not(None)
    if chosen is Filter.WAITING:
        return Youth.id.in_(
            select(AidRequest.youth_id).where(AidRequest.status.in_(WAITING_ON_STAFF))
        )
    return None


def _search_clause() -> ColumnElement[bool]:
    pattern: BindParameter[str] = bindparam("pattern", type_=String())
    return or_(
        func.lower(Youth.first_name).like(pattern),
        func.lower(Youth.last_name).like(pattern),
        func.lower(Youth.first_name + " " + Youth.last_name).like(pattern),
        func.lower(Youth.ase_ref).like(pattern),
    )


def _ordering(sort: Sort) -> list[ColumnElement[object]]:
    if sort is Sort.NAME:
        return [func.lower(Youth.last_name), func.lower(Youth.first_name)]
    if sort is Sort.ASE_REF:
        return [Youth.ase_ref]  # type: ignore[list-item]
    return [Youth.last_activity_at.asc().nulls_first(), Youth.last_name]  # type: ignore[list-item]


# The statements of a caseload page are built once per scope, filter, sort and whether a
# search is typed, and run with their values bound: building them was most of the page's
# cost (57 clause coercions and 5 cache keys a page, cProfile).
_WAITING_COUNTS = (
    select(AidRequest.youth_id, func.count())
    .where(
        AidRequest.youth_id.in_(bindparam("ids", expanding=True)),
        AidRequest.status.in_(WAITING_ON_STAFF),
    )
    .group_by(AidRequest.youth_id)
)
_NEXT_APPOINTMENTS = (
    select(Appointment.youth_id, func.min(Appointment.starts_at))
    .where(
        Appointment.youth_id.in_(bindparam("ids", expanding=True)),
        Appointment.starts_at > bindparam("now"),
        Appointment.status == AppointmentStatus.BOOKED,
        # Psychological support is health data: never on the référent's screen.
        or_(
            Appointment.kind != AppointmentKind.PSYCHOLOGIST,
            Appointment.shared_with_referent,
        ),
    )
    .group_by(Appointment.youth_id)
)


@lru_cache(maxsize=1024)
def _statements(
    key: ScopeKey, chosen: Filter, sort: Sort, searching: bool
) -> tuple[Select[int], Select[Youth]]:
    conditions = [youth_scope_of(key)]
    clause = _filter_clause(chosen)
    if clause is not None:
        conditions.append(clause)
    if searching:
        conditions.append(_search_clause())
    base: Select[Youth] = select(Youth).where(and_(*conditions))
    total = select(func.count()).select_from(base.subquery())
    page = base.order_by(*_ordering(sort)).limit(bindparam("limit")).offset(bindparam("offset"))
    return total, page


def caseload(
    session: Session,
    staff: StaffUser,
    *,
    chosen: Filter = Filter.ALL,
    sort: Sort = Sort.QUIETEST,
    search: str = "",
    page: int = 1,
    now: datetime | None = None,
) -> CaseloadPage:
    now = now or utcnow()
    searching = bool(search.strip())
    total_statement, page_statement = _statements(scope_key(staff), chosen, sort, searching)
    values: dict[str, object] = {"quiet_since": now - QUIET_AFTER}
    if searching:
        values["pattern"] = f"%{search.strip().lower()}%"
    total = int(session.scalar(total_statement, values) or 0)
    page_count = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), page_count)
    youths = list(
        session.scalars(
            page_statement, {**values, "limit": PAGE_SIZE, "offset": (page - 1) * PAGE_SIZE}
        )
    )
    ids = [youth.id for youth in youths]
    waiting: dict[uuid.UUID, int] = {}
    upcoming: dict[uuid.UUID, datetime] = {}
    if ids:
        waiting = {row[0]: int(row[1]) for row in session.execute(_WAITING_COUNTS, {"ids": ids})}
        upcoming = {
            row[0]: row[1] for row in session.execute(_NEXT_APPOINTMENTS, {"ids": ids, "now": now})
        }
    today = paris_day(now)
    rows = [
        CaseloadRow(
            youth=youth,
            quiet_days=(now - youth.last_activity_at).days if youth.last_activity_at else None,
            waiting_requests=waiting.get(youth.id, 0),
            next_appointment=_aware(upcoming.get(youth.id)),
            milestones=milestones(youth, today),
        )
        for youth in youths
    ]
    return CaseloadPage(rows=rows, total=total, page=page, page_count=page_count)


def _aware(value: datetime | None) -> datetime | None:
    """MIN() over a UTC column comes back naive on SQLite."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=ZoneInfo("UTC"))
