"""The dashboard's "Échéances à venir": what expires soon in the caseload, dated, nearest
first: papers of the vault (4 months ahead, or expired this month), the allocation's
renewal and the 21st birthday (the free Navigo ends). Scope-checked like every list of the
back office (staff.scope.youth_scope): a référent sees only the youths they follow. Three
queries, whatever the caseload's size."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased

from paris_avenir.aid_requests.models import AidCode, AidRequest, RequestStatus
from paris_avenir.db import utcnow
from paris_avenir.documents.models import Document
from paris_avenir.documents.service import EXPIRING_KINDS, kind_label
from paris_avenir.kit.dates import add_months, birthday, paris_day
from paris_avenir.outreach import papers
from paris_avenir.staff.models import StaffUser
from paris_avenir.staff.scope import youth_scope
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
    found: list[tuple[uuid.UUID, str, str, date]] = []
    for youth_id, first, last, kind, expires_on in session.execute(
        select(Youth.id, Youth.first_name, Youth.last_name, Document.kind, Document.expires_on)
        .join(Document, Document.youth_id == Youth.id)
        .where(
            youth_scope(staff),
            Document.kind.in_(list(EXPIRING_KINDS)),
            Document.expires_on > today - SINCE,
            Document.expires_on <= add_months(today, papers.FIRST_NOTICE_MONTHS),
            papers.latest_of_kind(),
        )
        .order_by(Document.expires_on)
        .limit(LIMIT)
    ).all():
        assert expires_on is not None
        found.append((youth_id, f"{last} {first}", kind_label(kind), expires_on))
    newer = aliased(AidRequest)
    for youth_id, first, last, due_at in session.execute(
        select(Youth.id, Youth.first_name, Youth.last_name, AidRequest.renewal_due_on)
        .join(AidRequest, AidRequest.youth_id == Youth.id)
        .where(
            youth_scope(staff),
            AidRequest.aid_code == AidCode.ALLOCATION,
            AidRequest.status.in_(
                [RequestStatus.GRANTED, RequestStatus.PAID, RequestStatus.RENEWAL_DUE]
            ),
            AidRequest.renewal_due_on > now - SINCE,
            AidRequest.renewal_due_on <= now + ALLOCATION_AHEAD,
            ~exists().where(
                newer.youth_id == AidRequest.youth_id,
                newer.aid_code == AidCode.ALLOCATION,
                newer.created_at > AidRequest.created_at,
            ),
        )
        .order_by(AidRequest.renewal_due_on)
        .limit(LIMIT)
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
        select(Youth.id, Youth.first_name, Youth.last_name, Youth.birth_date)
        .where(
            youth_scope(staff),
            Youth.birth_date > add_months(today, -12 * 21),
            Youth.birth_date <= add_months(today + BIRTHDAY_AHEAD, -12 * 21),
        )
        .order_by(Youth.birth_date)
        .limit(LIMIT)
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
