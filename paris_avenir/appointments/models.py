from __future__ import annotations

import enum
import uuid
from datetime import date, datetime, time

from sqlalchemy import ForeignKey, Index, SmallInteger, String, text
from sqlalchemy.orm import Mapped, mapped_column

from paris_avenir.db import Base, RecordMixin, UTCDateTime, str_enum
from paris_avenir.kit.crypto import EncryptedText


class AppointmentKind(enum.StrEnum):
    REFERENT = "referent"
    PSYCHOLOGIST = "psychologue"
    COUNTER = "guichet"  # accompagnement démarches (titre de séjour, santé, recours…)
    FOLLOW_UP_INTERVIEW = "entretien_6_mois"  # CASF art. L222-5-2-1


# The follow-up interview is due this many months after leaving care (CASF art. L222-5-2-1).
FOLLOW_UP_INTERVIEW_AFTER_EXIT = 6


class AppointmentPlace(enum.StrEnum):
    OFFICE = "bureau"
    PHONE = "telephone"
    VIDEO = "visio"


class AppointmentStatus(enum.StrEnum):
    BOOKED = "reserve"
    CANCELLED = "annule"
    ATTENDED = "honore"
    MISSED = "manque"


class WeeklyAvailability(RecordMixin, Base):
    """A recurring opening (e.g. Tuesdays 9:00–12:00, Paris local time) of a staff member."""

    __tablename__ = "weekly_availability"

    staff_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("staff_user.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[AppointmentKind] = mapped_column(str_enum(AppointmentKind, "appointment_kind"))
    place: Mapped[AppointmentPlace] = mapped_column(str_enum(AppointmentPlace, "appointment_place"))
    address: Mapped[str | None] = mapped_column(String(300))
    weekday: Mapped[int] = mapped_column(SmallInteger)  # 0 = Monday
    start_time: Mapped[time]  # wall-clock time in Europe/Paris
    end_time: Mapped[time]
    slot_minutes: Mapped[int] = mapped_column(default=30, server_default=text("30"))
    valid_from: Mapped[date | None]
    valid_until: Mapped[date | None]


class AvailabilityException(RecordMixin, Base):
    """Leave, public holiday, training: no appointment may be booked in this interval."""

    __tablename__ = "availability_exception"

    staff_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("staff_user.id", ondelete="CASCADE"), index=True
    )
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(String(200))


class Appointment(RecordMixin, Base):
    __tablename__ = "appointment"
    __table_args__ = (
        # Never double-booked: one live appointment per staff member and start instant.
        Index(
            "uq_appointment_staff_live_slot",
            "staff_id",
            "starts_at",
            unique=True,
            postgresql_where=text("status <> 'annule'"),
            sqlite_where=text("status <> 'annule'"),
        ),
        Index("ix_appointment_starts_at", "starts_at"),
    )

    youth_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("youth.id", ondelete="CASCADE"), index=True
    )
    staff_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"))
    kind: Mapped[AppointmentKind] = mapped_column(str_enum(AppointmentKind, "appointment_kind"))
    place: Mapped[AppointmentPlace] = mapped_column(str_enum(AppointmentPlace, "appointment_place"))
    address: Mapped[str | None] = mapped_column(String(300))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[AppointmentStatus] = mapped_column(
        str_enum(AppointmentStatus, "appointment_status"), default=AppointmentStatus.BOOKED
    )
    # A word from the staff member to the youth: encrypted at rest like every message.
    note_for_youth: Mapped[str | None] = mapped_column(EncryptedText())
    booked_by_staff_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"))
    # Psychological support is health data: the référent sees it only if the youth shares it.
    shared_with_referent: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # One event in the youth's calendar for the appointment's whole life: a move books a new
    # row that keeps the first row's id here (its UID), and every change raises the SEQUENCE.
    series_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    calendar_sequence: Mapped[int] = mapped_column(default=0, server_default=text("0"))

    @property
    def calendar_uid(self) -> str:
        return f"{self.series_id or self.id}@paris-avenir"


class AnswerKind(enum.StrEnum):
    """The youth's one-tap answer from a reminder or a confirmation (appointments/answers.py)."""

    COMING = "viendra"
    CANNOT_COME = "ne_peut_pas"


class AppointmentAnswer(RecordMixin, Base):
    """A youth's answer to their appointment's link, once per appointment and answer: "Je
    viendrai" is what the staff member's agenda shows as confirmed; "Je ne peux pas venir"
    is the notice that the slot was freed (the appointment is cancelled at the same
    moment). After a cancellation the same link offers the next slots (one booking) or a
    call back (one task)."""

    __tablename__ = "appointment_answer"
    __table_args__ = (
        Index("uq_appointment_answer_once", "appointment_id", "answer", unique=True),
        Index("ix_appointment_answer_staff_answered", "staff_id", "answered_at"),
    )

    appointment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("appointment.id", ondelete="CASCADE")
    )
    youth_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("youth.id", ondelete="CASCADE"), index=True
    )
    staff_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"))
    answer: Mapped[AnswerKind] = mapped_column(str_enum(AnswerKind, "appointment_answer_kind"))
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # After "Je ne peux pas venir": the one slot booked from the link, the call back asked.
    rebooked_appointment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("appointment.id", ondelete="SET NULL")
    )
    call_back_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
