"""The staff calendar: own appointments by day or week, attended/missed marking, and a
private iCalendar feed (secret URL, revocable)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from paris_avenir.appointments import ics
from paris_avenir.appointments.models import Appointment, AppointmentKind, AppointmentStatus
from paris_avenir.appointments.service import kind_label
from paris_avenir.audit import service as audit
from paris_avenir.db import utcnow
from paris_avenir.kit.crypto import new_token, token_hash
from paris_avenir.kit.dates import PARIS
from paris_avenir.kit.errors import DomainError
from paris_avenir.staff import tasks
from paris_avenir.staff.models import StaffUser, TaskKind
from paris_avenir.web.i18n import gettext
from paris_avenir.youths.activity import Activity, record_activity
from paris_avenir.youths.models import Youth

FEED_HORIZON = timedelta(days=60)
# How long a cancelled appointment stays in the feed (subscribed calendars see it go).
CANCELLED_KEPT = timedelta(days=30)
# How often subscribed calendars are asked to fetch the feed again.
FEED_REFRESH = timedelta(hours=1)


class CalendarError(DomainError):
    """The message is for the staff member."""


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def appointments_between(
    session: Session, staff: StaffUser, first: date, last: date
) -> list[tuple[Appointment, Youth]]:
    start = datetime.combine(first, time(0), tzinfo=PARIS).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=PARIS).astimezone(UTC)
    return [
        (appointment, youth)
        for appointment, youth in session.execute(
            select(Appointment, Youth)
            .join(Youth, Youth.id == Appointment.youth_id)
            .where(
                Appointment.staff_id == staff.id,
                Appointment.starts_at >= start,
                Appointment.starts_at < end,
            )
            .order_by(Appointment.starts_at)
        ).all()
    ]


def own_appointment(session: Session, staff: StaffUser, appointment_id: str) -> Appointment | None:
    """Only the staff member's own appointments: a psychologist's stay theirs."""
    try:
        parsed = uuid.UUID(appointment_id)
    except ValueError:
        return None
    return session.scalar(
        select(Appointment).where(Appointment.id == parsed, Appointment.staff_id == staff.id)
    )


def mark(
    session: Session,
    appointment: Appointment,
    staff: StaffUser,
    *,
    attended: bool,
    now: datetime | None = None,
) -> None:
    now = now or utcnow()
    if appointment.status is AppointmentStatus.CANCELLED:
        raise CalendarError(gettext("Ce rendez-vous a été annulé."))
    if appointment.starts_at > now:
        raise CalendarError(gettext("Ce rendez-vous n’a pas encore commencé."))
    appointment.status = AppointmentStatus.ATTENDED if attended else AppointmentStatus.MISSED
    youth = session.get_one(Youth, appointment.youth_id)
    if attended:
        record_activity(session, youth, Activity.ATTENDED, appointment.starts_at)
    elif appointment.kind is not AppointmentKind.PSYCHOLOGIST or appointment.shared_with_referent:
        # A missed appointment is often the first sign of a drop-out: the référent calls.
        # Never for a psychologist's session the youth did not share (health data).
        tasks.open_task(
            session,
            youth_id=youth.id,
            kind=TaskKind.MISSED_APPOINTMENT,
            key=f"missed-appointment:{appointment.id}",
            now=now,
            appointment_id=appointment.id,
            detail={
                "appointment": kind_label(appointment.kind),
                "appointment_at": appointment.starts_at.isoformat(),
            },
        )
    audit.record(
        session,
        "appointment.marked",
        actor_staff_id=staff.id,
        youth_id=youth.id,
        object_type="appointment",
        object_id=appointment.id,
        detail={"attended": attended},
        now=now,
    )


def issue_feed_token(staff: StaffUser) -> str:
    """A new secret URL for the staff member's calendar; the previous one stops working."""
    token = new_token()
    staff.calendar_token_hash = token_hash(token)
    return token


def revoke_feed(staff: StaffUser) -> None:
    staff.calendar_token_hash = None


def feed(session: Session, token: str, *, now: datetime | None = None) -> str | None:
    """The staff member's subscribed calendar. Cancelled appointments stay in it as
    STATUS:CANCELLED with their raised SEQUENCE for CANCELLED_KEPT, so that the phones and
    clouds subscribed to it remove the event instead of keeping it; a moved appointment is
    one event (its latest state)."""
    now = now or utcnow()
    staff = session.scalar(
        select(StaffUser).where(
            StaffUser.calendar_token_hash == token_hash(token), StaffUser.is_active.is_(True)
        )
    )
    if staff is None:
        return None
    rows = session.scalars(
        select(Appointment)
        .where(
            Appointment.staff_id == staff.id,
            Appointment.starts_at < now + FEED_HORIZON,
            or_(
                Appointment.starts_at >= now - timedelta(days=7),
                Appointment.cancelled_at >= now - CANCELLED_KEPT,
            ),
        )
        .order_by(Appointment.starts_at)
    )
    latest: dict[str, Appointment] = {}
    for appointment in rows:
        known = latest.get(appointment.calendar_uid)
        if known is None or _newer(appointment, known):
            latest[appointment.calendar_uid] = appointment
    # Calendars sync to phones and clouds: no youth's name leaves the platform.
    return ics.calendar_of(
        sorted(latest.values(), key=lambda appointment: appointment.starts_at),
        summary="Paris avenir — rendez-vous",
        name=gettext("Paris avenir — mes rendez-vous"),
        refresh=FEED_REFRESH,
    )


def _newer(candidate: Appointment, known: Appointment) -> bool:
    """Of two rows of one moved appointment, the one that says where it is now (the move
    gives the new row the higher SEQUENCE; a tie is not expected, and then the live row)."""
    if candidate.calendar_sequence != known.calendar_sequence:
        return candidate.calendar_sequence > known.calendar_sequence
    return known.status is AppointmentStatus.CANCELLED
