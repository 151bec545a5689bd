"""An appointment as an iCalendar event (RFC 5545), for the youth's and the staff's calendars."""

from __future__ import annotations

from icalendar import Calendar, Event

from paris_avenir.appointments.models import Appointment, AppointmentStatus


def calendar_of(
    appointments: list[Appointment], *, summary: str, location_for: dict[str, str] | None = None
) -> str:
    calendar = Calendar()
    calendar.add("prodid", "-//Ville de Paris//Paris avenir//FR")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    for appointment in appointments:
        event = Event()
        event.add("uid", f"{appointment.id}@paris-avenir")
        event.add("summary", summary)
        # Instants in UTC: unambiguous across summer time; calendars show them in Paris time.
        event.add("dtstart", appointment.starts_at)
        event.add("dtend", appointment.ends_at)
        event.add("dtstamp", appointment.modified_at)
        if appointment.address:
            event.add("location", appointment.address)
        if appointment.status is AppointmentStatus.CANCELLED:
            event.add("status", "CANCELLED")
        calendar.add_component(event)
    return str(calendar.to_ical().decode())
