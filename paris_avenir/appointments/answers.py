"""The youth's one-tap answers to an appointment's confirmation or reminder, without
signing in (the link: appointments/answer_links.py).

- "Je viendrai" records a confirmation, once; the staff member's agenda shows it.
- "Je ne peux pas venir" cancels the appointment at once with service.cancel (the slot is
  free for another youth the same moment, the youth's calendar gets the CANCEL) and records
  the answer: that row is the staff member's notice on their agenda. The cancellation is
  decided once, on the youth's locked row (service.cancel), and the answer's unique index
  (appointment, answer) backs it up: 36 taps at once cancel once and tell once.
- After it, the same link offers the next free slots of the same kind — one booking through
  service.book, with its limits — or "Être rappelé·e": one call task for the référent
  (staff/tasks.py).

The link can do nothing else: it never signs in, and shows nothing of the youth's space.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from paris_avenir.appointments import service
from paris_avenir.appointments.models import (
    AnswerKind,
    Appointment,
    AppointmentAnswer,
    AppointmentKind,
    AppointmentStatus,
)
from paris_avenir.appointments.slots import Slot
from paris_avenir.db import utcnow
from paris_avenir.kit import settings_store
from paris_avenir.kit.dates import PARIS
from paris_avenir.staff import tasks
from paris_avenir.staff.models import StaffUser, TaskKind
from paris_avenir.web import i18n
from paris_avenir.youths.models import Youth

NEXT_SLOTS = 6
# Written by the migration that brought the answers (its deployment): the statistics count
# no-shows of appointments booked before it and after it (stats/service.py).
ANSWERS_SINCE_KEY = "appointment_answers_since"


def answers_since(session: Session) -> datetime | None:
    """From when confirmations and reminders carried the one-tap link."""
    stored = settings_store.load(session, ANSWERS_SINCE_KEY)
    if not isinstance(stored, dict) or not stored.get("since"):
        return None
    return datetime.fromisoformat(str(stored["since"]))


def answer_of(
    session: Session, appointment_id: uuid.UUID, kind: AnswerKind
) -> AppointmentAnswer | None:
    return session.scalar(
        select(AppointmentAnswer).where(
            AppointmentAnswer.appointment_id == appointment_id, AppointmentAnswer.answer == kind
        )
    )


def _record(
    session: Session, appointment: Appointment, kind: AnswerKind, now: datetime
) -> AppointmentAnswer | None:
    answer = AppointmentAnswer(
        appointment_id=appointment.id,
        youth_id=appointment.youth_id,
        staff_id=appointment.staff_id,
        answer=kind,
        answered_at=now,
    )
    try:
        with session.begin_nested():
            session.add(answer)
            session.flush()
    except IntegrityError:
        return None  # given already (another tap at the same moment)
    return answer


def will_come(session: Session, appointment: Appointment, *, now: datetime | None = None) -> bool:
    """ "Je viendrai": False when the appointment is no longer booked or it was said already."""
    now = now or utcnow()
    if appointment.status is not AppointmentStatus.BOOKED:
        return False
    if answer_of(session, appointment.id, AnswerKind.COMING) is not None:
        return False
    return _record(session, appointment, AnswerKind.COMING, now) is not None


def cannot_come(
    session: Session,
    appointment: Appointment,
    *,
    base_url: str,
    now: datetime | None = None,
) -> bool:
    """ "Je ne peux pas venir": cancels at once and tells the staff member (the answer row,
    on their agenda). False when it is no longer booked (cancelled already, by this link or
    otherwise)."""
    now = now or utcnow()
    youth = session.get_one(Youth, appointment.youth_id)
    try:
        service.cancel(
            session, appointment, youth, now=now, base_url=base_url, up_to_the_start=True
        )
    except service.AppointmentError:
        return False
    return _record(session, appointment, AnswerKind.CANNOT_COME, now) is not None


def _freed_slot(appointment: Appointment, slot: Slot) -> bool:
    return slot.staff_id == appointment.staff_id and slot.starts_at == appointment.starts_at


def next_slots(session: Session, appointment: Appointment, *, now: datetime) -> list[Slot]:
    """The next free slots of the same kind for the youth, the one they just left aside."""
    youth = session.get_one(Youth, appointment.youth_id)
    slots = service.slots_for(session, youth, appointment.kind, now=now, limit=NEXT_SLOTS + 1)
    return [slot for slot in slots if not _freed_slot(appointment, slot)][:NEXT_SLOTS]


class AnswerError(service.AppointmentError):
    """The message is for the youth."""


def book_instead(
    session: Session,
    appointment: Appointment,
    slot_key: str,
    *,
    base_url: str,
    secret_key: str,
    now: datetime | None = None,
) -> Appointment:
    """One slot booked from the link after "Je ne peux pas venir" (service.book and its
    limits: SlotTaken, BookingLimitReached); AnswerError once one was booked already."""
    now = now or utcnow()
    freed = answer_of(session, appointment.id, AnswerKind.CANNOT_COME)
    if freed is None:
        raise AnswerError(i18n.gettext("Ce lien ne permet pas de prendre un autre rendez-vous."))
    youth = session.get_one(Youth, appointment.youth_id)
    # One booking from the link: decided on the youth's locked row (service.book takes the
    # same lock), so a second tap waits, then finds the first booking.
    service._lock_bookings_of(session, youth)
    session.refresh(freed)
    if freed.rebooked_appointment_id is not None:
        raise AnswerError(i18n.gettext("Vous avez déjà pris un autre rendez-vous avec ce lien."))
    new = service.book(
        session,
        youth,
        appointment.kind,
        slot_key,
        base_url=base_url,
        shared_with_referent=appointment.shared_with_referent,
        secret_key=secret_key,
        now=now,
    )
    freed.rebooked_appointment_id = new.id
    return new


def ask_call_back(
    session: Session, appointment: Appointment, *, now: datetime | None = None
) -> bool:
    """ "Être rappelé·e" after "Je ne peux pas venir": one call task for the youth's
    référent (the supervisor when away). A psychologist's session the youth did not share
    stays unnamed in it (health data)."""
    now = now or utcnow()
    freed = answer_of(session, appointment.id, AnswerKind.CANNOT_COME)
    if freed is None:
        return False
    asked = session.execute(
        update(AppointmentAnswer)
        .where(AppointmentAnswer.id == freed.id, AppointmentAnswer.call_back_at.is_(None))
        .values(call_back_at=now)
        .execution_options(synchronize_session=False)
    )
    if asked.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.refresh(freed)
    shared = (
        appointment.kind is not AppointmentKind.PSYCHOLOGIST or appointment.shared_with_referent
    )
    when = appointment.starts_at.astimezone(PARIS)
    with i18n.using_locale(i18n.SOURCE_LOCALE):  # the référent reads French
        about = (
            i18n.gettext(
                "A annulé son rendez-vous du %(date)s à %(time)s (%(kind)s) par le lien du "
                "rappel et demande à être rappelé·e.",
                date=f"{when:%d/%m/%Y}",
                time=f"{when:%H:%M}",
                kind=service.kind_label(appointment.kind),
            )
            if shared
            else i18n.gettext("A annulé un rendez-vous et demande à être rappelé·e.")
        )
    tasks.open_task(
        session,
        youth_id=appointment.youth_id,
        kind=TaskKind.CALL_BACK,
        key=f"appointment-call-back:{appointment.id}",
        now=now,
        due_at=tasks.end_of_next_working_day(now),
        appointment_id=appointment.id if shared else None,
        detail={"about": about},
    )
    return True


# --- What the staff member sees -----------------------------------------------------------

RECENT = timedelta(days=14)


@dataclass(frozen=True)
class FreedSlot:
    """A "Je ne peux pas venir" for the staff member's agenda."""

    appointment: Appointment
    youth: Youth
    answered_at: datetime
    call_back: bool
    rebooked: bool


def answers_for_agenda(
    session: Session, appointment_ids: list[uuid.UUID]
) -> dict[uuid.UUID, set[AnswerKind]]:
    """The answers given to these appointments (the agenda's rows), in one query."""
    found: dict[uuid.UUID, set[AnswerKind]] = {}
    if not appointment_ids:
        return found
    for appointment_id, kind in session.execute(
        select(AppointmentAnswer.appointment_id, AppointmentAnswer.answer).where(
            AppointmentAnswer.appointment_id.in_(appointment_ids)
        )
    ):
        found.setdefault(appointment_id, set()).add(kind)
    return found


def freed_slots(
    session: Session, staff: StaffUser, *, now: datetime | None = None
) -> list[FreedSlot]:
    """The staff member's appointments the youth cancelled from the link, answered in the
    last 14 days, newest first: the notice at the top of their agenda."""
    now = now or utcnow()
    rows = session.execute(
        select(AppointmentAnswer, Appointment, Youth)
        .join(Appointment, Appointment.id == AppointmentAnswer.appointment_id)
        .join(Youth, Youth.id == AppointmentAnswer.youth_id)
        .where(
            AppointmentAnswer.staff_id == staff.id,
            AppointmentAnswer.answer == AnswerKind.CANNOT_COME,
            AppointmentAnswer.answered_at >= now - RECENT,
        )
        .order_by(AppointmentAnswer.answered_at.desc())
        .limit(20)
    ).all()
    return [
        FreedSlot(
            appointment=appointment,
            youth=youth,
            answered_at=answer.answered_at,
            call_back=answer.call_back_at is not None,
            rebooked=answer.rebooked_appointment_id is not None,
        )
        for answer, appointment, youth in rows
    ]
