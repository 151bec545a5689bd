"""An appointment as an iCalendar event (RFC 5545), for the youth's and the staff's calendars.

What Google, Outlook and Apple expect of an invitation sent by email (iTIP, RFC 5546): one
UID for the appointment's whole life (a move keeps it), a SEQUENCE raised on every change,
METHOD:REQUEST to add or update the event and METHOD:CANCEL (STATUS:CANCELLED) to remove
it. The ORGANIZER is the service's own sending address and the only ATTENDEE the youth's
own address: nothing the youth does not already know (no staff name, no other youth).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import parseaddr

from icalendar import Alarm, Calendar, Event, vCalAddress, vDuration, vText

from paris_avenir.appointments.models import Appointment, AppointmentStatus

PRODID = "-//Ville de Paris//Paris avenir//FR"
ALARM_BEFORE = timedelta(hours=2)


def _calendar(method: str | None) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    if method:
        calendar.add("method", method)
    return calendar


def _address(value: str, name: str | None = None) -> vCalAddress:
    address = vCalAddress(f"mailto:{value}")
    if name:
        address.params["cn"] = vText(name)
    return address


def event_of(
    appointment: Appointment,
    *,
    summary: str,
    stamp: datetime | None = None,
    description: str | None = None,
    url: str | None = None,
    organizer: str | None = None,
    attendee: str | None = None,
) -> Event:
    cancelled = appointment.status is AppointmentStatus.CANCELLED
    event = Event()
    event.add("uid", appointment.calendar_uid)
    event.add("sequence", appointment.calendar_sequence)
    event.add("summary", summary)
    # Instants in UTC: unambiguous across summer time; calendars show them in Paris time.
    event.add("dtstart", appointment.starts_at)
    event.add("dtend", appointment.ends_at)
    event.add("dtstamp", stamp or appointment.modified_at)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    if appointment.address:
        event.add("location", appointment.address)
    if description:
        event.add("description", description)
    if url:
        event.add("url", url)
    if organizer:
        name, address = parseaddr(organizer)
        if address:
            event.add("organizer", _address(address, name or None))
    if attendee:
        person = _address(attendee)
        person.params["partstat"] = vText("DECLINED" if cancelled else "ACCEPTED")
        person.params["rsvp"] = vText("FALSE")
        person.params["role"] = vText("REQ-PARTICIPANT")
        event.add("attendee", person)
    if not cancelled:
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", summary)
        alarm.add("trigger", -ALARM_BEFORE)
        event.add_component(alarm)
    return event


def invitation(
    appointment: Appointment,
    *,
    summary: str,
    stamp: datetime,
    description: str,
    url: str,
    organizer: str | None = None,
    attendee: str | None = None,
) -> str:
    """The .ics sent to the youth: REQUEST while booked, CANCEL once cancelled."""
    cancelled = appointment.status is AppointmentStatus.CANCELLED
    calendar = _calendar("CANCEL" if cancelled else "REQUEST")
    calendar.add_component(
        event_of(
            appointment,
            summary=summary,
            stamp=stamp,
            description=description,
            url=url,
            organizer=organizer,
            attendee=attendee,
        )
    )
    return str(calendar.to_ical().decode())


def calendar_of(
    appointments: list[Appointment],
    *,
    summary: str,
    location_for: dict[str, str] | None = None,
    name: str | None = None,
    refresh: timedelta | None = None,
    description: str | None = None,
    url: str | None = None,
) -> str:
    """A published calendar (a download or a subscribed feed): no METHOD of iTIP beyond
    PUBLISH, no organizer or attendee."""
    calendar = _calendar("PUBLISH")
    if name:
        calendar.add("name", name)  # RFC 7986
        calendar.add("x-wr-calname", name)  # Google, Apple, Outlook
    if refresh:
        calendar.add("refresh-interval", refresh, parameters={"VALUE": "DURATION"})
        calendar.add("x-published-ttl", vDuration(refresh))
    for appointment in appointments:
        calendar.add_component(
            event_of(appointment, summary=summary, description=description, url=url)
        )
    return str(calendar.to_ical().decode())
