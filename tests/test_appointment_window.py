"""Appointments that never trap: the slots offered are 4 weeks of whole days in pages of 14
("plus tard"), each one the youth can still move and cancel online under the admin's current
policy; every text about the cut-offs says the policy's numbers."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from paris_avenir.appointments import policy as appointment_policy
from paris_avenir.appointments import service
from paris_avenir.appointments.models import (
    Appointment,
    AppointmentKind,
    AppointmentPlace,
    AppointmentStatus,
    WeeklyAvailability,
)
from paris_avenir.demo import load_demo_data
from paris_avenir.outreach import policy
from paris_avenir.staff.models import StaffRole, StaffUser
from paris_avenir.web import i18n
from paris_avenir.youths.models import Youth
from tests.factories import assign, create_staff, create_youth
from tests.helpers import post_form, sign_in_as
from tests.test_appointments import open_mornings

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 12, 2, 7, 10, tzinfo=UTC)  # Wednesday 2 December, 08:10 in Paris
REFERENT = AppointmentKind.REFERENT
SLOT = re.compile(r'name="creneau" value="([^"]+)"')


@pytest.fixture
def referent(session: Session) -> StaffUser:
    referent = create_staff(session, StaffRole.REFERENT)
    open_mornings(session, referent)  # weekdays 9:00-11:00, 30-minute slots
    return referent


@pytest.fixture
def youth(session: Session, referent: StaffUser) -> Youth:
    youth = create_youth(session)
    assign(session, youth, referent)
    session.commit()
    return youth


def set_policy(session: Session, **hours: int) -> None:
    values = {key: str(value) for key, value in policy.current_values(session).items()}
    policy.save(session, values | {key: str(value) for key, value in hours.items()}, by_id=None)


def paris(value: datetime) -> datetime:
    return value.astimezone(PARIS)


def test_the_first_slot_offered_can_still_be_moved_and_cancelled(
    session: Session, youth: Youth
) -> None:
    # Booked at 08:10 for 11:30 the same day was the trap: moving closes 24 h before.
    first = service.slots_for(session, youth, REFERENT, now=NOW)[0]
    assert paris(first.starts_at) == datetime(2026, 12, 3, 9, 0, tzinfo=PARIS)
    appointment = service.book(session, youth, REFERENT, first.key, base_url="http://x", now=NOW)
    current = appointment_policy.load(session)
    assert service.move_deadline(current, appointment) >= NOW
    assert service.cancel_deadline(current, appointment) >= NOW
    later = service.slots_for(session, youth, REFERENT, now=NOW)[3]
    moved = service.move(session, appointment, youth, later.key, base_url="http://x", now=NOW)
    assert moved.status is AppointmentStatus.BOOKED


def test_the_first_slot_follows_the_admins_cut_offs(session: Session, youth: Youth) -> None:
    set_policy(session, move_cutoff_hours=48, cancel_cutoff_hours=4)
    first = service.slots_for(session, youth, REFERENT, now=NOW)[0]
    assert paris(first.starts_at) == datetime(2026, 12, 4, 9, 0, tzinfo=PARIS)
    set_policy(session, move_cutoff_hours=1, cancel_cutoff_hours=1)
    # Never closer than the 2 hours of notice the staff need.
    first = service.slots_for(session, youth, REFERENT, now=NOW)[0]
    assert paris(first.starts_at) == datetime(2026, 12, 2, 10, 30, tzinfo=PARIS)
    set_policy(session, move_cutoff_hours=2, cancel_cutoff_hours=30)
    first = service.slots_for(session, youth, REFERENT, now=NOW)[0]
    # 30 hours to cancel: Thursday's last slot (10:30) is only 26 h 20 ahead.
    assert paris(first.starts_at) == datetime(2026, 12, 4, 9, 0, tzinfo=PARIS)


def test_a_slot_inside_the_cut_off_cannot_be_booked_by_its_key(
    session: Session, youth: Youth
) -> None:
    today = datetime(2026, 12, 2, 10, 30, tzinfo=PARIS)
    key = f"{service.staff_for(session, youth, REFERENT)[0]}_{int(today.timestamp())}"
    with pytest.raises(service.SlotTaken):
        service.book(session, youth, REFERENT, key, base_url="http://x", now=NOW)


def test_pages_are_14_whole_days_then_plus_tard_until_4_weeks(
    session: Session, youth: Youth
) -> None:
    first = service.slot_page(session, youth, REFERENT, page=0, now=NOW)
    assert (first.first_day, first.last_day) == (date(2026, 12, 2), date(2026, 12, 15))
    assert first.has_later and not first.has_earlier
    days = {paris(slot.starts_at).date() for slot in first.slots}
    # Every weekday of the 14 days but today (inside the 24 h), all their slots: no cap.
    assert days == {
        date(2026, 12, 2) + timedelta(days=n)
        for n in range(1, 14)
        if (date(2026, 12, 2) + timedelta(days=n)).weekday() < 5
    }
    assert len(first.slots) == 4 * len(days)  # all of them: no more cap at 40
    second = service.slot_page(session, youth, REFERENT, page=1, now=NOW)
    assert (second.first_day, second.last_day) == (date(2026, 12, 16), date(2026, 12, 29))
    assert second.has_earlier and not second.has_later
    second_days = {paris(slot.starts_at).date() for slot in second.slots}
    assert min(second_days) == date(2026, 12, 16) and max(second_days) == date(2026, 12, 29)
    assert date(2026, 12, 25) not in second_days  # Christmas
    assert all(paris(slot.starts_at).time() >= time(9) for slot in second.slots)
    # Past the last page, the last page; the whole 4 weeks is what may be booked.
    assert service.slot_page(session, youth, REFERENT, page=7, now=NOW).number == 1
    everything = service.slots_for(session, youth, REFERENT, now=NOW, limit=None)
    assert [slot.key for slot in everything] == [slot.key for slot in first.slots + second.slots]


def test_the_change_rules_say_the_policys_numbers(session: Session, youth: Youth) -> None:
    assert service.change_rules(appointment_policy.load(session)) == (
        "Vous pourrez déplacer ce rendez-vous en ligne jusqu’à 24 heures avant, "
        "et l’annuler jusqu’à 4 heures avant."
    )
    set_policy(session, move_cutoff_hours=36, cancel_cutoff_hours=6)
    current = appointment_policy.load(session)
    assert "36 heures" in service.change_rules(current)
    assert "6 heures" in service.change_rules(current)
    with i18n.using_locale("en"):
        assert service.change_rules(current) == (
            "You can change the time of this appointment online up to 36 hours before, "
            "and cancel it up to 6 hours before."
        )
    set_policy(session, move_cutoff_hours=1, cancel_cutoff_hours=1)
    assert service.change_rules(appointment_policy.load(session)) == (
        "Vous pourrez déplacer ou annuler ce rendez-vous en ligne jusqu’à 1 heure avant."
    )


def test_too_late_messages_say_the_policys_numbers(session: Session, youth: Youth) -> None:
    slot = service.slots_for(session, youth, REFERENT, now=NOW)[8]
    appointment = service.book(session, youth, REFERENT, slot.key, base_url="http://x", now=NOW)
    set_policy(session, move_cutoff_hours=72, cancel_cutoff_hours=48)
    late = appointment.starts_at - timedelta(hours=30)
    with pytest.raises(service.AppointmentError) as moving:
        service.move(session, appointment, youth, slot.key, base_url="http://x", now=late)
    assert "moins de 72 heures avant" in str(moving.value)
    with pytest.raises(service.AppointmentError) as cancelling:
        service.cancel(session, appointment, youth, now=late)
    assert "moins de 48 heures avant" in str(cancelling.value)
    assert "4 heures" not in str(cancelling.value) and "24 heures" not in str(moving.value)


def test_the_next_appointment_includes_todays_even_under_way(
    session: Session, youth: Youth, referent: StaffUser
) -> None:
    def add(starts_at: datetime, status: AppointmentStatus) -> Appointment:
        appointment = Appointment(
            youth_id=youth.id,
            staff_id=referent.id,
            kind=REFERENT,
            place=AppointmentPlace.OFFICE,
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=30),
            status=status,
        )
        session.add(appointment)
        session.flush()
        return appointment

    assert service.next_appointment(session, youth.id, now=NOW) is None
    add(NOW - timedelta(hours=2), AppointmentStatus.BOOKED)  # over
    add(NOW + timedelta(hours=1), AppointmentStatus.CANCELLED)
    later = add(NOW + timedelta(days=3), AppointmentStatus.BOOKED)
    today = add(NOW - timedelta(minutes=10), AppointmentStatus.BOOKED)  # under way
    assert service.next_appointment(session, youth.id, now=NOW) is today
    assert service.next_appointment(session, youth.id, now=NOW + timedelta(hours=1)) is later


# --- The pages, without JavaScript ----------------------------------------------------------


async def test_the_picker_pages_with_plain_links_and_says_the_rules(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    set_policy(session, move_cutoff_hours=30, cancel_cutoff_hours=5)
    session.commit()
    sign_in_as(client, app, session, youth=youth)
    first = (await client.get("/mon-espace/rendez-vous/nouveau?motif=referent")).text
    assert "jusqu’à 30 heures avant, et l’annuler jusqu’à 5 heures avant" in first
    assert 'href="/mon-espace/rendez-vous/nouveau?motif=referent&amp;page=2"' in first
    assert "Plus tôt" not in first
    second = (await client.get("/mon-espace/rendez-vous/nouveau?motif=referent&page=2")).text
    assert 'href="/mon-espace/rendez-vous/nouveau?motif=referent&amp;page=1"' in second
    assert "Plus tard" not in second
    assert set(SLOT.findall(first)).isdisjoint(SLOT.findall(second))
    # A slot of the second page books like any other.
    booked = await post_form(
        client,
        "/mon-espace/rendez-vous",
        {"motif": "referent", "creneau": SLOT.findall(second)[0]},
    )
    assert booked.status_code == 303
    detail = (await client.get(booked.headers["location"])).text
    assert "Vous pouvez le déplacer en ligne jusqu’au" in detail
    assert "Déplacer le rendez-vous" in detail
    # Moving pages too.
    appointment_id = booked.headers["location"].split("/")[-1].split("?")[0]
    moving = (await client.get(f"/mon-espace/rendez-vous/{appointment_id}/deplacer?page=2")).text
    assert f'href="/mon-espace/rendez-vous/{appointment_id}/deplacer?page=1"' in moving
    assert (await client.get("/mon-espace/rendez-vous/nouveau?page=abc")).status_code == 200


def test_the_demo_guichet_has_slots(session: Session) -> None:
    load_demo_data(session, now=NOW)
    youth = session.scalars(select(Youth).where(Youth.ase_ref == "DEMO-ASE-0002")).one()
    counter = service.slot_page(session, youth, AppointmentKind.COUNTER, now=NOW)
    # One référent holds it each weekday, 17:00-18:30: three slots a working day.
    weekdays = {paris(slot.starts_at).date() for slot in counter.slots}
    assert len(weekdays) >= 8 and len(counter.slots) == 3 * len(weekdays)
    assert {paris(slot.starts_at).time() for slot in counter.slots} == {
        time(17),
        time(17, 30),
        time(18),
    }
    openings = session.scalar(select(func.count()).select_from(WeeklyAvailability))
    load_demo_data(session, now=NOW)  # again: nothing doubles
    assert session.scalar(select(func.count()).select_from(WeeklyAvailability)) == openings
