"""The non-recours watch: who is contacted, why, when and how (PRODUCT.md).

Selection is set-based: SQL returns only the youths something is due for (quiet long enough,
not opted out, not paused, under 25, no deletion asked), so the cycle never loops over every
youth in Python. A unique key (youth, reason, step, period) makes every contact happen once,
even when a job is retried or two schedulers run; on PostgreSQL a cycle also holds an
advisory lock.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Exists, exists, func, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from paris_avenir.db import utcnow
from paris_avenir.kit.dates import add_months
from paris_avenir.messaging import notifications, sms_texts
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.outreach import checkin
from paris_avenir.outreach.models import (
    OutreachAttempt,
    OutreachReason,
    OutreachResponse,
    StaffTask,
    StaffTaskKind,
)
from paris_avenir.outreach.policy import OutreachPolicy
from paris_avenir.outreach.policy import load as load_policy
from paris_avenir.staff.service import current_referent_id
from paris_avenir.web import i18n
from paris_avenir.youths.models import Channel, Youth

PARIS = ZoneInfo("Europe/Paris")
ADVISORY_LOCK_KEY = 7_414_2026  # any constant shared by every scheduler of this database
STEP_SMS, STEP_EMAIL, STEP_CALL = 1, 2, 3


@dataclass(frozen=True)
class Contact:
    """One decision of the cycle: what is (or, in a dry run, would be) done for a youth."""

    youth_id: uuid.UUID
    youth_name: str
    reason: OutreachReason
    step: int
    channel: Channel | None  # None: a task for the référent
    period_key: str


@dataclass
class CycleReport:
    contacts: list[Contact] = field(default_factory=list)
    skipped_locked: bool = False


def _reference_instant() -> ColumnElement[datetime]:
    """When the youth was last active: meaningful activity, else activation, else creation."""
    return func.coalesce(Youth.last_activity_at, Youth.activated_at, Youth.created_at)


def _eligible(now: datetime, policy: OutreachPolicy) -> list[ColumnElement[bool]]:
    today = now.astimezone(PARIS).date()
    return [
        Youth.outreach_opted_out_at.is_(None),
        or_(Youth.outreach_paused_until.is_(None), Youth.outreach_paused_until <= now),
        Youth.deletion_requested_at.is_(None),
        Youth.birth_date > add_months(today, -12 * 25),  # stop at 25
    ]


def _recently_contacted(now: datetime, policy: OutreachPolicy) -> Exists:
    """The frequency cap: a message (not a call task) within the last N days."""
    return exists().where(
        OutreachAttempt.youth_id == Youth.id,
        OutreachAttempt.channel.is_not(None),
        OutreachAttempt.attempted_at > now - timedelta(days=policy.frequency_cap_days),
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


def _message_texts(
    youth: Youth, reason: OutreachReason, base_url: str, link: str | None
) -> tuple[str, str, str]:
    space = f"{base_url.rstrip('/')}/mon-espace"
    with i18n.using_locale(youth.language):
        if reason is OutreachReason.CHECK_IN:
            sms = i18n.gettext(sms_texts.CHECK_IN, link=link)
            subject = i18n.gettext("Comment ça va ?")
            text = i18n.gettext(
                "Bonjour %(name)s,\n\nComment ça va ? Répondez en un clic, sans mot de "
                "passe : %(link)s",
                name=youth.first_name,
                link=link,
            )
        else:
            sms = i18n.gettext(sms_texts.INACTIVITY, link=space)
            subject = i18n.gettext("Paris avenir : on pense à vous")
            text = i18n.gettext(
                "Bonjour %(name)s,\n\nCela fait longtemps que nous n’avons pas eu de "
                "nouvelles. Votre référent peut vous aider : logement, argent, papiers, "
                "santé.\n\nVotre espace : %(link)s",
                name=youth.first_name,
                link=space,
            )
    return sms, subject, text


def _send(
    session: Session,
    youth: Youth,
    attempt: OutreachAttempt,
    *,
    base_url: str,
    now: datetime,
    link: str | None = None,
) -> OutboxMessage | None:
    sms, subject, text = _message_texts(youth, attempt.reason, base_url, link)
    key = f"outreach:{attempt.id}"
    return notifications.notify(
        session,
        youth,
        template=f"outreach_{attempt.reason.value}",
        key=key,
        sms_text=sms,
        email_subject=subject,
        email_text=text,
        now=now,
        channel=attempt.channel,
    )


def _task(
    session: Session,
    youth: Youth,
    kind: StaffTaskKind,
    attempt: OutreachAttempt | None,
    now: datetime,
) -> None:
    session.add(
        StaffTask(
            youth_id=youth.id,
            assignee_id=current_referent_id(session, youth.id),
            kind=kind,
            outreach_attempt_id=attempt.id if attempt else None,
            due_at=now + timedelta(days=2),
        )
    )


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


def run_inactivity(
    session: Session,
    now: datetime,
    policy: OutreachPolicy,
    *,
    base_url: str,
    dry_run: bool,
    report: CycleReport,
) -> None:
    capped = set(session.scalars(select(Youth.id).where(_recently_contacted(now, policy))))
    done = _inactivity_contacts_made(session, now, policy)
    for youth in inactivity_candidates(session, now, policy):
        reference = youth.last_activity_at or youth.activated_at or youth.created_at
        due = _step_due((now - reference).days, policy)
        if due is None:
            continue
        cycle, step = due
        period_key = f"{reference.astimezone(PARIS).date().isoformat()}:{cycle}"
        if (youth.id, step, period_key) in done:
            continue  # the usual case: known in one query, not by a failing insert per youth
        if step == STEP_CALL:
            channel = None
        else:
            if youth.id in capped:
                continue
            channel = notifications.reachable_channel(
                youth, Channel.SMS if step == STEP_SMS else Channel.EMAIL
            )
        contact = Contact(
            youth.id, youth.display_name, OutreachReason.INACTIVITY, step, channel, period_key
        )
        if dry_run:
            report.contacts.append(contact)
            continue
        attempt = _claim(session, youth, OutreachReason.INACTIVITY, step, period_key, channel, now)
        if attempt is None:
            continue
        report.contacts.append(contact)
        if step == STEP_CALL:
            _task(session, youth, StaffTaskKind.PHONE_YOUTH, attempt, now)
        elif channel is None:
            _task(session, youth, StaffTaskKind.UNREACHABLE, attempt, now)
        else:
            _send(session, youth, attempt, base_url=base_url, now=now)
            capped.add(youth.id)


def run_check_ins(
    session: Session,
    now: datetime,
    policy: OutreachPolicy,
    *,
    base_url: str,
    secret_key: str,
    dry_run: bool,
    report: CycleReport,
) -> None:
    """Every N days, a "Comment ça va ?" with one-tap answers, to youths who are not quiet
    (quiet youths are in the inactivity steps already)."""
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
            ~_recently_contacted(now, policy),
            *_eligible(now, policy),
        )
        .order_by(Youth.id)
    ).all()
    for youth in youths:
        started = youth.activated_at or youth.created_at
        period_key = str((now - started).days // policy.check_in_every_days)
        channel = notifications.reachable_channel(youth)
        if channel is None:
            continue
        contact = Contact(
            youth.id, youth.display_name, OutreachReason.CHECK_IN, 1, channel, period_key
        )
        if dry_run:
            report.contacts.append(contact)
            continue
        attempt = _claim(session, youth, OutreachReason.CHECK_IN, 1, period_key, channel, now)
        if attempt is None:
            continue
        report.contacts.append(contact)
        link = checkin.link(attempt.id, secret_key=secret_key, base_url=base_url)
        _send(session, youth, attempt, base_url=base_url, now=now, link=link)


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
    run_inactivity(session, now, policy, base_url=base_url, dry_run=dry_run, report=report)
    # The specific reasons first; the generic "Comment ça va ?" yields to them (frequency cap).
    run_triggers(session, now, policy, base_url=base_url, dry_run=dry_run, report=report)
    run_check_ins(
        session,
        now,
        policy,
        base_url=base_url,
        secret_key=secret_key,
        dry_run=dry_run,
        report=report,
    )
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


# --- The other triggers -------------------------------------------------------------------

TRIGGER_TEXTS: dict[OutreachReason, tuple[str, str]] = {
    OutreachReason.DOCUMENTS_AWAITED: (
        sms_texts.DOCUMENTS_AWAITED,
        i18n.N_("Il manque un document pour votre demande"),
    ),
    OutreachReason.MISSED_APPOINTMENT: (
        sms_texts.MISSED_APPOINTMENT,
        i18n.N_("Votre rendez-vous manqué"),
    ),
    OutreachReason.BIRTHDAY_21: (sms_texts.BIRTHDAY_21, i18n.N_("Bientôt 21 ans : ce qui change")),
    OutreachReason.BIRTHDAY_25: (
        sms_texts.BIRTHDAY_25,
        i18n.N_("Bientôt 25 ans : préparons la suite"),
    ),
    OutreachReason.ALLOCATION_RENEWAL: (
        sms_texts.ALLOCATION_RENEWAL,
        i18n.N_("Renouvelez votre allocation"),
    ),
}
TRIGGER_PATHS = {
    OutreachReason.DOCUMENTS_AWAITED: "/mon-espace/demandes",
    OutreachReason.MISSED_APPOINTMENT: "/mon-espace/rendez-vous",
    OutreachReason.BIRTHDAY_21: "/mon-espace/droits",
    OutreachReason.BIRTHDAY_25: "/mon-espace/messages",
    OutreachReason.ALLOCATION_RENEWAL: "/mon-espace/droits/allocation",
}


def _trigger_candidates(
    session: Session, now: datetime, policy: OutreachPolicy
) -> list[tuple[Youth, OutreachReason, str]]:
    """(youth, reason, period) for every trigger due now: one query per trigger."""
    from paris_avenir.aid_requests.models import AidCode, AidRequest, AidRequestEvent, RequestStatus
    from paris_avenir.appointments.models import Appointment, AppointmentStatus

    today = now.astimezone(PARIS).date()
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
            *eligible,
        )
    ).all():
        due.append((youth, OutreachReason.MISSED_APPOINTMENT, str(appointment_id)))
    for age, notice, reason in (
        (21, policy.birthday_21_notice_days, OutreachReason.BIRTHDAY_21),
        (25, policy.birthday_25_notice_days, OutreachReason.BIRTHDAY_25),
    ):
        born_after = add_months(today, -12 * age)  # turns `age` after today…
        born_before = add_months(today + timedelta(days=notice), -12 * age)  # …within the notice
        for youth in session.scalars(
            select(Youth).where(
                Youth.birth_date > born_after, Youth.birth_date <= born_before, *eligible
            )
        ):
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


def run_triggers(
    session: Session,
    now: datetime,
    policy: OutreachPolicy,
    *,
    base_url: str,
    dry_run: bool,
    report: CycleReport,
) -> None:
    capped = set(session.scalars(select(Youth.id).where(_recently_contacted(now, policy))))
    for youth, reason, period_key in _trigger_candidates(session, now, policy):
        if youth.id in capped:
            continue
        channel = notifications.reachable_channel(youth)
        contact = Contact(youth.id, youth.display_name, reason, 1, channel, period_key)
        if dry_run:
            report.contacts.append(contact)
            continue
        attempt = _claim(session, youth, reason, 1, period_key, channel, now)
        if attempt is None:
            continue
        report.contacts.append(contact)
        if channel is None:
            _task(session, youth, StaffTaskKind.UNREACHABLE, attempt, now)
            continue
        sms_text, subject = TRIGGER_TEXTS[reason]
        link = f"{base_url.rstrip('/')}{TRIGGER_PATHS[reason]}"
        with i18n.using_locale(youth.language):
            sms = i18n.gettext(sms_text, link=link)
            email_subject = i18n.gettext(subject)
        notifications.notify(
            session,
            youth,
            template=f"outreach_{reason.value}",
            key=f"outreach:{attempt.id}",
            sms_text=sms,
            email_subject=email_subject,
            email_text=sms,
            now=now,
            channel=channel,
        )
        capped.add(youth.id)
