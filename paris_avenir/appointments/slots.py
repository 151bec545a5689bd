"""Free slots: weekly openings (Paris wall-clock), minus leave and public holidays, minus
what is booked. Computed for a bounded window, with one query per kind of data."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.appointments.models import (
    Appointment,
    AppointmentKind,
    AppointmentPlace,
    AppointmentStatus,
    AvailabilityException,
    WeeklyAvailability,
)
from paris_avenir.kit.holidays import is_public_holiday

PARIS = ZoneInfo("Europe/Paris")
BOOKING_WINDOW = timedelta(days=21)
MINIMUM_NOTICE = timedelta(hours=2)


@dataclass(frozen=True)
class Slot:
    staff_id: uuid.UUID
    kind: AppointmentKind
    place: AppointmentPlace
    address: str | None
    starts_at: datetime
    ends_at: datetime

    @property
    def key(self) -> str:
        """What a form sends back to book it."""
        return f"{self.staff_id}_{int(self.starts_at.timestamp())}"


def free_slots(
    session: Session,
    *,
    staff_ids: list[uuid.UUID],
    kind: AppointmentKind,
    now: datetime,
    window: timedelta = BOOKING_WINDOW,
    limit: int = 40,
) -> list[Slot]:
    if not staff_ids:
        return []
    first_day = now.astimezone(PARIS).date()
    last_day = (now + window).astimezone(PARIS).date()
    openings = list(
        session.scalars(
            select(WeeklyAvailability).where(
                WeeklyAvailability.staff_id.in_(staff_ids), WeeklyAvailability.kind == kind
            )
        )
    )
    exceptions = list(
        session.scalars(
            select(AvailabilityException).where(
                AvailabilityException.staff_id.in_(staff_ids),
                AvailabilityException.ends_at > now,
                AvailabilityException.starts_at < now + window,
            )
        )
    )
    booked = {
        (row[0], row[1])
        for row in session.execute(
            select(Appointment.staff_id, Appointment.starts_at).where(
                Appointment.staff_id.in_(staff_ids),
                Appointment.status != AppointmentStatus.CANCELLED,
                Appointment.starts_at >= now,
                Appointment.starts_at < now + window,
            )
        )
    }
    slots: list[Slot] = []
    day = first_day
    while day <= last_day:
        if not is_public_holiday(day):
            for opening in openings:
                if opening.weekday != day.weekday() or not _valid_on(opening, day):
                    continue
                slots.extend(_cut(opening, day, now, exceptions, booked))
        day += timedelta(days=1)
    slots.sort(key=lambda slot: (slot.starts_at, str(slot.staff_id)))
    return slots[:limit]


def _valid_on(opening: WeeklyAvailability, day: date) -> bool:
    return (opening.valid_from is None or opening.valid_from <= day) and (
        opening.valid_until is None or day <= opening.valid_until
    )


def _cut(
    opening: WeeklyAvailability,
    day: date,
    now: datetime,
    exceptions: list[AvailabilityException],
    booked: set[tuple[uuid.UUID, datetime]],
) -> list[Slot]:
    length = timedelta(minutes=opening.slot_minutes)
    start = datetime.combine(day, opening.start_time, tzinfo=PARIS)
    end = datetime.combine(day, opening.end_time, tzinfo=PARIS)
    result = []
    while start + length <= end:
        starts_at, ends_at = start.astimezone(UTC), (start + length).astimezone(UTC)
        blocked = any(
            item.staff_id == opening.staff_id
            and item.starts_at < ends_at
            and starts_at < item.ends_at
            for item in exceptions
        )
        if (
            starts_at >= now + MINIMUM_NOTICE
            and not blocked
            and (opening.staff_id, starts_at) not in booked
        ):
            result.append(
                Slot(
                    opening.staff_id,
                    opening.kind,
                    opening.place,
                    opening.address,
                    starts_at,
                    ends_at,
                )
            )
        start += length
    return result
