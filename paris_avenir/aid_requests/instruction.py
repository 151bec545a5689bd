"""Instruction by staff: a queue oldest first, and every decision recorded in the request's
history, audited, and told to the youth through the outbox.

Separation of duties: a grant above what the aid's parameters allow is refused; a grant
above the admin's threshold, or on a request the same staff member filed in counter mode,
waits ("à confirmer") until a second person, a supervisor of the team, confirms it. Nobody
confirms their own grant, and a confirmation happens once (a conditional UPDATE)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, time

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session, selectinload

from paris_avenir.aid_requests import duties, notices
from paris_avenir.aid_requests import kinds as catalogue
from paris_avenir.aid_requests.models import WAITING_ON_STAFF, AidRequest, RequestStatus
from paris_avenir.aid_requests.service import (
    RequestConflict,
    RequestError,
    check_transition,
    record_transition,
)
from paris_avenir.audit import service as audit
from paris_avenir.db import utcnow
from paris_avenir.kit.dates import PARIS, add_months, paris_day
from paris_avenir.messaging import notifications
from paris_avenir.staff import tasks
from paris_avenir.staff.models import StaffUser, TaskKind
from paris_avenir.staff.scope import one_in_scope, youth_scope
from paris_avenir.web import i18n
from paris_avenir.youths.models import Youth

QUEUE_STATUSES = (*WAITING_ON_STAFF, RequestStatus.MISSING_DOCUMENTS)
OVERDUE_DAYS = 30
QUEUE_LIMIT = 200


@dataclass(frozen=True)
class QueueRow:
    request: AidRequest
    youth_name: str
    days_waiting: int

    @property
    def overdue(self) -> bool:
        return self.days_waiting > OVERDUE_DAYS


def queue(session: Session, staff: StaffUser, *, now: datetime | None = None) -> list[QueueRow]:
    """Requests to instruct in the staff member's scope, the oldest first (one query)."""
    now = now or utcnow()
    rows = session.execute(
        select(AidRequest, Youth.first_name, Youth.last_name)
        .join(Youth, Youth.id == AidRequest.youth_id)
        .where(youth_scope(staff), AidRequest.status.in_(QUEUE_STATUSES))
        .order_by(
            # Grants waiting for a second person first: a supervisor sees them at the top.
            case((AidRequest.status == RequestStatus.TO_CONFIRM, 0), else_=1),
            AidRequest.submitted_at.asc().nulls_last(),
            AidRequest.created_at,
        )
        .limit(QUEUE_LIMIT)
    ).all()
    return [
        QueueRow(
            request, f"{first} {last}", (now - (request.submitted_at or request.created_at)).days
        )
        for request, first, last in rows
    ]


def request_for_staff(
    session: Session, staff: StaffUser, request_id: str, *, ip_address: str | None
) -> AidRequest:
    """The request with its history and documents if its youth is in scope; otherwise a
    404 identical to a missing id, with an access_denied audit entry."""
    return one_in_scope(
        session,
        staff,
        request_id,
        lambda parsed: (
            select(AidRequest)
            .join(Youth, Youth.id == AidRequest.youth_id)
            .where(AidRequest.id == parsed, youth_scope(staff))
            .options(selectinload(AidRequest.events), selectinload(AidRequest.documents))
        ),
        object_type="aid_request",
        ip_address=ip_address,
    )


def _tell_youth(
    session: Session, request: AidRequest, event_id: uuid.UUID, base_url: str, now: datetime
) -> None:
    notice = notices.decision(request, event_id=event_id, base_url=base_url)
    if notice is not None:
        notifications.notify(session, session.get_one(Youth, request.youth_id), notice, now=now)


@dataclass(frozen=True)
class Decider:
    """Who decides, from where and when: the same for every decision of one request to
    the platform (the audit trail and the youth's message say it)."""

    staff: StaffUser
    base_url: str
    ip_address: str | None = None
    now: datetime = field(default_factory=utcnow)


def _decide(
    session: Session,
    request: AidRequest,
    by: Decider,
    to: RequestStatus,
    *,
    reason: str | None,
) -> None:
    event = record_transition(
        session, request, to, actor_staff_id=by.staff.id, reason=reason, now=by.now
    )
    audit.record(
        session,
        "aid_request.update",
        actor_staff_id=by.staff.id,
        youth_id=request.youth_id,
        object_type="aid_request",
        object_id=request.id,
        ip_address=by.ip_address,
        detail={"to": to.value},
        now=by.now,
    )
    # Deciding, or telling the youth what is missing, is what the request's tasks asked.
    done = [TaskKind.DOCUMENTS_RECEIVED]
    if to is not RequestStatus.UNDER_REVIEW:
        done.append(TaskKind.REQUEST_WAITING)
    tasks.close_done(session, kinds=done, aid_request_id=request.id, by_id=by.staff.id, now=by.now)
    _tell_youth(session, request, event.id, by.base_url, by.now)


def take_on(session: Session, request: AidRequest, by: Decider) -> None:
    _decide(session, request, by, RequestStatus.UNDER_REVIEW, reason=None)


def ask_for_documents(session: Session, request: AidRequest, by: Decider, *, what: str) -> None:
    what = what.strip()
    if not what:
        raise RequestError(i18n.gettext("Écrivez au jeune ce qui manque."))
    check_transition(request, RequestStatus.MISSING_DOCUMENTS)  # before changing anything
    request.decision_reason = what[:1000]
    _decide(session, request, by, RequestStatus.MISSING_DOCUMENTS, reason=what[:1000])


def grant(
    session: Session,
    request: AidRequest,
    by: Decider,
    *,
    amount_cents: int | None,
    message: str,
) -> bool:
    """Grants the request, or, when a second person must confirm it, puts it "à confirmer".
    Returns whether it is granted now. An amount above the aid's cap is refused."""
    if request.status not in WAITING_ON_STAFF or request.status is RequestStatus.TO_CONFIRM:
        raise RequestConflict(i18n.gettext("Cette demande ne peut plus changer de cette façon."))
    duties.check_amount(session, request, amount_cents)
    reasons = duties.confirmation_reasons(session, request, by.staff, amount_cents)
    request.decision_reason = message.strip()[:1000] or None
    if not reasons:
        _grant_now(session, request, by, amount_cents)
        return True
    request.proposed_by_staff_id = by.staff.id
    request.proposed_amount_cents = amount_cents
    record_transition(
        session, request, RequestStatus.TO_CONFIRM, actor_staff_id=by.staff.id, now=by.now
    )
    audit.record(
        session,
        "aid_request.grant_proposed",
        actor_staff_id=by.staff.id,
        youth_id=request.youth_id,
        object_type="aid_request",
        object_id=request.id,
        ip_address=by.ip_address,
        detail={"amount_cents": amount_cents, "needs": reasons},
        now=by.now,
    )
    tasks.close_done(
        session,
        kinds=[TaskKind.DOCUMENTS_RECEIVED],
        aid_request_id=request.id,
        by_id=by.staff.id,
        now=by.now,
    )
    return False


def _grant_now(
    session: Session, request: AidRequest, by: Decider, amount_cents: int | None
) -> None:
    kind = catalogue.kind(request.aid_code)
    request.decided_at = by.now
    request.granted_amount_cents = amount_cents
    if kind.renewal_months:
        due = add_months(paris_day(by.now), kind.renewal_months)
        request.renewal_due_on = datetime.combine(due, time(12), tzinfo=PARIS)
    _decide(session, request, by, RequestStatus.GRANTED, reason=request.decision_reason)


def _claim(session: Session, request: AidRequest, staff: StaffUser, to: RequestStatus) -> None:
    """Moves a grant out of "à confirmer" once, whoever else tries at the same moment."""
    duties.check_confirmer(request, staff)
    claimed = session.execute(
        update(AidRequest)
        .where(
            AidRequest.id == request.id,
            AidRequest.status == RequestStatus.TO_CONFIRM,
            AidRequest.proposed_by_staff_id != staff.id,
        )
        .values(status=to)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise RequestConflict(duties.already_done())


def confirm_grant(session: Session, request: AidRequest, by: Decider) -> None:
    """The second person confirms: the request is granted, the youth is told."""
    _claim(session, request, by.staff, RequestStatus.GRANTED)
    proposer = request.proposed_by_staff_id
    _grant_now(session, request, by, request.proposed_amount_cents)
    audit.record(
        session,
        "aid_request.grant_confirmed",
        actor_staff_id=by.staff.id,
        youth_id=request.youth_id,
        object_type="aid_request",
        object_id=request.id,
        ip_address=by.ip_address,
        detail={
            "amount_cents": request.granted_amount_cents,
            "granted_by": str(proposer) if proposer else None,
        },
        now=by.now,
    )


def reject_grant(session: Session, request: AidRequest, by: Decider) -> None:
    """The second person does not confirm: back to the référent's review, nothing told to
    the youth (for them nothing was decided)."""
    _claim(session, request, by.staff, RequestStatus.UNDER_REVIEW)
    amount = request.proposed_amount_cents
    request.decision_reason = None
    request.proposed_amount_cents = None
    record_transition(
        session, request, RequestStatus.UNDER_REVIEW, actor_staff_id=by.staff.id, now=by.now
    )
    audit.record(
        session,
        "aid_request.grant_rejected",
        actor_staff_id=by.staff.id,
        youth_id=request.youth_id,
        object_type="aid_request",
        object_id=request.id,
        ip_address=by.ip_address,
        detail={"amount_cents": amount},
        now=by.now,
    )


def refuse(session: Session, request: AidRequest, by: Decider, *, reason: str) -> None:
    reason = reason.strip()
    if len(reason) < 10:
        raise RequestError(
            i18n.gettext(
                "Expliquez le refus au jeune, avec des mots simples (10 caractères au moins)."
            )
        )
    check_transition(request, RequestStatus.REFUSED)  # before changing anything
    request.decided_at = by.now
    request.decision_reason = reason[:1000]
    _decide(session, request, by, RequestStatus.REFUSED, reason=reason[:1000])
