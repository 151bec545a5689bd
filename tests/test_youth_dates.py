"""Every date a youth reads in their space carries its weekday ("mardi 8 décembre"), in every
language: dashboard, appointments (list and detail) and requests (list and detail)."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from babel import Locale
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests.models import AidRequest
from paris_avenir.appointments.models import Appointment, AppointmentKind, AppointmentPlace
from paris_avenir.db import utcnow
from paris_avenir.demo import load_demo_data
from paris_avenir.web import i18n
from paris_avenir.youths.models import Youth
from tests.helpers import sign_in_as

TAG = re.compile(r"<[^>]+>")


def text_of(html: str) -> str:
    body = html.split("<main", 1)[-1].split("</main>", 1)[0]
    return re.sub(r"\s+", " ", TAG.sub(" ", body.replace("&nbsp;", " ")))


def dates_without_weekday(text: str, language: str) -> list[str]:
    """Each written date (a day number next to a month name) must follow a weekday name."""
    weekdays = set(Locale.parse(language).days["format"]["wide"].values())
    found = []
    for match in written_dates(text, language):
        before = text[max(0, match.start() - 30) : match.start()]
        if not any(weekday in before for weekday in weekdays):
            found.append(text[max(0, match.start() - 30) : match.end() + 10])
    return found


def written_dates(text: str, language: str) -> list[re.Match[str]]:
    months = set(Locale.parse(language).months["format"]["wide"].values())
    names = "|".join(re.escape(month) for month in months)
    pattern = rf"\d{{1,2}},?\s+(?:{names})(?!\w)|(?<!\w)(?:{names})\s+\d{{1,2}}\b"
    return list(re.finditer(pattern, text))


@pytest.mark.parametrize("language", [code for code, _name in i18n.LANGUAGES])
async def test_every_date_in_the_youths_space_names_its_weekday(
    app: FastAPI, client: httpx.AsyncClient, session: Session, language: str
) -> None:
    now = utcnow()
    load_demo_data(session, now=now)
    # A youth of the demo with an appointment and a request with its history (granted).
    youth = session.scalars(select(Youth).where(Youth.ase_ref == "DEMO-ASE-0007")).one()
    youth.language = language
    referent_appointment = session.scalars(
        select(Appointment).where(Appointment.youth_id == youth.id)
    ).first()
    assert referent_appointment is not None
    today = now + timedelta(minutes=50)  # today's appointment, on the dashboard
    session.add(
        Appointment(
            youth_id=youth.id,
            staff_id=referent_appointment.staff_id,
            kind=AppointmentKind.COUNTER,
            place=AppointmentPlace.OFFICE,
            address="Espace Paris avenir",
            starts_at=today,
            ends_at=today + timedelta(minutes=30),
        )
    )
    session.commit()
    sign_in_as(client, app, session, youth=youth)
    client.cookies.set("langue", language)
    client.headers["Accept-Language"] = language.replace("_", "-")
    requests = session.scalars(select(AidRequest).where(AidRequest.youth_id == youth.id)).all()
    appointments = session.scalars(
        select(Appointment).where(Appointment.youth_id == youth.id)
    ).all()
    pages = [
        "/mon-espace",
        "/mon-espace/rendez-vous",
        *(f"/mon-espace/rendez-vous/{item.id}" for item in appointments),
        "/mon-espace/demandes",
        *(f"/mon-espace/demandes/{item.id}" for item in requests),
    ]
    dates_seen = 0
    for page in pages:
        response = await client.get(page)
        assert response.status_code == 200, page
        assert f'lang="{i18n.html_lang(language)}"' in response.text, page
        text = text_of(response.text)
        assert dates_without_weekday(text, language) == [], page
        dates_seen += len(written_dates(text, language))
    # Dashboard (the next appointment), list, details, the request's history: many dates.
    assert dates_seen >= 6
    dashboard = text_of((await client.get("/mon-espace")).text)
    with i18n.using_locale(language):
        assert i18n.gettext("Votre prochain rendez-vous") in dashboard
        assert i18n.gettext("Aujourd’hui, %(date)s", date="").strip(" ,،፡") in dashboard
