"""The non-recours watch: who is contacted, why, when and how (PRODUCT.md), and what it hands
over to a person when a message cannot do it.

Selection is set-based: SQL returns only the youths something is due for (quiet long enough,
not opted out, not paused, under 25, no deletion asked), so the cycle never loops over every
youth in Python. A unique key (youth, reason, step, period) makes every contact happen once,
even when a job is retried or two schedulers run; on PostgreSQL a cycle also holds an
advisory lock.

A dry run and a real run take the same decisions: what is already done and who is within
the frequency cap are read once at the start, and every decision of the cycle updates them
in memory, in both modes. Only the writing differs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import ColumnElement, exists, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from paris_avenir.db import utcnow
from paris_avenir.kit.dates import PARIS, add_months, birthday, paris_day
from paris_avenir.kit.quiet_hours import QuietHours
from paris_avenir.messaging import notifications
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.outreach import checkin, labels, notices
from paris_avenir.outreach.models import (
    OutreachAttempt,
    OutreachReason,
    OutreachResponse,
)
from paris_avenir.outreach.notices import TRIGGER_TEXTS as TRIGGER_TEXTS  # queries below
from paris_avenir.outreach.policy import OutreachPolicy
from paris_avenir.outreach.policy import load as load_policy
from paris_avenir.staff import tasks
from paris_avenir.staff.models import StaffTask, TaskKind
from paris_avenir.staff.tasks import Escalation, TaskDetail
from paris_avenir.youths.activity import Activity, ActivityEvent, on_activity
from paris_avenir.youths.models import Channel, Youth

ADVISORY_LOCK_KEY = 7_414_2026  # any constant shared by every scheduler of this database
STEP_SMS, STEP_EMAIL, STEP_CALL = 1, 2, 3
# Hand-over to a person: an interview due this soon without a booking (the youth was invited
# 30 days before). A request is handed over once the instruction queue calls it late
# (aid_requests.instruction.OVERDUE_DAYS).
INTERVIEW_TASK_NOTICE = timedelta(days=14)


@dataclass(frozen=True)
class Contact:
    """One decision of the cycle: what is (or, in a dry run, would be) done for a youth."""

    youth_id: uuid.UUID
    youth_ref: str  # the ASE reference: what an operator's output may show, not a name
    reason: OutreachReason
    step: int
    channel: Channel | None  # None: a task for the référent
    period_key: str


@dataclass(frozen=True)
class HandOver:
    """A task the cycle opens (or would open) for a person, outside the message steps."""

    youth_id: uuid.UUID
    youth_ref: str
    kind: TaskKind
    key: str


@dataclass
class CycleReport:
    contacts: list[Contact] = field(default_factory=list)
    tasks: list[HandOver] = field(default_factory=list)
    escalations: list[Escalation] = field(default_factory=list)
    skipped_locked: bool = False


@dataclass
class _Cycle:
    """What one pass knows and decides, the same in a dry run and a real one."""

    session: Session
    now: datetime
    policy: OutreachPolicy
    base_url: str
    secret_key: str
    dry_run: bool
    report: CycleReport
    # Within the frequency cap: read at the start, then every message decided adds to it.
    capped: set[uuid.UUID] = field(default_factory=set)

    @property
    def quiet(self) -> QuietHours:
        return self.policy.quiet_hours


def _reference_instant() -> ColumnElement[datetime]:
    """When the youth was last active: meaningful activity, else activation, else creation."""
    return func.coalesce(Youth.last_activity_at, Youth.activated_at, Youth.created_at)


def _under_25(now: datetime) -> ColumnElement[bool]:
    return Youth.birth_date > add_months(paris_day(now), -12 * 25)


def _eligible(now: datetime, policy: OutreachPolicy) -> list[ColumnElement[bool]]:
    return [
        Youth.outreach_opted_out_at.is_(None),
        or_(Youth.outreach_paused_until.is_(None), Youth.outreach_paused_until <= now),
        Youth.deletion_requested_at.is_(None),
        _under_25(now),  # stop at 25
    ]


def _recently_contacted(now: datetime, policy: OutreachPolicy) -> ColumnElement[bool]:
    """The frequency cap: a message (not a call task) within the last N days, or a person
    of the team who reached the youth in that time (automation yields to people)."""
    since = now - timedelta(days=policy.frequency_cap_days)
    return or_(
        exists().where(
            OutreachAttempt.youth_id == Youth.id,
            OutreachAttempt.channel.is_not(None),
            OutreachAttempt.attempted_at > since,
        ),
        tasks.last_staff_contact_clause(Youth.id, since),
    )


def inactivity_candidates(session: Session, now: datetime, policy: OutreachPolicy) -> list[Youth]:
    """Youths quiet for at least the policy's days: one query, whatever the number of youths."""
    reference = _reference_instant()
    return list(
        session.scalars(
            select(Youth)
            .where(
                reference <= now - timedelta(days=policy.inactivity_days),
                *_eligible(now, policy),
            )
            .order_by(Youth.id)
        )
    )


def _step_due(quiet_days: int, policy: OutreachPolicy) -> tuple[int, int] | None:
    """(cycle, step) due after this many quiet days: SMS, then email, then a call, every
    `repeat_every_days` again."""
    if quiet_days < policy.inactivity_days:
        return None
    elapsed = quiet_days - policy.inactivity_days
    cycle, offset = divmod(elapsed, policy.repeat_every_days)
    email_offset = policy.email_step_day - policy.sms_step_day
    call_offset = policy.call_task_day - policy.sms_step_day
    step = (
        STEP_CALL if offset >= call_offset else STEP_EMAIL if offset >= email_offset else STEP_SMS
    )
    return cycle, step


def _claim(
    session: Session,
    youth: Youth,
    reason: OutreachReason,
    step: int,
    period_key: str,
    channel: Channel | None,
    now: datetime,
) -> OutreachAttempt | None:
    """Records the attempt; None when this (youth, reason, step, period) already happened."""
    attempt = OutreachAttempt(
        youth_id=youth.id,
        reason=reason,
        step=step,
        period_key=period_key,
        channel=channel,
        attempted_at=now,
    )
    try:
        with session.begin_nested():
            session.add(attempt)
            session.flush()
    except IntegrityError:
        return None
    return attempt


def _send(
    cycle: _Cycle, youth: Youth, attempt: OutreachAttempt, link: str | None = None
) -> OutboxMessage | None:
    notice = notices.for_attempt(youth, attempt, base_url=cycle.base_url, link=link)
    message = notifications.notify(cycle.session, youth, notice, now=cycle.now, quiet=cycle.quiet)
    # The call task that may follow shows what became of each message of the period.
    attempt.outbox_message_id = message.id if message else None
    return message


def _hand_over(
    cycle: _Cycle,
    youth: Youth,
    kind: TaskKind,
    attempt: OutreachAttempt,
    detail: TaskDetail,
) -> None:
    tasks.open_task(
        cycle.session,
        youth_id=youth.id,
        kind=kind,
        key=f"outreach:{attempt.id}",
        now=cycle.now,
        outreach_attempt_id=attempt.id,
        detail=detail,
        base_url=cycle.base_url,
    )


def _contact(
    cycle: _Cycle,
    youth: Youth,
    reason: OutreachReason,
    step: int,
    period_key: str,
    channel: Channel | None,
) -> OutreachAttempt | None:
    """Decides one contact: listed in both modes, and written in a real run. Returns the
    attempt written (None in a dry run, or when another scheduler made it first)."""
    contact = Contact(youth.id, youth.ase_ref, reason, step, channel, period_key)
    if channel is not None:
        cycle.capped.add(youth.id)
    if cycle.dry_run:
        cycle.report.contacts.append(contact)
        return None
    attempt = _claim(cycle.session, youth, reason, step, period_key, channel, cycle.now)
    if attempt is not None:
        cycle.report.contacts.append(contact)
    return attempt


def _unreachable_detail(reason: OutreachReason) -> TaskDetail:
    return {"about": labels.nothing_works(reason)}


def _inactivity_contacts_made(
    session: Session, now: datetime, policy: OutreachPolicy
) -> set[tuple[uuid.UUID, int, str]]:
    """(youth, step, period) already done for the quiet youths: one query joining the same
    selection, so the cycle does not try (and fail) an insert for every youth every time."""
    reference = _reference_instant()
    rows = session.execute(
        select(OutreachAttempt.youth_id, OutreachAttempt.step, OutreachAttempt.period_key)
        .join(Youth, Youth.id == OutreachAttempt.youth_id)
        .where(
            OutreachAttempt.reason == OutreachReason.INACTIVITY,
            reference <= now - timedelta(days=policy.inactivity_days),
            *_eligible(now, policy),
        )
    ).all()
    return {(row[0], int(row[1]), str(row[2])) for row in rows}


def run_inactivity(cycle: _Cycle) -> None:
    session, now, policy = cycle.session, cycle.now, cycle.policy
    done = _inactivity_contacts_made(session, now, policy)
    for youth in inactivity_candidates(session, now, policy):
        reference = youth.last_activity_at or youth.activated_at or youth.created_at
        quiet_days = (now - reference).days
        due = _step_due(quiet_days, policy)
        if due is None:
            continue
        period, step = due
        period_key = f"{paris_day(reference).isoformat()}:{period}"
        if (youth.id, step, period_key) in done:
            continue  # the usual case: known in one query, not by a failing insert per youth
        if step == STEP_CALL:
            channel = None
        else:
            if youth.id in cycle.capped:
                continue
            channel = notifications.reachable_channel(
                youth, Channel.SMS if step == STEP_SMS else Channel.EMAIL
            )
        attempt = _contact(cycle, youth, OutreachReason.INACTIVITY, step, period_key, channel)
        if attempt is None:
            continue
        if step == STEP_CALL:
            _hand_over(
                cycle,
                youth,
                TaskKind.PHONE_YOUTH,
                attempt,
                {"period": period_key, "quiet_days": quiet_days},
            )
        elif channel is None:
            _hand_over(
                cycle,
                youth,
                TaskKind.UNREACHABLE,
                attempt,
                _unreachable_detail(OutreachReason.INACTIVITY),
            )
        else:
            _send(cycle, youth, attempt)


def run_check_ins(cycle: _Cycle) -> None:
    """Every N days, a "Comment ça va ?" with one-tap answers, to youths who are not quiet
    (quiet youths are in the inactivity steps already). A person of the team who reached
    the youth in that time counts as the check-in."""
    session, now, policy = cycle.session, cycle.now, cycle.policy
    anchor = func.coalesce(Youth.activated_at, Youth.created_at)
    reference = _reference_instant()
    latest = (
        select(func.max(OutreachAttempt.attempted_at))
        .where(
            OutreachAttempt.youth_id == Youth.id, OutreachAttempt.reason == OutreachReason.CHECK_IN
        )
        .scalar_subquery()
    )
    every = timedelta(days=policy.check_in_every_days)
    youths = session.scalars(
        select(Youth)
        .where(
            anchor <= now - every,
            reference > now - timedelta(days=policy.inactivity_days),
            or_(latest.is_(None), latest <= now - every),
            ~tasks.last_staff_contact_clause(Youth.id, now - every),
            *_eligible(now, policy),
        )
        .order_by(Youth.id)
    ).all()
    for youth in youths:
        if youth.id in cycle.capped:
            continue
        started = youth.activated_at or youth.created_at
        period_key = str((now - started).days // policy.check_in_every_days)
        channel = notifications.reachable_channel(youth)
        if channel is None:
            continue
        attempt = _contact(cycle, youth, OutreachReason.CHECK_IN, 1, period_key, channel)
        if attempt is None:
            continue
        link = checkin.link(attempt.id, secret_key=cycle.secret_key, base_url=cycle.base_url)
        _send(cycle, youth, attempt, link=link)


def _holds_lock(session: Session) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True  # SQLite: one writer at a time anyway
    return bool(
        session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
    )


def run_cycle(
    session: Session,
    *,
    base_url: str,
    secret_key: str,
    now: datetime | None = None,
    dry_run: bool = False,
) -> CycleReport:
    """One pass of the watch. The caller commits (or, for a dry run, rolls back)."""
    now = now or utcnow()
    report = CycleReport()
    if not _holds_lock(session):
        report.skipped_locked = True
        return report
    policy = load_policy(session)
    cycle = _Cycle(session, now, policy, base_url, secret_key, dry_run, report)
    cycle.capped = set(session.scalars(select(Youth.id).where(_recently_contacted(now, policy))))
    run_inactivity(cycle)
    # The specific reasons first; the generic "Comment ça va ?" yields to them (frequency cap).
    run_triggers(cycle)
    run_check_ins(cycle)
    run_hand_overs(cycle)
    run_escalations(cycle)
    return report


def record_response(
    session: Session,
    youth_id: uuid.UUID,
    response: OutreachResponse,
    *,
    now: datetime | None = None,
    window_days: int | None = None,
) -> OutreachAttempt | None:
    """A sign-in, an answer, a message or a booking within the window is credited to the
    contact that preceded it, so the City can see which step brings youths back."""
    now = now or utcnow()
    window = timedelta(
        days=window_days if window_days is not None else load_policy(session).response_window_days
    )
    attempt = session.scalar(
        select(OutreachAttempt)
        .where(
            OutreachAttempt.youth_id == youth_id,
            OutreachAttempt.responded_at.is_(None),
            OutreachAttempt.attempted_at <= now,
            OutreachAttempt.attempted_at >= now - window,
        )
        .order_by(OutreachAttempt.attempted_at.desc())
        .limit(1)
    )
    if attempt is not None:
        attempt.responded_at = now
        attempt.response = response
    return attempt


# What a youth does that answers the watch, by kind of activity (youths.activity).
RESPONSE_TO_ACTIVITY = {
    Activity.SIGN_IN: OutreachResponse.SIGN_IN,
    Activity.MESSAGE: OutreachResponse.MESSAGE,
    Activity.BOOKING: OutreachResponse.BOOKING,
}


@on_activity
def credit_activity(session: Session, event: ActivityEvent) -> None:
    """The one crediting of outreach responses: a person of the team in touch answers the
    step their task came from; a sign-in, a message or a booking answers the latest contact
    within the window. (A check-in answers its own attempt: outreach/checkin.py.)"""
    if event.kind is Activity.STAFF_CONTACT:
        if event.outreach_attempt_id is not None:
            session.execute(
                update(OutreachAttempt)
                .where(
                    OutreachAttempt.id == event.outreach_attempt_id,
                    OutreachAttempt.responded_at.is_(None),
                )
                .values(responded_at=event.at, response=OutreachResponse.STAFF_CONTACT)
                .execution_options(synchronize_session=False)
            )
        return
    response = RESPONSE_TO_ACTIVITY.get(event.kind)
    if response is not None:
        record_response(session, event.youth.id, response, now=event.at)


# --- The other triggers -------------------------------------------------------------------


def _turning(age: int, notice_days: int, now: datetime) -> ColumnElement[bool]:
    """Youths who turn `age` after today and within `notice_days`."""
    today = paris_day(now)
    born_after = add_months(today, -12 * age)
    born_before = add_months(today + timedelta(days=notice_days), -12 * age)
    return (Youth.birth_date > born_after) & (Youth.birth_date <= born_before)


def _trigger_candidates(
    session: Session, now: datetime, policy: OutreachPolicy
) -> list[tuple[Youth, OutreachReason, str]]:
    """(youth, reason, period) for every trigger due now: one query per trigger."""
    from paris_avenir.aid_requests.models import AidCode, AidRequest, AidRequestEvent, RequestStatus
    from paris_avenir.appointments.models import Appointment, AppointmentKind, AppointmentStatus

    eligible = _eligible(now, policy)
    newer = aliased(AidRequest)
    due: list[tuple[Youth, OutreachReason, str]] = []
    waited = (
        select(AidRequestEvent.aid_request_id, func.max(AidRequestEvent.occurred_at).label("since"))
        .where(AidRequestEvent.to_status == RequestStatus.MISSING_DOCUMENTS)
        .group_by(AidRequestEvent.aid_request_id)
        .subquery()
    )
    for youth, request_id in session.execute(
        select(Youth, AidRequest.id)
        .join(AidRequest, AidRequest.youth_id == Youth.id)
        .join(waited, waited.c.aid_request_id == AidRequest.id)
        .where(
            AidRequest.status == RequestStatus.MISSING_DOCUMENTS,
            waited.c.since <= now - timedelta(days=policy.documents_awaited_days),
            *eligible,
        )
    ).all():
        due.append((youth, OutreachReason.DOCUMENTS_AWAITED, str(request_id)))
    for youth, appointment_id in session.execute(
        select(Youth, Appointment.id)
        .join(Appointment, Appointment.youth_id == Youth.id)
        .where(
            Appointment.status == AppointmentStatus.MISSED,
            Appointment.starts_at >= now - timedelta(days=7),
            # Psychological support is health data: a missed session the youth did not
            # share leaves no trace the référent can see (the psychologist follows it up).
            or_(
                Appointment.kind != AppointmentKind.PSYCHOLOGIST,
                Appointment.shared_with_referent,
            ),
            *eligible,
        )
    ).all():
        due.append((youth, OutreachReason.MISSED_APPOINTMENT, str(appointment_id)))
    for age, notice, reason in (
        (21, policy.birthday_21_notice_days, OutreachReason.BIRTHDAY_21),
        (25, policy.birthday_25_notice_days, OutreachReason.BIRTHDAY_25),
    ):
        for youth in session.scalars(select(Youth).where(_turning(age, notice, now), *eligible)):
            due.append((youth, reason, str(youth.birth_date.year + age)))
    for youth, request_id in session.execute(
        select(Youth, AidRequest.id)
        .join(AidRequest, AidRequest.youth_id == Youth.id)
        .where(
            AidRequest.aid_code == AidCode.ALLOCATION,
            AidRequest.status.in_(
                [RequestStatus.GRANTED, RequestStatus.PAID, RequestStatus.RENEWAL_DUE]
            ),
            AidRequest.renewal_due_on <= now + timedelta(days=30),
            # Not once a new allocation request exists (the youth renewed already).
            ~exists().where(
                newer.youth_id == AidRequest.youth_id,
                newer.aid_code == AidCode.ALLOCATION,
                newer.created_at > AidRequest.created_at,
            ),
            *eligible,
        )
    ).all():
        due.append((youth, OutreachReason.ALLOCATION_RENEWAL, str(request_id)))
    return due


def _trigger_contacts_made(
    session: Session, candidates: list[tuple[Youth, OutreachReason, str]]
) -> set[tuple[uuid.UUID, OutreachReason, str]]:
    """(youth, reason, period) already contacted among the candidates: one query."""
    if not candidates:
        return set()
    rows = session.execute(
        select(OutreachAttempt.youth_id, OutreachAttempt.reason, OutreachAttempt.period_key).where(
            OutreachAttempt.youth_id.in_({youth.id for youth, _reason, _key in candidates}),
            OutreachAttempt.reason.in_(list(TRIGGER_TEXTS)),
            OutreachAttempt.step == 1,
        )
    ).all()
    return {(row[0], row[1], str(row[2])) for row in rows}


def run_triggers(cycle: _Cycle) -> None:
    candidates = _trigger_candidates(cycle.session, cycle.now, cycle.policy)
    done = _trigger_contacts_made(cycle.session, candidates)
    for youth, reason, period_key in candidates:
        if (youth.id, reason, period_key) in done or youth.id in cycle.capped:
            continue
        channel = notifications.reachable_channel(youth)
        attempt = _contact(cycle, youth, reason, 1, period_key, channel)
        if attempt is None:
            continue
        if channel is None:
            _hand_over(cycle, youth, TaskKind.UNREACHABLE, attempt, _unreachable_detail(reason))
        else:
            _send(cycle, youth, attempt)


# --- Hand-over to a person ------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    """A hand-over the cycle may open: the task's kind, key and facts."""

    youth: Youth
    kind: TaskKind
    key: str
    detail: TaskDetail
    due_at: datetime | None = None
    aid_request_id: uuid.UUID | None = None


def _hand_over_candidates(
    session: Session, now: datetime, policy: OutreachPolicy
) -> list[_Candidate]:
    """Every hand-over due now: one query per kind. Youths who asked for deletion or turned
    25 are left out; an opt-out or a pause stops messages, not the référent's work."""
    from paris_avenir.aid_requests import kinds as catalogue
    from paris_avenir.aid_requests.instruction import OVERDUE_DAYS
    from paris_avenir.aid_requests.models import WAITING_ON_STAFF, AidRequest
    from paris_avenir.appointments.models import (
        FOLLOW_UP_INTERVIEW_AFTER_EXIT,
        Appointment,
        AppointmentKind,
        AppointmentStatus,
    )

    today = paris_day(now)
    alive = [Youth.deletion_requested_at.is_(None), _under_25(now)]
    found: list[_Candidate] = []
    for youth, request in session.execute(
        select(Youth, AidRequest)
        .join(AidRequest, AidRequest.youth_id == Youth.id)
        .where(
            AidRequest.status.in_(WAITING_ON_STAFF),
            AidRequest.submitted_at <= now - timedelta(days=OVERDUE_DAYS),
            *alive,
        )
        .order_by(AidRequest.submitted_at)
    ).all():
        assert request.submitted_at is not None
        detail: TaskDetail = {
            "aid": catalogue.kind(request.aid_code).name,
            "request": request.reference,
            "submitted_on": paris_day(request.submitted_at).isoformat(),
        }
        found.append(
            _Candidate(
                youth,
                TaskKind.REQUEST_WAITING,
                f"request-waiting:{request.id}",
                detail,
                aid_request_id=request.id,
            )
        )
    # The interview due 6 months after leaving care, not booked 14 days before.
    latest_exit = add_months(today + INTERVIEW_TASK_NOTICE, -FOLLOW_UP_INTERVIEW_AFTER_EXIT)
    earliest_exit = add_months(today, -FOLLOW_UP_INTERVIEW_AFTER_EXIT) - timedelta(days=60)
    for youth in session.scalars(
        select(Youth).where(
            Youth.ase_exit_date.is_not(None),
            Youth.ase_exit_date >= earliest_exit,
            Youth.ase_exit_date <= latest_exit,
            ~exists().where(
                Appointment.youth_id == Youth.id,
                Appointment.kind == AppointmentKind.FOLLOW_UP_INTERVIEW,
                Appointment.status != AppointmentStatus.CANCELLED,
            ),
            *alive,
        )
    ):
        assert youth.ase_exit_date is not None
        due_on = add_months(youth.ase_exit_date, FOLLOW_UP_INTERVIEW_AFTER_EXIT)
        found.append(
            _Candidate(
                youth,
                TaskKind.FOLLOW_UP_INTERVIEW,
                f"follow-up-interview:{youth.id}:{youth.ase_exit_date.isoformat()}",
                {"due_on": due_on.isoformat()},
                _paris_noon(max(due_on, today + timedelta(days=2))),
            )
        )
    for age, notice, kind in (
        (21, policy.birthday_21_notice_days, TaskKind.BIRTHDAY_21),
        (25, policy.birthday_25_notice_days, TaskKind.BIRTHDAY_25),
    ):
        for youth in session.scalars(
            select(Youth).where(_turning(age, notice, now), Youth.deletion_requested_at.is_(None))
        ):
            day = birthday(youth.birth_date, age)
            found.append(
                _Candidate(
                    youth,
                    kind,
                    f"birthday-{age}:{youth.id}:{day.year}",
                    {"birthday": day.isoformat()},
                    _paris_noon(max(day - timedelta(days=30), today + timedelta(days=2))),
                )
            )
    return found


def _paris_noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=PARIS)


def run_hand_overs(cycle: _Cycle) -> None:
    session = cycle.session
    candidates = _hand_over_candidates(session, cycle.now, cycle.policy)
    keys = [candidate.key for candidate in candidates]
    existing = (
        set(session.scalars(select(StaffTask.key).where(StaffTask.key.in_(keys))))
        if keys
        else set()
    )
    for candidate in candidates:
        if candidate.key in existing:
            continue
        existing.add(candidate.key)
        planned = HandOver(
            candidate.youth.id, candidate.youth.ase_ref, candidate.kind, candidate.key
        )
        if cycle.dry_run:
            cycle.report.tasks.append(planned)
            continue
        if tasks.open_task(
            session,
            youth_id=candidate.youth.id,
            kind=candidate.kind,
            key=candidate.key,
            now=cycle.now,
            due_at=candidate.due_at,
            aid_request_id=candidate.aid_request_id,
            detail=candidate.detail,
            base_url=cycle.base_url,
        ):
            cycle.report.tasks.append(planned)


def run_escalations(cycle: _Cycle) -> None:
    """Tasks open past their due date by the policy's delay move to the supervisor."""
    planned = tasks.plan_escalations(cycle.session, cycle.now, cycle.policy.task_escalation_days)
    if cycle.dry_run:
        cycle.report.escalations.extend(planned)
        return
    for escalation in planned:
        if tasks.escalate(cycle.session, escalation, now=cycle.now, base_url=cycle.base_url):
            cycle.report.escalations.append(escalation)
