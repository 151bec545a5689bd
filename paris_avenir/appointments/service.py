"""Booking, moving and cancelling appointments, and their reminders.

Never double-booked: a partial unique index (staff, start) on live appointments decides
between two youths who press "Confirmer" at the same moment; the loser gets a clear message
and the next free slots. Reminders go 48 h and 2 h before through the outbox, never after the
start; one that would fall in quiet hours is sent earlier, not skipped.

Nobody hoards the slots: a youth holds at most a few upcoming appointments of each kind (an
admin setting of the policy: 1 with the référent, 2 with a psychologist, 2 at the counter).
Their bookings are decided one at a time — the youth's row is locked before counting — so
40 requests at once from one youth still give exactly that many.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from paris_avenir.appointments import answer_links, ics, notices
from paris_avenir.appointments.models import (
    FOLLOW_UP_INTERVIEW_AFTER_EXIT,
    Appointment,
    AppointmentKind,
    AppointmentStatus,
    WeeklyAvailability,
)
from paris_avenir.appointments.notices import format_when as format_when  # pages, tests
from paris_avenir.appointments.policy import AppointmentPolicy
from paris_avenir.appointments.policy import load as load_policy
from paris_avenir.appointments.slots import MINIMUM_NOTICE, Slot, free_slots
from paris_avenir.db import utcnow
from paris_avenir.kit import quiet_hours
from paris_avenir.kit.dates import paris_day
from paris_avenir.kit.errors import DomainError
from paris_avenir.messaging import notifications, outbox
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.messaging.notifications import Attachment
from paris_avenir.staff import tasks
from paris_avenir.staff.assignments import current_referent_id
from paris_avenir.staff.models import StaffRole, StaffUser, TaskKind
from paris_avenir.web import i18n
from paris_avenir.youths.activity import Activity, record_activity
from paris_avenir.youths.models import Youth

KIND_LABELS = {
    AppointmentKind.REFERENT: i18n.N_("Rendez-vous avec votre référent"),
    AppointmentKind.PSYCHOLOGIST: i18n.N_("Rendez-vous avec un psychologue"),
    AppointmentKind.COUNTER: i18n.N_("Rendez-vous au guichet (aide pour vos papiers)"),
    AppointmentKind.FOLLOW_UP_INTERVIEW: i18n.N_("Entretien des 6 mois avec votre référent"),
}


def cancel_cutoff(policy: AppointmentPolicy) -> timedelta:
    """How long before its start a youth may still cancel online (an admin setting)."""
    return timedelta(hours=policy.cancel_cutoff_hours)


def move_cutoff(policy: AppointmentPolicy) -> timedelta:
    return timedelta(hours=policy.move_cutoff_hours)


def booking_notice(policy: AppointmentPolicy) -> timedelta:
    """How far ahead the first slot offered starts: never less than the time the youth
    needs to still move AND cancel it online under the current policy.

    We chose never to offer a slot that would trap the youth, rather than a warning before
    confirming: a warning on some slots only (those inside the 24 h) is one more rule to
    read on a small screen, in a second language, and it is easily missed (testers booked
    at 08:10 for 11:30, then were told "appelez votre référent"). With this rule one short
    sentence holds for every slot shown ("vous pourrez le déplacer en ligne jusqu’à 24 h
    avant, l’annuler jusqu’à 4 h avant"), whoever booked it. What it costs — no slot in
    the next day with the default policy — is small next to 4 weeks of slots, and a youth
    who needs to be seen sooner writes to their référent (the empty page says so)."""
    return max(MINIMUM_NOTICE, move_cutoff(policy), cancel_cutoff(policy))


def hours_text(hours: int) -> str:
    """ "24 heures", "1 heure": a cut-off of the policy in words."""
    return i18n.ngettext("%(num)d heure", "%(num)d heures", hours)


def change_rules(policy: AppointmentPolicy) -> str:
    """What the youth may still do online once booked, from the policy's current values."""
    if policy.move_cutoff_hours == policy.cancel_cutoff_hours:
        return i18n.gettext(
            "Vous pourrez déplacer ou annuler ce rendez-vous en ligne jusqu’à %(hours)s avant.",
            hours=hours_text(policy.move_cutoff_hours),
        )
    return i18n.gettext(
        "Vous pourrez déplacer ce rendez-vous en ligne jusqu’à %(move)s avant, "
        "et l’annuler jusqu’à %(cancel)s avant.",
        move=hours_text(policy.move_cutoff_hours),
        cancel=hours_text(policy.cancel_cutoff_hours),
    )


def move_deadline(policy: AppointmentPolicy, appointment: Appointment) -> datetime:
    """The last moment the youth may move it online."""
    return appointment.starts_at - move_cutoff(policy)


def cancel_deadline(policy: AppointmentPolicy, appointment: Appointment) -> datetime:
    return appointment.starts_at - cancel_cutoff(policy)


# The youth's picker: 4 weeks ahead, in pages of 14 whole days ("plus tard").
PAGE_DAYS = 14
PAGES = 2


@dataclass(frozen=True)
class SlotPage:
    number: int  # 0 for the first 14 days
    first_day: date
    last_day: date
    slots: list[Slot]

    @property
    def has_later(self) -> bool:
        return self.number + 1 < PAGES

    @property
    def has_earlier(self) -> bool:
        return self.number > 0


class AppointmentError(DomainError):
    """The message is for the youth."""


class SlotTaken(AppointmentError):
    """The slot is gone; `alternatives` are the next free ones."""

    def __init__(self, message: str, alternatives: list[Slot]) -> None:
        super().__init__(message)
        self.alternatives = alternatives


class BookingLimitReached(AppointmentError):
    """The youth already holds as many upcoming appointments of this kind as the policy
    allows; `existing` are those appointments, soonest first."""

    def __init__(self, message: str, existing: list[Appointment]) -> None:
        super().__init__(message)
        self.existing = existing


def open_bookings_limit(policy: AppointmentPolicy, kind: AppointmentKind) -> int:
    """How many upcoming appointments of this kind a youth may hold at once."""
    return {
        AppointmentKind.REFERENT: policy.open_referent_bookings,
        AppointmentKind.PSYCHOLOGIST: policy.open_psychologist_bookings,
        AppointmentKind.COUNTER: policy.open_counter_bookings,
        AppointmentKind.FOLLOW_UP_INTERVIEW: 1,  # one interview, by law
    }[kind]


def open_bookings(
    session: Session,
    youth_id: uuid.UUID,
    kind: AppointmentKind,
    *,
    now: datetime,
) -> list[Appointment]:
    """The youth's upcoming, still booked appointments of this kind, soonest first."""
    query = select(Appointment).where(
        Appointment.youth_id == youth_id,
        Appointment.kind == kind,
        Appointment.status == AppointmentStatus.BOOKED,
        Appointment.starts_at > now,
    )
    return list(session.scalars(query.order_by(Appointment.starts_at)))


def limit_reached(
    session: Session,
    youth: Youth,
    kind: AppointmentKind,
    *,
    now: datetime | None = None,
) -> BookingLimitReached | None:
    """The refusal to show if the youth may not book one more of this kind, else None."""
    existing = open_bookings(session, youth.id, kind, now=now or utcnow())
    limit = open_bookings_limit(load_policy(session), kind)
    if len(existing) < limit:
        return None
    message = i18n.ngettext(
        "Vous avez déjà %(num)d rendez-vous de ce type à venir : c’est le maximum. "
        "Pour en prendre un autre, déplacez ou annulez celui-ci.",
        "Vous avez déjà %(num)d rendez-vous de ce type à venir : c’est le maximum. "
        "Pour en prendre un autre, déplacez ou annulez l’un d’eux.",
        len(existing),
    )
    return BookingLimitReached(message, existing)


def _lock_bookings_of(session: Session, youth: Youth) -> None:
    """One youth's bookings are decided one at a time: the count that follows sees every
    booking committed before it (PostgreSQL waits on the youth's row; SQLite has a single
    writer anyway)."""
    session.execute(select(Youth.id).where(Youth.id == youth.id).with_for_update())


def kind_label(kind: AppointmentKind) -> str:
    return i18n.gettext(KIND_LABELS[kind])


def staff_for(session: Session, youth: Youth, kind: AppointmentKind) -> list[uuid.UUID]:
    """Who may receive this youth for this kind of appointment."""
    if kind in {AppointmentKind.REFERENT, AppointmentKind.FOLLOW_UP_INTERVIEW}:
        referent = current_referent_id(session, youth.id)
        return [referent] if referent else []
    role = StaffRole.PSYCHOLOGIST if kind is AppointmentKind.PSYCHOLOGIST else None
    query = (
        select(WeeklyAvailability.staff_id)
        .join(StaffUser, StaffUser.id == WeeklyAvailability.staff_id)
        .where(WeeklyAvailability.kind == kind, StaffUser.is_active.is_(True))
    )
    if role is not None:
        query = query.where(StaffUser.role == role)
    return sorted(set(session.scalars(query)), key=str)


def _free_slots(
    session: Session,
    youth: Youth,
    kind: AppointmentKind,
    *,
    now: datetime,
    first_day: date,
    days: int,
    limit: int | None,
) -> list[Slot]:
    availability_kind = (
        AppointmentKind.REFERENT if kind is AppointmentKind.FOLLOW_UP_INTERVIEW else kind
    )
    return free_slots(
        session,
        staff_ids=staff_for(session, youth, kind),
        kind=availability_kind,
        now=now,
        window=timedelta(days=days),
        limit=limit,
        notice=booking_notice(load_policy(session)),
        first_day=first_day,
    )


def slots_for(
    session: Session,
    youth: Youth,
    kind: AppointmentKind,
    *,
    now: datetime | None = None,
    limit: int | None = 40,
) -> list[Slot]:
    """The free slots this youth may book, over the whole 4 weeks (`limit` first ones)."""
    now = now or utcnow()
    return _free_slots(
        session,
        youth,
        kind,
        now=now,
        first_day=paris_day(now),
        days=PAGE_DAYS * PAGES,
        limit=limit,
    )


def slot_page(
    session: Session,
    youth: Youth,
    kind: AppointmentKind,
    *,
    page: int = 0,
    now: datetime | None = None,
) -> SlotPage:
    """One page of the youth's picker: every free slot of 14 whole days (page 0 from today)."""
    now = now or utcnow()
    page = min(max(page, 0), PAGES - 1)
    first_day = paris_day(now) + timedelta(days=PAGE_DAYS * page)
    slots = _free_slots(
        session, youth, kind, now=now, first_day=first_day, days=PAGE_DAYS, limit=None
    )
    return SlotPage(page, first_day, first_day + timedelta(days=PAGE_DAYS - 1), slots)


# Built once: the youth's dashboard asks on every visit (see auth.sessions).
_NEXT_APPOINTMENT = (
    select(Appointment)
    .where(
        Appointment.youth_id == bindparam("youth_id"),
        Appointment.status == AppointmentStatus.BOOKED,
        Appointment.ends_at > bindparam("now"),
    )
    .order_by(Appointment.starts_at)
    .limit(1)
)


def next_appointment(
    session: Session, youth_id: uuid.UUID, *, now: datetime | None = None
) -> Appointment | None:
    """The youth's next booked appointment, including one going on right now (today's)."""
    return session.scalar(_NEXT_APPOINTMENT, {"youth_id": youth_id, "now": now or utcnow()})


def _find(slots: list[Slot], key: str) -> Slot | None:
    return next((slot for slot in slots if slot.key == key), None)


def book(
    session: Session,
    youth: Youth,
    kind: AppointmentKind,
    slot_key: str,
    *,
    base_url: str,
    shared_with_referent: bool = False,
    booked_by_staff_id: uuid.UUID | None = None,
    replacing: Appointment | None = None,
    now: datetime | None = None,
    secret_key: str | None = None,
) -> Appointment:
    """Books a free slot. Its confirmation and reminders carry the one-tap link, signed
    with `secret_key` (the app's; the deployment's settings when not given). A youth
    booking for themselves may not go past the policy's limit of upcoming appointments of
    this kind (BookingLimitReached). A move (`replacing` the appointment it cancels) adds
    none; staff booking at the counter decide for themselves."""
    now = now or utcnow()
    _lock_bookings_of(session, youth)
    if booked_by_staff_id is None and replacing is None:
        refused = limit_reached(session, youth, kind, now=now)
        if refused is not None:
            raise refused
    slots = slots_for(session, youth, kind, now=now, limit=None)
    slot = _find(slots, slot_key)
    if slot is None:
        raise SlotTaken(
            i18n.gettext("Ce créneau n’est plus libre. Choisissez-en un autre."), slots[:6]
        )
    appointment = Appointment(
        youth_id=youth.id,
        staff_id=slot.staff_id,
        kind=kind,
        place=slot.place,
        address=slot.address,
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        status=AppointmentStatus.BOOKED,
        booked_by_staff_id=booked_by_staff_id,
        shared_with_referent=shared_with_referent if kind is AppointmentKind.PSYCHOLOGIST else True,
    )
    try:
        with session.begin_nested():
            session.add(appointment)
            session.flush()
    except IntegrityError:
        # Someone else took it between our check and our insert: the database decided.
        remaining = [
            other
            for other in slots_for(session, youth, kind, now=now, limit=7)
            if other.key != slot_key
        ]
        raise SlotTaken(
            i18n.gettext("Quelqu’un vient de prendre ce créneau. Choisissez-en un autre."),
            remaining[:6],
        ) from None
    if replacing is not None:
        # A move: the same calendar event (UID), later (SEQUENCE). The old row, cancelled,
        # is one change on (a staff feed it leaves removes it); the new one is one more, so
        # the row that says where the appointment is now always has the highest.
        replacing.calendar_sequence += 1
        appointment.series_id = replacing.series_id or replacing.id
        appointment.calendar_sequence = replacing.calendar_sequence + 1
    if booked_by_staff_id is not None:
        activity = Activity.BOOKED_BY_STAFF
    else:
        activity = Activity.BOOKING if replacing is None else Activity.APPOINTMENT_MOVED
    record_activity(session, youth, activity, now)
    if kind is AppointmentKind.FOLLOW_UP_INTERVIEW:
        # The référent's "fix the 6-month interview" task is done.
        tasks.close_done(
            session,
            kinds=[TaskKind.FOLLOW_UP_INTERVIEW],
            youth_id=youth.id,
            by_id=booked_by_staff_id,
            now=now,
        )
    _confirm(session, youth, appointment, base_url=base_url, now=now, secret_key=secret_key)
    schedule_reminders(
        session, youth, appointment, base_url=base_url, now=now, secret_key=secret_key
    )
    return appointment


def _calendar(
    youth: Youth, appointment: Appointment, *, base_url: str, now: datetime
) -> Callable[[], Attachment]:
    """The .ics the youth's email carries, REQUEST while booked, CANCEL once cancelled:
    built by notify() in the youth's language, only when the notice goes by email."""

    def calendar_file() -> Attachment:
        from paris_avenir.config import get_settings

        link, _listing = notices.links(appointment, base_url)
        body = ics.invitation(
            appointment,
            summary=notices.calendar_summary(
                kind_label(appointment.kind), detailed=youth.detailed_messages
            ),
            stamp=now,
            description=i18n.gettext(
                "Pour déplacer ou annuler ce rendez-vous : %(link)s", link=link
            ),
            url=link,
            organizer=get_settings().mail_from,
            attendee=youth.email,
        )
        return ("rendez-vous.ics", "text/calendar", body)

    return calendar_file


def _answer_link(appointment: Appointment, *, base_url: str, secret_key: str | None) -> str:
    return answer_links.link(
        appointment.id,
        secret_key=secret_key or answer_links.default_secret_key(),
        base_url=base_url,
    )


def _confirm(
    session: Session,
    youth: Youth,
    appointment: Appointment,
    *,
    base_url: str,
    now: datetime,
    secret_key: str | None = None,
) -> None:
    calendar = _calendar(youth, appointment, base_url=base_url, now=now)
    notice = notices.confirmation(
        appointment,
        base_url=base_url,
        calendar=calendar,
        answer_link=_answer_link(appointment, base_url=base_url, secret_key=secret_key),
    )
    notifications.notify(session, youth, notice, now=now)


def _announce_cancellation(
    session: Session, youth: Youth, appointment: Appointment, *, base_url: str, now: datetime
) -> None:
    calendar = _calendar(youth, appointment, base_url=base_url, now=now)
    notice = notices.cancellation(appointment, base_url=base_url, calendar=calendar)
    notifications.notify(session, youth, notice, now=now)


def schedule_reminders(
    session: Session,
    youth: Youth,
    appointment: Appointment,
    *,
    base_url: str,
    now: datetime,
    secret_key: str | None = None,
) -> int:
    queued = 0
    answer_link = _answer_link(appointment, base_url=base_url, secret_key=secret_key)
    current = load_policy(session)
    reminders = (current.reminder_first_hours, current.reminder_second_hours)
    quiet = quiet_hours.load(session)
    # In quiet hours, a reminder comes earlier rather than never; each is useless once the
    # next one is due (held over a weekend, the 48-hour reminder must not leave with the
    # 2-hour one) or once the appointment has started.
    send_times = sorted(
        (quiet.latest_sending_time_before(appointment.starts_at - timedelta(hours=hours)), hours)
        for hours in reminders
    )
    for index, (send_at, hours) in enumerate(send_times):
        if send_at <= now:
            continue  # booked too late for this one: the confirmation just left
        later = [moment for moment, _hours in send_times[index + 1 :] if moment > send_at]
        notice = notices.reminder(
            appointment,
            hours=hours,
            base_url=base_url,
            send_at=send_at,
            expires_at=later[0] if later else appointment.starts_at,
            answer_link=answer_link,
        )
        queued += notifications.notify(session, youth, notice, now=now, quiet=quiet) is not None
    return queued


def _cancel_pending(session: Session, appointment: Appointment) -> None:
    """Nothing about this appointment's slot that has not left yet leaves: its reminders and
    a confirmation still held (quiet hours, a retry)."""
    outbox.cancel_queued(
        session,
        keys=[f"appointment-confirmation:{appointment.id}"],
        key_prefixes=[f"appointment-reminder:{appointment.id}:"],
        detail="appointment changed",
    )


def _lock_for_change(session: Session, youth: Youth, appointment: Appointment) -> None:
    """One change at a time to a youth's appointments, decided on their latest state: two
    moves (or cancellations) sent at once give one move and one SEQUENCE step, not two."""
    _lock_bookings_of(session, youth)
    session.refresh(appointment)


def _default_base_url() -> str:
    from paris_avenir.config import get_settings

    return get_settings().base_url


def cancel(
    session: Session,
    appointment: Appointment,
    youth: Youth,
    *,
    now: datetime | None = None,
    by_staff: bool = False,
    base_url: str | None = None,
    up_to_the_start: bool = False,
) -> None:
    """Cancels a booked appointment (AppointmentError otherwise: already cancelled, or past
    the policy's cut-off). `up_to_the_start`: the youth's "Je ne peux pas venir" from the
    reminder's link (appointments/answers.py) frees the slot until the appointment starts,
    since a late notice is worth more than an empty chair."""
    now = now or utcnow()
    _lock_for_change(session, youth, appointment)
    if appointment.status is not AppointmentStatus.BOOKED:
        raise AppointmentError(i18n.gettext("Ce rendez-vous n’est plus prévu."))
    policy = load_policy(session)
    if not by_staff and not up_to_the_start and appointment.starts_at - now < cancel_cutoff(policy):
        raise AppointmentError(
            i18n.gettext(
                "Il est trop tard pour annuler en ligne (moins de %(hours)s avant). "
                "Appelez votre référent.",
                hours=hours_text(policy.cancel_cutoff_hours),
            )
        )
    appointment.status = AppointmentStatus.CANCELLED
    appointment.cancelled_at = now
    appointment.calendar_sequence += 1
    _cancel_pending(session, appointment)
    record_activity(session, youth, Activity.APPOINTMENT_CANCELLED, now)
    _announce_cancellation(
        session, youth, appointment, base_url=base_url or _default_base_url(), now=now
    )


def move(
    session: Session,
    appointment: Appointment,
    youth: Youth,
    slot_key: str,
    *,
    base_url: str,
    now: datetime | None = None,
    secret_key: str | None = None,
) -> Appointment:
    """The new slot is a new row that keeps the calendar event (UID) of the first one, with
    a higher SEQUENCE: the youth's calendar moves the event, it does not add a second one.
    No CANCEL is sent for the old slot (it would remove the shared event) and nothing still
    pending about the old slot leaves."""
    now = now or utcnow()
    _lock_for_change(session, youth, appointment)
    if appointment.status is not AppointmentStatus.BOOKED:
        raise AppointmentError(i18n.gettext("Ce rendez-vous n’est plus prévu."))
    policy = load_policy(session)
    if appointment.starts_at - now < move_cutoff(policy):
        raise AppointmentError(
            i18n.gettext(
                "Il est trop tard pour déplacer en ligne (moins de %(hours)s avant). "
                "Appelez votre référent.",
                hours=hours_text(policy.move_cutoff_hours),
            )
        )
    new = book(
        session,
        youth,
        appointment.kind,
        slot_key,
        base_url=base_url,
        shared_with_referent=appointment.shared_with_referent,
        replacing=appointment,
        now=now,
        secret_key=secret_key,
    )
    appointment.status = AppointmentStatus.CANCELLED
    appointment.cancelled_at = now
    _cancel_pending(session, appointment)
    return new


def youth_appointments(session: Session, youth_id: uuid.UUID) -> list[Appointment]:
    return list(
        session.scalars(
            select(Appointment)
            .where(Appointment.youth_id == youth_id)
            .order_by(Appointment.starts_at.desc())
        )
    )


def appointments_for_staff(
    session: Session, youth_id: uuid.UUID, *, limit: int = 20
) -> list[Appointment]:
    """The youth's latest appointments as their file shows them to the team: psychological
    support is health data, hidden unless the youth shares it."""
    return list(session.scalars(_APPOINTMENTS_FOR_STAFF, {"youth_id": youth_id, "limit": limit}))


# Built once: every youth file runs it (see auth.sessions).
_APPOINTMENTS_FOR_STAFF = (
    select(Appointment)
    .where(
        Appointment.youth_id == bindparam("youth_id"),
        or_(
            Appointment.kind != AppointmentKind.PSYCHOLOGIST,
            Appointment.shared_with_referent,
        ),
    )
    .order_by(Appointment.starts_at.desc())
    .limit(bindparam("limit"))
)


def moved_ids(appointments: list[Appointment]) -> set[uuid.UUID]:
    """Those of the appointments that were moved (a later row holds their calendar event),
    rather than cancelled: the youth sees "déplacé", not "annulé"."""
    latest: dict[str, int] = {}
    for appointment in appointments:
        uid = appointment.calendar_uid
        latest[uid] = max(latest.get(uid, 0), appointment.calendar_sequence)
    return {
        appointment.id
        for appointment in appointments
        if appointment.status is AppointmentStatus.CANCELLED
        and appointment.calendar_sequence < latest[appointment.calendar_uid]
    }


def appointment_of_youth(
    session: Session, youth_id: uuid.UUID, appointment_id: str
) -> Appointment | None:
    try:
        parsed = uuid.UUID(appointment_id)
    except ValueError:
        return None
    return session.scalar(
        select(Appointment).where(Appointment.id == parsed, Appointment.youth_id == youth_id)
    )


# --- The interview due 6 months after leaving care (CASF art. L222-5-2-1) ------------------

INTERVIEW_NOTICE = timedelta(days=30)


def propose_follow_up_interviews(
    session: Session, *, base_url: str, now: datetime | None = None
) -> int:
    """Invites every youth whose interview falls due within 30 days, once, to choose a slot
    with their référent. Returns how many invitations were queued."""
    from paris_avenir.auth.links import create_login_link
    from paris_avenir.kit.dates import add_months

    now = now or utcnow()
    today = paris_day(now)
    earliest_exit = add_months(today, -FOLLOW_UP_INTERVIEW_AFTER_EXIT) - timedelta(days=7)
    latest_exit = add_months(today + INTERVIEW_NOTICE, -FOLLOW_UP_INTERVIEW_AFTER_EXIT)
    youths = session.scalars(
        select(Youth).where(
            Youth.ase_exit_date.is_not(None),
            Youth.ase_exit_date >= earliest_exit,
            Youth.ase_exit_date <= latest_exit,
            Youth.deletion_requested_at.is_(None),
            ~Youth.id.in_(
                select(Appointment.youth_id).where(
                    Appointment.kind == AppointmentKind.FOLLOW_UP_INTERVIEW,
                    Appointment.status != AppointmentStatus.CANCELLED,
                )
            ),
        )
    ).all()
    queued = 0
    for youth in youths:
        key = f"follow-up-interview:{youth.id}:{youth.ase_exit_date}"
        if session.scalar(select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)):
            continue
        link = create_login_link(
            session,
            youth.id,
            purpose="follow_up_interview",
            base_url=base_url,
            lifetime=timedelta(days=30),
            now=now,
        )
        notice = notices.interview_invitation(key=key, link=link)
        if notifications.notify(session, youth, notice, now=now):
            queued += 1
    return queued
