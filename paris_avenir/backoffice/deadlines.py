"""The dashboard's "Échéances à venir": what expires soon in the caseload, dated, nearest
first: papers of the vault (4 months ahead, or expired this month), the allocation's
renewal and the 21st birthday (the free Navigo ends). Scope-checked like every list of the
back office (staff.scope.youth_scope): a référent sees only the youths they follow. Three
queries, whatever the caseload's size."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

from sqlalchemy import Select, bindparam, exists, select
from sqlalchemy.orm import Session, aliased

from paris_avenir.aid_requests.models import AidCode, AidRequest, RequestStatus
from paris_avenir.db import utcnow
from paris_avenir.documents.models import Document, DocumentKind
from paris_avenir.documents.service import EXPIRING_KINDS, kind_label
from paris_avenir.kit.dates import add_months, birthday, paris_day
from paris_avenir.outreach import papers
from paris_avenir.staff.models import StaffUser
from paris_avenir.staff.scope import ScopeKey, scope_key, youth_scope_of
from paris_avenir.web.i18n import gettext
from paris_avenir.youths.models import Youth

LIMIT = 20
SINCE = timedelta(days=30)  # expired this recently: still to renew
ALLOCATION_AHEAD = timedelta(days=60)
BIRTHDAY_AHEAD = timedelta(days=60)


@dataclass(frozen=True)
class Deadline:
    youth_id: uuid.UUID
    youth_name: str
    what: str  # in words: "Titre de séjour", "Renouvellement de l'allocation"…
    on: date
    days_left: int  # negative: passed

    @property
    def passed(self) -> bool:
        return self.days_left < 0


def upcoming(session: Session, staff: StaffUser, *, now: datetime | None = None) -> list[Deadline]:
    now = now or utcnow()
    today = paris_day(now)
    papers_due, renewals_due, birthdays_due = _statements(scope_key(staff))
    found: list[tuple[uuid.UUID, str, str, date]] = []
    for youth_id, first, last, kind, expires_on in session.execute(
        papers_due,
        {
            "papers_after": today - SINCE,
            "papers_until": add_months(today, papers.FIRST_NOTICE_MONTHS),
        },
    ).all():
        assert expires_on is not None
        found.append((youth_id, f"{last} {first}", kind_label(kind), expires_on))
    for youth_id, first, last, due_at in session.execute(
        renewals_due,
        {"renewals_after": now - SINCE, "renewals_until": now + ALLOCATION_AHEAD},
    ).all():
        assert due_at is not None
        found.append(
            (
                youth_id,
                f"{last} {first}",
                gettext("Renouvellement de l’allocation"),
                paris_day(due_at),
            )
        )
    # Born between 21 years before today and 21 years before the horizon.
    for youth_id, first, last, born in session.execute(
        birthdays_due,
        {
            "born_after": add_months(today, -12 * 21),
            "born_until": add_months(today + BIRTHDAY_AHEAD, -12 * 21),
        },
    ).all():
        found.append(
            (
                youth_id,
                f"{last} {first}",
                gettext("21 ans : fin du Navigo gratuit"),
                birthday(born, 21),
            )
        )
    found.sort(key=lambda item: (item[3], item[1]))
    return [
        Deadline(youth_id, name, what, on, (on - today).days)
        for youth_id, name, what, on in found[:LIMIT]
    ]


# The three statements of a staff member's scope, built once and run with the dates as
# parameters: building them (ORM attributes, aliases, the scope's subquery) cost a quarter
# of the référent dashboard's time, every request (py-spy, issue 17). Keyed by what
# staff.scope.youth_scope reads of the staff member (scope_key).
_Statements = tuple[
    Select[uuid.UUID, str, str, DocumentKind, date | None],
    Select[uuid.UUID, str, str, datetime | None],
    Select[uuid.UUID, str, str, date],
]


@lru_cache(maxsize=1024)
def _statements(key: ScopeKey) -> _Statements:
    scope = youth_scope_of(key)
    papers_due = (
        select(Youth.id, Youth.first_name, Youth.last_name, Document.kind, Document.expires_on)
        .join(Document, Document.youth_id == Youth.id)
        .where(
            scope,
            Document.kind.in_(list(EXPIRING_KINDS)),
            Document.expires_on > bindparam("papers_after"),
            Document.expires_on <= bindparam("papers_until"),
            papers.latest_of_kind(),
        )
        .order_by(Document.expires_on)
        .limit(LIMIT)
    )
    newer = aliased(AidRequest)
    renewals_due = (
        select(Youth.id, Youth.first_name, Youth.last_name, AidRequest.renewal_due_on)
        .join(AidRequest, AidRequest.youth_id == Youth.id)
        .where(
            scope,
            AidRequest.aid_code == AidCode.ALLOCATION,
            AidRequest.status.in_(
                [RequestStatus.GRANTED, RequestStatus.PAID, RequestStatus.RENEWAL_DUE]
            ),
            AidRequest.renewal_due_on > bindparam("renewals_after"),
            AidRequest.renewal_due_on <= bindparam("renewals_until"),
            ~exists().where(
                newer.youth_id == AidRequest.youth_id,
                newer.aid_code == AidCode.ALLOCATION,
                newer.created_at > AidRequest.created_at,
            ),
        )
        .order_by(AidRequest.renewal_due_on)
        .limit(LIMIT)
    )
    birthdays_due = (
        select(Youth.id, Youth.first_name, Youth.last_name, Youth.birth_date)
        .where(
            scope,
            Youth.birth_date > bindparam("born_after"),
            Youth.birth_date <= bindparam("born_until"),
        )
        .order_by(Youth.birth_date)
        .limit(LIMIT)
    )
    return papers_due, renewals_due, birthdays_due
