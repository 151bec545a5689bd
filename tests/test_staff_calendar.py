"""Staff side of appointments: calendar, marking, private feed, availability, the 6-month
interview, booking at the counter."""

from __future__ import annotations

import re
from datetime import date, timedelta

import httpx
import icalendar
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.appointments import service
from paris_avenir.appointments.models import (
    Appointment,
    AppointmentKind,
    AppointmentStatus,
    AvailabilityException,
    WeeklyAvailability,
)
from paris_avenir.audit.models import AuditEvent
from paris_avenir.db import utcnow
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.staff.models import StaffRole, StaffTask, StaffUser, TaskKind
from paris_avenir.youths.models import Youth
from tests.factories import assign, create_appointment, create_staff, create_youth
from tests.helpers import post_form, sign_in_as
from tests.test_appointments import open_mornings


@pytest.fixture
def referent(session: Session) -> StaffUser:
    referent = create_staff(session, StaffRole.REFERENT)
    open_mornings(session, referent)
    return referent


@pytest.fixture
def youth(session: Session, referent: StaffUser) -> Youth:
    youth = create_youth(session, first_name="Dylan", last_name="Laurent")
    assign(session, youth, referent)
    session.commit()
    return youth


async def test_the_calendar_shows_own_appointments_and_marks_them(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    past = create_appointment(session, youth, referent, utcnow() - timedelta(hours=3))
    missed = create_appointment(session, youth, referent, utcnow() - timedelta(hours=2))
    future = create_appointment(session, youth, referent, utcnow() + timedelta(days=1))
    psychologist = create_staff(session, StaffRole.PSYCHOLOGIST)
    theirs = create_appointment(
        session,
        youth,
        psychologist,
        utcnow() - timedelta(hours=1),
        kind=AppointmentKind.PSYCHOLOGIST,
    )
    youth.last_activity_at = utcnow() - timedelta(days=40)
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    page = await client.get("/pro/agenda?vue=semaine")
    assert "Dylan Laurent" in page.text and "Venu" in page.text
    assert (await post_form(client, f"/pro/rendez-vous/{past.id}/honore")).status_code == 303
    assert (await post_form(client, f"/pro/rendez-vous/{missed.id}/manque")).status_code == 303
    assert (await post_form(client, f"/pro/rendez-vous/{future.id}/honore")).status_code == 409
    assert (await post_form(client, f"/pro/rendez-vous/{theirs.id}/honore")).status_code == 404
    session.expire_all()
    assert session.get_one(Appointment, past.id).status is AppointmentStatus.ATTENDED
    assert session.get_one(Appointment, missed.id).status is AppointmentStatus.MISSED
    task = session.scalars(select(StaffTask)).one()
    assert (task.kind, task.assignee_id) == (TaskKind.MISSED_APPOINTMENT, referent.id)
    assert (utcnow() - (session.get_one(Youth, youth.id).last_activity_at or utcnow())).days == 0


async def test_marking_an_earlier_appointment_attended_keeps_a_later_sign_in_as_activity(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    past = create_appointment(session, youth, referent, utcnow() - timedelta(hours=3))
    signed_in_at = utcnow() - timedelta(hours=1)
    youth.last_activity_at = signed_in_at
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    assert (await post_form(client, f"/pro/rendez-vous/{past.id}/honore")).status_code == 303
    session.expire_all()
    assert session.get_one(Youth, youth.id).last_activity_at == signed_in_at


async def test_the_private_feed_works_until_revoked_and_names_nobody(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    create_appointment(session, youth, referent, utcnow() + timedelta(days=2))
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    page = await post_form(client, "/pro/agenda/flux")
    url = re.search(r"http://[^<\s]+/agenda/[^<\s]+\.ics", page.text)
    assert url
    path = url.group(0).split("127.0.0.1:8000", 1)[-1]
    client.cookies.clear()  # calendar applications have no session
    feed = await client.get(path)
    assert feed.status_code == 200
    events = icalendar.Calendar.from_ical(feed.text).walk("VEVENT")
    assert len(events) == 1 and "Dylan" not in feed.text and "Laurent" not in feed.text
    sign_in_as(client, app, session, staff=referent)
    await post_form(client, "/pro/agenda/flux/supprimer")
    client.cookies.clear()
    assert (await client.get(path)).status_code == 404


async def test_availability_and_absences_change_the_slots(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    sign_in_as(client, app, session, staff=referent)
    bad = await post_form(
        client,
        "/pro/disponibilites",
        {"jour": "1", "debut": "12:00", "fin": "10:00", "motif": "referent"},
    )
    assert bad.status_code == 422 and "début avant fin" in bad.text
    added = await post_form(
        client,
        "/pro/disponibilites",
        {
            "jour": "5",
            "debut": "10:00",
            "fin": "12:00",
            "motif": "referent",
            "lieu": "bureau",
            "duree": "60",
        },
    )
    assert added.status_code == 303
    saturday = session.scalars(
        select(WeeklyAvailability).where(WeeklyAvailability.weekday == 5)
    ).one()
    assert saturday.slot_minutes == 60
    start = utcnow().date() + timedelta(days=1)
    await post_form(
        client,
        "/pro/disponibilites/absence",
        {"du": start.isoformat(), "au": (start + timedelta(days=30)).isoformat()},
    )
    assert session.scalars(select(AvailabilityException)).one()
    assert all(
        slot.starts_at.date() < start
        for slot in service.slots_for(session, youth, AppointmentKind.REFERENT)
    )
    await post_form(client, f"/pro/disponibilites/{saturday.id}/supprimer")
    assert (
        session.scalars(select(WeeklyAvailability).where(WeeklyAvailability.weekday == 5)).all()
        == []
    )


def test_the_six_month_interview_is_proposed_once(session: Session, referent: StaffUser) -> None:
    today = utcnow().date()
    due_soon = create_youth(
        session, ase_exit_date=date(today.year, today.month, 1) - timedelta(days=160)
    )
    far = create_youth(session, ase_exit_date=today - timedelta(days=30))
    for youth in (due_soon, far):
        assign(session, youth, referent)
    session.flush()
    assert service.propose_follow_up_interviews(session, base_url="http://x") == 1
    assert service.propose_follow_up_interviews(session, base_url="http://x") == 0
    invitation = session.scalars(
        select(OutboxMessage).where(OutboxMessage.template == "follow_up_interview")
    ).one()
    assert invitation.youth_id == due_soon.id and "/lien/" in invitation.body_text


async def test_the_interview_link_lands_on_the_slots_with_the_referent(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    from paris_avenir.auth.links import create_login_link

    url = create_login_link(
        session, youth.id, purpose="follow_up_interview", base_url="http://testserver"
    )
    session.commit()
    response = await post_form(client, url.removeprefix("http://testserver"))
    assert response.headers["location"] == "/mon-espace/rendez-vous/nouveau?motif=entretien"
    page = await client.get(response.headers["location"])
    assert "Entretien des 6 mois" in page.text and 'name="creneau"' in page.text


async def test_a_referent_books_at_the_counter_for_the_youth(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    sign_in_as(client, app, session, staff=referent)
    await post_form(client, f"/pro/jeunes/{youth.id}/guichet", {"accord": "oui"})
    page = await client.get(f"/pro/jeunes/{youth.id}/guichet/rendez-vous?motif=referent")
    key = re.search(r'name="creneau" value="([^"]+)"', page.text)
    assert key
    response = await post_form(
        client,
        f"/pro/jeunes/{youth.id}/guichet/rendez-vous",
        {"motif": "referent", "creneau": key.group(1)},
    )
    assert response.status_code == 303
    appointment = session.scalars(select(Appointment)).one()
    assert appointment.booked_by_staff_id == referent.id and appointment.youth_id == youth.id
    assert session.scalars(
        select(AuditEvent.action).where(AuditEvent.action == "counter.appointment")
    ).one()
