"""Booking, moving and cancelling from the youth's space, without JavaScript."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.appointments.models import Appointment, AppointmentKind, AppointmentStatus
from paris_avenir.staff.models import StaffRole, StaffUser
from paris_avenir.youths.models import Youth
from tests.factories import assign, create_staff, create_youth
from tests.helpers import post_form, sign_in_as
from tests.test_appointments import open_mornings

SLOT = re.compile(r'name="creneau" value="([^"]+)"')


@pytest.fixture
def referent(session: Session) -> StaffUser:
    referent = create_staff(session, StaffRole.REFERENT)
    open_mornings(session, referent)
    return referent


@pytest.fixture
def youth(app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser) -> Youth:
    youth = create_youth(session)
    assign(session, youth, referent)
    session.commit()
    sign_in_as(client, app, session, youth=youth)
    return youth


async def test_book_move_and_cancel(
    client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    page = await client.get("/mon-espace/rendez-vous/nouveau?motif=referent")
    keys = SLOT.findall(page.text)
    assert len(keys) >= 10
    booked = await post_form(
        client, "/mon-espace/rendez-vous", {"motif": "referent", "creneau": keys[-1]}
    )
    assert booked.status_code == 303
    detail = await client.get(booked.headers["location"])
    assert "C’est confirmé" in detail.text and "Déplacer le rendez-vous" in detail.text
    first = session.scalars(select(Appointment)).one()

    ics = await client.get(f"/mon-espace/rendez-vous/{first.id}/agenda.ics")
    assert ics.headers["content-type"].startswith("text/calendar") and "BEGIN:VEVENT" in ics.text

    moved = await post_form(
        client, f"/mon-espace/rendez-vous/{first.id}/deplacer", {"creneau": keys[-2]}
    )
    assert moved.status_code == 303
    session.expire_all()
    rows = session.scalars(select(Appointment).order_by(Appointment.created_at)).all()
    assert [row.status for row in rows] == [AppointmentStatus.CANCELLED, AppointmentStatus.BOOKED]

    cancelled = await post_form(client, f"/mon-espace/rendez-vous/{rows[1].id}/annuler")
    assert cancelled.headers["location"] == "/mon-espace/rendez-vous?annule=1"
    session.expire_all()
    assert session.get_one(Appointment, rows[1].id).status is AppointmentStatus.CANCELLED


async def test_a_slot_taken_meanwhile_offers_the_next_ones(
    client: httpx.AsyncClient, session: Session, youth: Youth, referent: StaffUser
) -> None:
    keys = SLOT.findall((await client.get("/mon-espace/rendez-vous/nouveau?motif=referent")).text)
    from paris_avenir.appointments import service

    other = create_youth(session)
    assign(session, other, referent)
    service.book(session, other, AppointmentKind.REFERENT, keys[0], base_url="http://x")
    session.commit()
    response = await post_form(
        client, "/mon-espace/rendez-vous", {"motif": "referent", "creneau": keys[0]}
    )
    assert response.status_code == 409
    assert "plus libre" in response.text
    offered = SLOT.findall(response.text)
    assert offered and keys[0] not in offered


async def test_no_choice_is_explained(client: httpx.AsyncClient, youth: Youth) -> None:
    response = await post_form(client, "/mon-espace/rendez-vous", {"motif": "referent"})
    assert response.status_code == 422 and "Choisissez un créneau" in response.text


async def test_a_psychologist_appointment_stays_private_unless_shared(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth, referent: StaffUser
) -> None:
    psychologist = create_staff(session, StaffRole.PSYCHOLOGIST)
    open_mornings(session, psychologist, AppointmentKind.PSYCHOLOGIST)
    session.commit()
    keys = SLOT.findall(
        (await client.get("/mon-espace/rendez-vous/nouveau?motif=psychologue")).text
    )
    assert (
        "Mon référent peut savoir"
        in (await client.get("/mon-espace/rendez-vous/nouveau?motif=psychologue")).text
    )
    await post_form(
        client, "/mon-espace/rendez-vous", {"motif": "psychologue", "creneau": keys[-1]}
    )
    client.cookies.clear()
    sign_in_as(client, app, session, staff=referent)
    file = (await client.get(f"/pro/jeunes/{youth.id}")).text
    assert "psychologue" not in file
    session.scalars(select(Appointment)).one().shared_with_referent = True
    session.commit()
    assert (
        "Psychologue (partagé par le jeune) (prévu)"
        in (await client.get(f"/pro/jeunes/{youth.id}")).text
    )
