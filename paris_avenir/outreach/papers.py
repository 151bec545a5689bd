"""Papers that expire: a titre de séjour, a récépissé or an identity paper in the vault with
an expiry date (PRODUCT.md, issue 18).

- The youth is reminded 4 months, 2 months and 1 month before (the prefecture asks for the
  renewal 2 to 4 months ahead), on their channel and in their language, with what to
  prepare and a link to book the guichet « démarches ». Each reminder is an attempt of the
  watch (reason PAPER_EXPIRY, step 1 to 3, period = the document): its unique key makes it
  happen once per document and step, even when two cycles run at once. Only the step due
  now is sent (a paper added 6 weeks before it expires gets the 2-month reminder, not the
  4-month one as well).
- Reminders are excepted from the frequency cap (PRODUCT.md: "reminders excepted"): they
  neither wait for it nor count in it. Quiet hours, opt-out and pauses hold as for every
  message of the watch.
- The référent gets a task one month before (one per document), closed as "fait" once a
  newer paper of the same kind is in the vault (at upload, and by the next cycle whoever
  added it or when the paper was deleted).
- The allocation's renewal gets the same task one month before (the youth's reminder is
  the watch's ALLOCATION_RENEWAL trigger, engine.py); the 21st birthday (Navigo) has its
  message and task already (engine.py, BIRTHDAY_21).

Only the latest paper of a kind counts: an older titre de séjour, replaced, is not
watched."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, cast

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session, aliased

from paris_avenir.documents.models import Document, DocumentKind
from paris_avenir.documents.service import EXPIRING_KINDS, KIND_LABELS
from paris_avenir.kit.dates import add_months, paris_day
from paris_avenir.messaging import notifications
from paris_avenir.messaging.notifications import Notice
from paris_avenir.outreach import notices
from paris_avenir.outreach.models import OutreachAttempt, OutreachReason
from paris_avenir.staff import tasks
from paris_avenir.staff.models import StaffTask, TaskKind
from paris_avenir.web.i18n import gettext
from paris_avenir.youths.models import Youth

if TYPE_CHECKING:
    from paris_avenir.outreach.engine import _Candidate, _Cycle, _Planned

# Step → months before the expiry date, latest first (the step due is the closest one).
STEPS = ((3, 1), (2, 2), (1, 4))
FIRST_NOTICE_MONTHS = 4
TASK_NOTICE = timedelta(days=30)
# A paper expired this recently still has its task (it must be renewed all the more).
TASK_AFTER_EXPIRY = timedelta(days=30)
TASK_KEY_PREFIX = "paper-expiry:"
BOOKING_PATH = notices.PAPER_BOOKING_PATH
ALLOCATION_TASK_KEY_PREFIX = "allocation-renewal:"


def step_due(expires_on: date, today: date) -> int | None:
    """The reminder due today for a paper: the closest of 4, 2 and 1 month before; None
    when it is further than 4 months away or expired already."""
    if expires_on <= today:
        return None
    for step, months in STEPS:
        if expires_on <= add_months(today, months):
            return step
    return None


def expiring_soon(expires_on: date | None, today: date) -> bool:
    """What the vault flags: expired, or within the first reminder's 4 months."""
    return expires_on is not None and expires_on <= add_months(today, FIRST_NOTICE_MONTHS)


def latest_of_kind() -> ColumnElement[bool]:
    """A WHERE clause on Document: no newer document of the same kind in the vault."""
    newer = aliased(Document)
    return ~exists().where(
        newer.youth_id == Document.youth_id,
        newer.kind == Document.kind,
        newer.created_at > Document.created_at,
    )


# --- The youth's reminders ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Paper:
    """What a reminder says of its paper (engine._Planned.about)."""

    kind: DocumentKind
    expires_on: date


def notice(planned: _Planned, *, base_url: str) -> Notice:
    """The reminder of an attempt decided by the cycle (outreach/notices.py words it)."""
    assert isinstance(planned.about, Paper)
    return notices.for_paper(
        planned.youth,
        planned,
        kind=planned.about.kind,
        expires_on=planned.about.expires_on,
        base_url=base_url,
    )


def run_reminders(cycle: _Cycle) -> None:
    """The reminders due now and not sent yet, for the latest paper of each kind: one query
    for the papers, one for the reminders made."""
    from paris_avenir.outreach import engine

    now, session = cycle.now, cycle.session
    today = paris_day(now)
    with engine._reading(cycle):
        rows = session.execute(
            select(*engine._YOUTH_COLUMNS, Document.id, Document.kind, Document.expires_on)
            .join(Document, Document.youth_id == Youth.id)
            .where(
                Document.kind.in_(list(EXPIRING_KINDS)),
                Document.expires_on > today,
                Document.expires_on <= add_months(today, FIRST_NOTICE_MONTHS),
                latest_of_kind(),
                # Opt-out, pause, deletion asked, 25: as every message of the watch; the
                # frequency cap is not asked (a reminder is excepted from it).
                *engine._eligible(now, cycle.policy),
            )
            .order_by(Document.expires_on, Document.id)
        ).all()
        made = _made(session, {row[0] for row in rows})
    for row in rows:
        youth = engine._addressee(row)
        document_id, kind, expires_on = cast(tuple[uuid.UUID, DocumentKind, date], tuple(row[-3:]))
        step = step_due(expires_on, today)
        if step is None or (str(document_id), step) in made:
            continue
        channel = notifications.reachable_channel(youth)
        unreachable = channel is None
        engine._decide(
            cycle,
            engine._Planned(
                youth,
                OutreachReason.PAPER_EXPIRY,
                step,
                str(document_id),
                channel,
                TaskKind.UNREACHABLE if unreachable else None,
                engine._unreachable_detail(OutreachReason.PAPER_EXPIRY) if unreachable else None,
                about=Paper(kind, expires_on),
            ),
        )


def _made(session: Session, youth_ids: set[uuid.UUID]) -> set[tuple[str, int]]:
    """(document, step) of the reminders made for these youths."""
    if not youth_ids:
        return set()
    made: set[tuple[str, int]] = set()
    ids = sorted(youth_ids)
    for start in range(0, len(ids), 500):
        made |= {
            (str(period), int(step))
            for period, step in session.execute(
                select(OutreachAttempt.period_key, OutreachAttempt.step).where(
                    OutreachAttempt.youth_id.in_(ids[start : start + 500]),
                    OutreachAttempt.reason == OutreachReason.PAPER_EXPIRY,
                )
            )
        }
    return made


# --- The référent's tasks -------------------------------------------------------------------


def hand_overs(
    session: Session, now: datetime, alive: Sequence[ColumnElement[bool]]
) -> list[_Candidate]:
    """A task a month before a paper expires (the latest of its kind), and a month before
    the allocation's renewal is due (unless a new allocation request exists)."""
    from paris_avenir.aid_requests.models import AidCode, AidRequest, RequestStatus
    from paris_avenir.outreach import engine

    today = paris_day(now)
    found: list[_Candidate] = []
    for youth_id, youth_ref, document_id, kind, expires_on in session.execute(
        select(Youth.id, Youth.ase_ref, Document.id, Document.kind, Document.expires_on)
        .join(Document, Document.youth_id == Youth.id)
        .where(
            Document.kind.in_(list(EXPIRING_KINDS)),
            Document.expires_on <= today + TASK_NOTICE,
            Document.expires_on > today - TASK_AFTER_EXPIRY,
            latest_of_kind(),
            *alive,
        )
    ).all():
        assert expires_on is not None
        found.append(
            engine._Candidate(
                youth_id,
                youth_ref,
                TaskKind.PAPER_EXPIRING,
                f"{TASK_KEY_PREFIX}{document_id}",
                # The back office reads French: the kind in words as staff read it.
                {"paper": str(KIND_LABELS[kind]), "expires_on": expires_on.isoformat()},
                engine._paris_noon(max(expires_on - timedelta(days=14), today + timedelta(days=2))),
            )
        )
    newer = aliased(AidRequest)
    for youth_id, youth_ref, request in session.execute(
        select(Youth.id, Youth.ase_ref, AidRequest)
        .join(AidRequest, AidRequest.youth_id == Youth.id)
        .where(
            AidRequest.aid_code == AidCode.ALLOCATION,
            AidRequest.status.in_(
                [RequestStatus.GRANTED, RequestStatus.PAID, RequestStatus.RENEWAL_DUE]
            ),
            AidRequest.renewal_due_on.is_not(None),
            AidRequest.renewal_due_on <= now + TASK_NOTICE,
            AidRequest.renewal_due_on > now - TASK_AFTER_EXPIRY,
            ~exists().where(
                newer.youth_id == AidRequest.youth_id,
                newer.aid_code == AidCode.ALLOCATION,
                newer.created_at > AidRequest.created_at,
            ),
            *alive,
        )
    ).all():
        assert request.renewal_due_on is not None
        due_on = paris_day(request.renewal_due_on)
        found.append(
            engine._Candidate(
                youth_id,
                youth_ref,
                TaskKind.ALLOCATION_RENEWAL,
                f"{ALLOCATION_TASK_KEY_PREFIX}{request.id}",
                {"request": request.reference, "renewal_due_on": due_on.isoformat()},
                engine._paris_noon(max(due_on - timedelta(days=7), today + timedelta(days=2))),
                aid_request_id=request.id,
            )
        )
    return found


def close_replaced(session: Session, *, now: datetime, youth_id: uuid.UUID | None = None) -> int:
    """Closes, as "fait", the open paper tasks whose paper is no longer the latest of its
    kind (a newer one was added) or is gone from the vault. For one youth (an upload), or
    for all (the cycle). Returns how many."""
    conditions: list[ColumnElement[bool]] = [
        StaffTask.kind == TaskKind.PAPER_EXPIRING,
        StaffTask.done_at.is_(None),
    ]
    if youth_id is not None:
        conditions.append(StaffTask.youth_id == youth_id)
    open_keys = list(session.scalars(select(StaffTask.key).where(*conditions)))
    if not open_keys:
        return 0
    by_document: dict[uuid.UUID, str] = {}
    for key in open_keys:
        try:
            by_document[uuid.UUID(key.removeprefix(TASK_KEY_PREFIX))] = key
        except ValueError:
            continue
    current: set[uuid.UUID] = set()
    ids = sorted(by_document)
    for start in range(0, len(ids), 500):
        current |= set(
            session.scalars(
                select(Document.id).where(
                    Document.id.in_(ids[start : start + 500]), latest_of_kind()
                )
            )
        )
    replaced = [key for document_id, key in by_document.items() if document_id not in current]
    if not replaced:
        return 0
    return tasks.close_done(
        session, kinds=[TaskKind.PAPER_EXPIRING], by_id=None, now=now, keys=replaced
    )


# --- What people see --------------------------------------------------------------------------


@dataclass(frozen=True)
class Expiring:
    """A paper of the vault that expires soon, as the youth reads it."""

    document_id: uuid.UUID
    kind: DocumentKind
    expires_on: date
    expired: bool
    prepare: list[str]
    intro: str


def vault_warnings(documents: Sequence[Document], today: date) -> dict[uuid.UUID, Expiring]:
    """The youth's papers that expire within 4 months (or have expired), the latest of
    each kind only, by document: what to prepare, in the current language."""
    latest: dict[DocumentKind, Document] = {}
    for document in documents:
        known = latest.get(document.kind)
        if known is None or document.created_at > known.created_at:
            latest[document.kind] = document
    found = {}
    for kind, document in latest.items():
        if kind not in EXPIRING_KINDS or not expiring_soon(document.expires_on, today):
            continue
        assert document.expires_on is not None
        intro_kind = kind if kind in notices.PAPER_INTROS else DocumentKind.RESIDENCE_PERMIT
        found[document.id] = Expiring(
            document.id,
            kind,
            document.expires_on,
            document.expires_on < today,
            notices.paper_prepare_list(intro_kind),
            gettext(notices.PAPER_INTROS[intro_kind], date=notices.paper_day(document.expires_on)),
        )
    return found
