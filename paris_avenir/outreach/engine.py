"""The non-recours watch: who is contacted, why, when and how (PRODUCT.md), and what it hands
over to a person when a message cannot do it.

Selection is set-based: SQL returns only the youths something is due for (quiet long enough,
not opted out, not paused, under 25, no deletion asked, within the frequency cap, the step
and period due not made yet), as light rows of the columns a message needs, so the cycle
never loops over every youth in Python nor builds (and decrypts) Youth objects. A unique key
(youth, reason, step, period) makes every contact happen once, even when a job is retried or
two schedulers run; on PostgreSQL a cycle also holds an advisory lock.

A real cycle writes in batches of BATCH_SIZE contacts, one transaction each (one INSERT …
ON CONFLICT DO NOTHING for the claims, one for the messages, one for the tasks): sign-ins
never wait for more than a batch, and a cycle stopped midway leaves its finished batches
done; the next one carries on from there (what is made is excluded by the selection).

A dry run and a real run take the same decisions: what is already done and who is within
the frequency cap are read from the database, and every message decided in the cycle adds
its youth to the cap in memory, in both modes. Only the writing differs.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session, aliased

from paris_avenir.db import (
    UTCDateTime,
    insert_many_ignoring_conflicts,
    paris_date,
    utcnow,
    whole_days,
)
from paris_avenir.kit.dates import PARIS, add_months, birthday, paris_day
from paris_avenir.kit.quiet_hours import QuietHours
from paris_avenir.messaging import notifications
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

# Reminders are excepted from the frequency cap (PRODUCT.md): a paper's reminder neither
# waits for it nor counts in it (outreach/papers.py).
CAP_EXEMPT = (OutreachReason.PAPER_EXPIRY,)
ADVISORY_LOCK_KEY = 7_414_2026  # any constant shared by every scheduler of this database
STEP_SMS, STEP_EMAIL, STEP_CALL = 1, 2, 3
# Contacts written per transaction: a sign-in waits for at most one batch (SQLite), and a
# batch's INSERTs stay small.
BATCH_SIZE = 500
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


# Contacts a report lists one by one (an operator's print-out); the others are counted.
SAMPLE_SIZE = 200
ContactKind = tuple[OutreachReason, int, Channel | None]  # reason, step, channel


@dataclass
class CycleReport:
    """What a cycle did: every contact counted by reason, step and channel, the first
    SAMPLE_SIZE of them listed (a first cycle makes tens of thousands: keeping each one
    cost tens of megabytes), and the tasks opened and moved."""

    contacts: list[Contact] = field(default_factory=list)  # the first SAMPLE_SIZE
    counts: Counter[ContactKind] = field(default_factory=Counter)
    tasks: list[HandOver] = field(default_factory=list)
    escalations: list[Escalation] = field(default_factory=list)
    skipped_locked: bool = False

    @property
    def contact_count(self) -> int:
        return self.counts.total()

    @property
    def unlisted(self) -> int:
        """Contacts counted but not in `contacts`."""
        return self.contact_count - len(self.contacts)

    @property
    def for_people(self) -> int:
        """Contacts that are a task for the référent (a call, an unreachable youth)."""
        return sum(count for (_r, _s, channel), count in self.counts.items() if channel is None)

    def add(self, planned: _Planned) -> None:
        self.counts[planned.reason, planned.step, planned.channel] += 1
        if len(self.contacts) < SAMPLE_SIZE:
            self.contacts.append(_as_contact(planned))


# What a contact needs of a youth (never the encrypted columns): a light row, not a Youth.
_YOUTH_COLUMNS = (
    Youth.id,
    Youth.ase_ref,
    Youth.first_name,
    Youth.language,
    Youth.preferred_channel,
    Youth.phone,
    Youth.phone_unreachable_at,
    Youth.email,
    Youth.email_unreachable_at,
    Youth.outreach_email_opted_out_at,
    Youth.detailed_messages,
)


@dataclass(frozen=True, slots=True)
class Addressee:
    """A youth as the cycle knows them (notifications.Addressee)."""

    id: uuid.UUID
    ase_ref: str
    first_name: str
    language: str
    preferred_channel: Channel
    phone: str | None
    phone_unreachable_at: datetime | None
    email: str | None
    email_unreachable_at: datetime | None
    outreach_email_opted_out_at: datetime | None
    detailed_messages: bool


def _addressee(row: Sequence[Any]) -> Addressee:
    return Addressee(*row[: len(_YOUTH_COLUMNS)])


@dataclass(frozen=True, slots=True)
class _Planned:
    """A contact decided, to write with its batch: a message, or a task for a person."""

    youth: Addressee
    reason: OutreachReason
    step: int
    period_key: str
    channel: Channel | None
    task: TaskKind | None = None  # instead of a message: the call step, or nothing works
    detail: TaskDetail | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)  # the attempt's, once written
    about: Any = None  # what the message says besides (a paper's kind and date: papers.py)


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
    # Messages decided in this cycle: the frequency cap of the rest of the pass (the
    # database holds the cap of earlier cycles, and of this one's batches once written).
    capped: set[uuid.UUID] = field(default_factory=set)
    pending: list[_Planned] = field(default_factory=list)
    batches: int = 0  # written so far

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


def _recently_contacted(
    youth_id: Any, now: datetime, policy: OutreachPolicy
) -> ColumnElement[bool]:
    """The frequency cap: a message (not a call task) within the last N days, or a person
    of the team who reached the youth in that time (automation yields to people)."""
    since = now - timedelta(days=policy.frequency_cap_days)
    return or_(
        exists().where(
            OutreachAttempt.youth_id == youth_id,
            OutreachAttempt.channel.is_not(None),
            OutreachAttempt.reason.not_in(CAP_EXEMPT),
            OutreachAttempt.attempted_at > since,
        ),
        tasks.last_staff_contact_clause(youth_id, since),
    )


@dataclass(frozen=True, slots=True)
class InactivityDue:
    """A quiet youth and the step due for them: four values, not the youth's columns (at
    100,000 youths the selection returns 85,000 of these; their addressees are read a
    batch at a time, `addressees`)."""

    youth_id: uuid.UUID
    quiet_days: int
    step: int
    period_key: str


def addressees(session: Session, youth_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Addressee]:
    """What a contact needs of each of these youths, in one statement (Core rows: the ORM's
    loading machinery cost more than the query)."""
    rows = session.connection().execute(select(*_YOUTH_COLUMNS).where(Youth.id.in_(youth_ids)))
    return {row[0]: _addressee(row) for row in rows}


def inactivity_candidates(
    session: Session, now: datetime, policy: OutreachPolicy
) -> list[InactivityDue]:
    """The quiet youths with a step due and not made yet, in one query whatever their
    number: the day count, the step and the period are computed in SQL (SMS, then email,
    then a call, every `repeat_every_days` again), the contacts made are left out, and so
    are the youths within the frequency cap unless the step is the call."""
    reference = _reference_instant()
    quiet_days = whole_days(literal(now, UTCDateTime()), reference)
    elapsed = quiet_days - policy.inactivity_days
    period = elapsed // policy.repeat_every_days
    offset = elapsed % policy.repeat_every_days
    step = case(
        (offset >= policy.call_task_day - policy.sms_step_day, STEP_CALL),
        (offset >= policy.email_step_day - policy.sms_step_day, STEP_EMAIL),
        else_=STEP_SMS,
    )
    quiet = (
        select(
            Youth.id,
            quiet_days.label("quiet_days"),
            step.label("step"),
            (paris_date(reference) + ":" + cast(period, String)).label("period_key"),
        )
        .where(
            reference <= now - timedelta(days=policy.inactivity_days),
            *_eligible(now, policy),
        )
        .subquery()
    )
    made = exists().where(
        OutreachAttempt.youth_id == quiet.c.id,
        OutreachAttempt.reason == OutreachReason.INACTIVITY,
        OutreachAttempt.step == quiet.c.step,
        OutreachAttempt.period_key == quiet.c.period_key,
    )
    rows = session.connection().execute(
        select(quiet)
        .where(
            ~made,
            or_(quiet.c.step == STEP_CALL, ~_recently_contacted(quiet.c.id, now, policy)),
        )
        .order_by(quiet.c.id)
    )
    # Each row becomes its light object as it is read: never a list of 85,000 rows beside
    # the list of what they became.
    return [InactivityDue(row[0], int(row[1]), int(row[2]), str(row[3])) for row in rows]


def _decide(cycle: _Cycle, planned: _Planned) -> None:
    """Listed at once in a dry run; written with its batch in a real one."""
    if planned.channel is not None:
        cycle.capped.add(planned.youth.id)
    if cycle.dry_run:
        cycle.report.add(planned)
        return
    cycle.pending.append(planned)
    if len(cycle.pending) >= BATCH_SIZE:
        _write_pending(cycle)


def _as_contact(planned: _Planned) -> Contact:
    return Contact(
        planned.youth.id,
        planned.youth.ase_ref,
        planned.reason,
        planned.step,
        planned.channel,
        planned.period_key,
    )


def _write_pending(cycle: _Cycle) -> None:
    """One batch, one transaction: the attempts claimed (a key taken by another scheduler
    is left out, with its message or task), the messages rendered and queued, the tasks
    opened, then commit."""
    batch, cycle.pending = cycle.pending, []
    if not batch:
        return
    session, now = cycle.session, cycle.now
    attempts = OutreachAttempt.metadata.tables[OutreachAttempt.__tablename__]
    # Core rows of the table, not ORM entities (the ORM's bulk path split a batch into ~150
    # statements); on PostgreSQL one unnest() statement per batch, parsed once.
    claimed = set(
        insert_many_ignoring_conflicts(
            session,
            attempts,
            [
                {
                    "id": planned.id,
                    "youth_id": planned.youth.id,
                    "reason": planned.reason,
                    "step": planned.step,
                    "period_key": planned.period_key,
                    "channel": planned.channel,
                    "attempted_at": now,
                }
                for planned in batch
            ],
            "id",
        )
    )
    batch = [planned for planned in batch if planned.id in claimed]
    for planned in batch:
        cycle.report.add(planned)
    sends = [planned for planned in batch if planned.channel is not None]
    queued = notifications.notify_many(
        session,
        [(planned.youth, _notice(cycle, planned)) for planned in sends],
        now=now,
        quiet=cycle.quiet,
    )
    # The call task that may follow shows what became of each message of the period.
    links = [
        {"attempt_id": planned.id, "message_id": message_id}
        for planned, message_id in zip(sends, queued, strict=True)
        if message_id is not None
    ]
    if links:
        session.execute(
            update(attempts)
            .where(attempts.c.id == bindparam("attempt_id"))
            .values(outbox_message_id=bindparam("message_id")),
            links,
        )
    tasks.open_tasks(
        session,
        [
            tasks.Opening(
                youth_id=planned.youth.id,
                kind=planned.task,
                key=f"outreach:{planned.id}",
                outreach_attempt_id=planned.id,
                detail=planned.detail,
            )
            for planned in batch
            if planned.task is not None
        ],
        now=now,
        base_url=cycle.base_url,
    )
    session.commit()
    cycle.batches += 1
    if cycle.batches in _ANALYSE_AFTER_BATCHES:
        _refresh_statistics(session)


# PostgreSQL plans each statement from statistics taken before the cycle: a first cycle
# fills the tables it reads from empty, and plans made for an empty table (a scan of all of
# it for each youth) grow with the square of the youths. Fresh statistics after the 1st,
# 4th, 16th and 64th batch keep them in step (autovacuum would come minutes later).
_ANALYSE_AFTER_BATCHES = frozenset({1, 4, 16, 64})
_FILLED_BY_A_CYCLE = ("outreach_attempt", "outbox_message", "outbox_status_event", "staff_task")


def _refresh_statistics(session: Session) -> None:
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(text(f"ANALYZE {', '.join(_FILLED_BY_A_CYCLE)}"))
    session.commit()


def _notice(cycle: _Cycle, planned: _Planned) -> notifications.Notice:
    if planned.reason is OutreachReason.PAPER_EXPIRY:
        from paris_avenir.outreach import papers

        return papers.notice(planned, base_url=cycle.base_url)
    link = None
    if planned.reason is OutreachReason.CHECK_IN:
        link = checkin.link(planned.id, secret_key=cycle.secret_key, base_url=cycle.base_url)
    return notices.for_attempt(planned.youth, planned, base_url=cycle.base_url, link=link)


@contextmanager
def _reading(cycle: _Cycle) -> Iterator[None]:
    """A selection of a real cycle reads in a transaction of its own, before its batches:
    on SQLite a deferred one, which takes no write lock (sign-ins go on while it runs)."""
    if not cycle.dry_run:
        _write_pending(cycle)
        cycle.session.commit()
        cycle.session.connection(execution_options={"sqlite_deferred": True})
    yield
    if not cycle.dry_run:
        cycle.session.commit()


def _unreachable_detail(reason: OutreachReason) -> TaskDetail:
    return {"about": labels.nothing_works(reason)}


def run_inactivity(cycle: _Cycle) -> None:
    with _reading(cycle):
        due = inactivity_candidates(cycle.session, cycle.now, cycle.policy)
    for start in range(0, len(due), BATCH_SIZE):
        chunk = due[start : start + BATCH_SIZE]
        with _reading(cycle):
            youths = addressees(cycle.session, [candidate.youth_id for candidate in chunk])
        for candidate in chunk:
            youth = youths.get(candidate.youth_id)
            if youth is not None:  # else deleted since the selection
                _decide_inactivity(cycle, youth, candidate)


def _decide_inactivity(cycle: _Cycle, youth: Addressee, candidate: InactivityDue) -> None:
    step = candidate.step
    if step == STEP_CALL:
        channel = None
        task: TaskKind | None = TaskKind.PHONE_YOUTH
        detail: TaskDetail | None = {
            "period": candidate.period_key,
            "quiet_days": candidate.quiet_days,
        }
    else:
        channel = notifications.reachable_channel(
            youth, Channel.SMS if step == STEP_SMS else Channel.EMAIL
        )
        task = TaskKind.UNREACHABLE if channel is None else None
        detail = _unreachable_detail(OutreachReason.INACTIVITY) if channel is None else None
    _decide(
        cycle,
        _Planned(
            youth, OutreachReason.INACTIVITY, step, candidate.period_key, channel, task, detail
        ),
    )


def run_check_ins(cycle: _Cycle) -> None:
    """Every N days, a "Comment ça va ?" with one-tap answers, to youths who are not quiet
    (quiet youths are in the inactivity steps already). A person of the team who reached
    the youth in that time counts as the check-in."""
    now, policy = cycle.now, cycle.policy
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
    with _reading(cycle):
        rows = (
            cycle.session.connection()
            .execute(
                select(
                    *_YOUTH_COLUMNS,
                    (whole_days(literal(now, UTCDateTime()), anchor) // policy.check_in_every_days),
                )
                .where(
                    anchor <= now - every,
                    reference > now - timedelta(days=policy.inactivity_days),
                    or_(latest.is_(None), latest <= now - every),
                    ~tasks.last_staff_contact_clause(Youth.id, now - every),
                    ~_recently_contacted(Youth.id, now, policy),
                    *_eligible(now, policy),
                )
                .order_by(Youth.id)
            )
            .all()
        )
    for row in rows:
        youth = _addressee(row)
        if youth.id in cycle.capped:
            continue
        channel = notifications.reachable_channel(youth)
        if channel is None:
            continue
        _decide(cycle, _Planned(youth, OutreachReason.CHECK_IN, 1, str(row[-1]), channel))


@contextmanager
def _exclusive(session: Session) -> Iterator[bool]:
    """One cycle at a time on PostgreSQL: a session-level advisory lock, on a connection of
    its own, held across the cycle's transactions (a crash closes it and frees the lock)."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        yield True  # SQLite: one writer at a time anyway
        return
    with bind.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        key = {"key": ADVISORY_LOCK_KEY}
        held = bool(connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), key))
        try:
            yield held
        finally:
            if held:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)


def run_cycle(
    session: Session,
    *,
    base_url: str,
    secret_key: str,
    now: datetime | None = None,
    dry_run: bool = False,
) -> CycleReport:
    """One pass of the watch. A real pass commits its batches as it goes (the caller
    commits whatever it adds after); a dry run writes nothing and the caller rolls back."""
    from paris_avenir.outreach import papers

    now = now or utcnow()
    report = CycleReport()
    with _exclusive(session) as held:
        if not held:
            report.skipped_locked = True
            return report
        if dry_run and not session.in_transaction():
            # Reads only: on SQLite, no write lock held while it runs.
            session.connection(execution_options={"sqlite_deferred": True})
        policy = load_policy(session)
        cycle = _Cycle(session, now, policy, base_url, secret_key, dry_run, report)
        run_inactivity(cycle)
        # The specific reasons first; the generic "Comment ça va ?" yields to them (frequency
        # cap).
        run_triggers(cycle)
        run_check_ins(cycle)
        papers.run_reminders(cycle)  # last: excepted from the frequency cap
        _write_pending(cycle)
        run_hand_overs(cycle)
        run_escalations(cycle)
        if not dry_run:
            session.commit()
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
) -> list[tuple[Addressee, OutreachReason, str]]:
    """(youth, reason, period) for every trigger due now, youths within the frequency cap
    left out: one query per trigger."""
    from paris_avenir.aid_requests.models import AidCode, AidRequest, AidRequestEvent, RequestStatus
    from paris_avenir.appointments.models import Appointment, AppointmentKind, AppointmentStatus

    eligible = [*_eligible(now, policy), ~_recently_contacted(Youth.id, now, policy)]
    newer = aliased(AidRequest)
    due: list[tuple[Addressee, OutreachReason, str]] = []
    waited = (
        select(AidRequestEvent.aid_request_id, func.max(AidRequestEvent.occurred_at).label("since"))
        .where(AidRequestEvent.to_status == RequestStatus.MISSING_DOCUMENTS)
        .group_by(AidRequestEvent.aid_request_id)
        .subquery()
    )
    for row in (
        session.connection()
        .execute(
            select(*_YOUTH_COLUMNS, AidRequest.id)
            .join(AidRequest, AidRequest.youth_id == Youth.id)
            .join(waited, waited.c.aid_request_id == AidRequest.id)
            .where(
                AidRequest.status == RequestStatus.MISSING_DOCUMENTS,
                waited.c.since <= now - timedelta(days=policy.documents_awaited_days),
                *eligible,
            )
        )
        .all()
    ):
        due.append((_addressee(row), OutreachReason.DOCUMENTS_AWAITED, str(row[-1])))
    for row in (
        session.connection()
        .execute(
            select(*_YOUTH_COLUMNS, Appointment.id)
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
        )
        .all()
    ):
        due.append((_addressee(row), OutreachReason.MISSED_APPOINTMENT, str(row[-1])))
    for age, notice, reason in (
        (21, policy.birthday_21_notice_days, OutreachReason.BIRTHDAY_21),
        (25, policy.birthday_25_notice_days, OutreachReason.BIRTHDAY_25),
    ):
        for row in (
            session.connection()
            .execute(
                select(*_YOUTH_COLUMNS, Youth.birth_date).where(
                    _turning(age, notice, now), *eligible
                )
            )
            .all()
        ):
            due.append((_addressee(row), reason, str(row.birth_date.year + age)))
    for row in (
        session.connection()
        .execute(
            select(*_YOUTH_COLUMNS, AidRequest.id)
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
        )
        .all()
    ):
        due.append((_addressee(row), OutreachReason.ALLOCATION_RENEWAL, str(row[-1])))
    return due


def _trigger_contacts_made(
    session: Session, candidates: list[tuple[Addressee, OutreachReason, str]]
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
    with _reading(cycle):
        candidates = _trigger_candidates(cycle.session, cycle.now, cycle.policy)
        done = _trigger_contacts_made(cycle.session, candidates)
    for youth, reason, period_key in candidates:
        if (youth.id, reason, period_key) in done or youth.id in cycle.capped:
            continue
        channel = notifications.reachable_channel(youth)
        unreachable = channel is None
        _decide(
            cycle,
            _Planned(
                youth,
                reason,
                1,
                period_key,
                channel,
                TaskKind.UNREACHABLE if unreachable else None,
                _unreachable_detail(reason) if unreachable else None,
            ),
        )


# --- Hand-over to a person ------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    """A hand-over the cycle may open: the task's kind, key and facts."""

    youth_id: uuid.UUID
    youth_ref: str
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
    for youth_id, youth_ref, request in session.execute(
        select(Youth.id, Youth.ase_ref, AidRequest)
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
                youth_id,
                youth_ref,
                TaskKind.REQUEST_WAITING,
                f"request-waiting:{request.id}",
                detail,
                aid_request_id=request.id,
            )
        )
    # The interview due 6 months after leaving care, not booked 14 days before.
    latest_exit = add_months(today + INTERVIEW_TASK_NOTICE, -FOLLOW_UP_INTERVIEW_AFTER_EXIT)
    earliest_exit = add_months(today, -FOLLOW_UP_INTERVIEW_AFTER_EXIT) - timedelta(days=60)
    for youth_id, youth_ref, exit_date in session.execute(
        select(Youth.id, Youth.ase_ref, Youth.ase_exit_date).where(
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
    ).all():
        assert exit_date is not None
        due_on = add_months(exit_date, FOLLOW_UP_INTERVIEW_AFTER_EXIT)
        found.append(
            _Candidate(
                youth_id,
                youth_ref,
                TaskKind.FOLLOW_UP_INTERVIEW,
                f"follow-up-interview:{youth_id}:{exit_date.isoformat()}",
                {"due_on": due_on.isoformat()},
                _paris_noon(max(due_on, today + timedelta(days=2))),
            )
        )
    for age, notice, kind in (
        (21, policy.birthday_21_notice_days, TaskKind.BIRTHDAY_21),
        (25, policy.birthday_25_notice_days, TaskKind.BIRTHDAY_25),
    ):
        for youth_id, youth_ref, birth_date in session.execute(
            select(Youth.id, Youth.ase_ref, Youth.birth_date).where(
                _turning(age, notice, now), Youth.deletion_requested_at.is_(None)
            )
        ).all():
            day = birthday(birth_date, age)
            found.append(
                _Candidate(
                    youth_id,
                    youth_ref,
                    kind,
                    f"birthday-{age}:{youth_id}:{day.year}",
                    {"birthday": day.isoformat()},
                    _paris_noon(max(day - timedelta(days=30), today + timedelta(days=2))),
                )
            )
    # A month before a paper expires, or the allocation's renewal is due.
    from paris_avenir.outreach import papers

    found.extend(papers.hand_overs(session, now, alive))
    return found


def _paris_noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=PARIS)


def run_hand_overs(cycle: _Cycle) -> None:
    from paris_avenir.outreach import papers

    session = cycle.session
    if not cycle.dry_run and papers.close_replaced(session, now=cycle.now):
        session.commit()
    with _reading(cycle):
        candidates = _hand_over_candidates(session, cycle.now, cycle.policy)
        existing: set[str] = set()
        for start in range(0, len(candidates), BATCH_SIZE):
            keys = [candidate.key for candidate in candidates[start : start + BATCH_SIZE]]
            existing |= set(session.scalars(select(StaffTask.key).where(StaffTask.key.in_(keys))))
    planned: list[tuple[_Candidate, HandOver]] = []
    for candidate in candidates:
        if candidate.key in existing:
            continue
        existing.add(candidate.key)
        hand_over = HandOver(candidate.youth_id, candidate.youth_ref, candidate.kind, candidate.key)
        if cycle.dry_run:
            cycle.report.tasks.append(hand_over)
        else:
            planned.append((candidate, hand_over))
    for start in range(0, len(planned), BATCH_SIZE):
        batch = planned[start : start + BATCH_SIZE]
        opened = tasks.open_tasks(
            session,
            [
                tasks.Opening(
                    youth_id=candidate.youth_id,
                    kind=candidate.kind,
                    key=candidate.key,
                    due_at=candidate.due_at,
                    aid_request_id=candidate.aid_request_id,
                    detail=candidate.detail,
                )
                for candidate, _hand_over in batch
            ],
            now=cycle.now,
            base_url=cycle.base_url,
        )
        cycle.report.tasks.extend(hand_over for _c, hand_over in batch if hand_over.key in opened)
        session.commit()


def run_escalations(cycle: _Cycle) -> None:
    """Tasks open past their due date by the policy's delay move to the supervisor."""
    planned = tasks.plan_escalations(cycle.session, cycle.now, cycle.policy.task_escalation_days)
    if cycle.dry_run:
        cycle.report.escalations.extend(planned)
        return
    for escalation in planned:
        if tasks.escalate(cycle.session, escalation, now=cycle.now, base_url=cycle.base_url):
            cycle.report.escalations.append(escalation)
