"""Free slots: weekly openings (Paris wall-clock), minus leave and public holidays, minus
what is booked. Computed for a bounded window, with one query per kind of data.

The window is either "from now" (`window` long) or whole Paris days (`first_day`, then
`window` days): the youth's picker shows pages of whole days ("plus tard")."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

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
from paris_avenir.kit.dates import PARIS, paris_day
from paris_avenir.kit.holidays import is_public_holiday

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
    limit: int | None = 40,
    notice: timedelta = MINIMUM_NOTICE,
    first_day: date | None = None,
) -> list[Slot]:
    """Free slots starting at least `notice` after `now`: within `window` of now, or, with
    `first_day`, on the `window.days` Paris days from that day. `limit=None`: all of them."""
    if not staff_ids:
        return []
    earliest = now + notice
    if first_day is None:
        first_day = paris_day(now)
        until = now + window
    else:
        until = _midnight(first_day + timedelta(days=window.days))
        earliest = max(earliest, _midnight(first_day))
    last_day = (until - timedelta(microseconds=1)).astimezone(PARIS).date()
    if until <= earliest:
        return []
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
                AvailabilityException.ends_at > earliest,
                AvailabilityException.starts_at < until,
            )
        )
    )
    booked = {
        (row[0], row[1])
        for row in session.execute(
            select(Appointment.staff_id, Appointment.starts_at).where(
                Appointment.staff_id.in_(staff_ids),
                Appointment.status != AppointmentStatus.CANCELLED,
                Appointment.starts_at >= earliest,
                Appointment.starts_at < until,
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
                slots.extend(_cut(opening, day, earliest, until, exceptions, booked))
        day += timedelta(days=1)
    slots.sort(key=lambda slot: (slot.starts_at, str(slot.staff_id)))
    return slots if limit is None else slots[:limit]


def _midnight(day: date) -> datetime:
    """The instant a Paris day begins."""
    return datetime.combine(day, time(0), tzinfo=PARIS).astimezone(UTC)


def _valid_on(opening: WeeklyAvailability, day: date) -> bool:
    return (opening.valid_from is None or opening.valid_from <= day) and (
        opening.valid_until is None or day <= opening.valid_until
    )


def _cut(
    opening: WeeklyAvailability,
    day: date,
    earliest: datetime,
    until: datetime,
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
            earliest <= starts_at < until
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
