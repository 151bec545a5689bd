"""Issue 15: "Mes données" is a page a youth can read in their language (the JSON stays the
download), and a sign-in older than 15 minutes is confirmed with a code sent at once to the
youth's own number, on a page that says why."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests.models import AidCode, RequestStatus
from paris_avenir.auth.models import UserSession
from paris_avenir.config import Settings
from paris_avenir.messaging import service as messaging
from paris_avenir.staff.models import StaffUser
from paris_avenir.web import i18n
from paris_avenir.youths.models import Youth
from tests.factories import assign, create_aid_request, create_staff, create_youth
from tests.helpers import code_in, last_sms, post_form, sign_in_as

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@pytest.fixture
def referent(session: Session) -> StaffUser:
    return create_staff(session, full_name="Inès Martin")


@pytest.fixture
def youth(app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser) -> Youth:
    youth = create_youth(
        session,
        first_name="Lucas",
        phone="+33639980077",
        email="lucas.donnees@example.org",
        birth_date=date(2005, 3, 14),
        monthly_income_cents=65169,
        has_family_support=False,
        activated_at=datetime(2026, 1, 5, 9, 30, tzinfo=UTC),
    )
    assign(session, youth, referent)
    create_aid_request(
        session,
        youth,
        aid_code=AidCode.NAVIGO,
        status=RequestStatus.GRANTED,
        granted_amount_cents=4215,
        submitted_at=datetime(2026, 2, 2, 10, 0, tzinfo=UTC),
    )
    thread = messaging.general_thread(session, youth.id)
    messaging.post_message(session, thread, body="Bonjour Lucas", author_staff_id=referent.id)
    session.commit()
    sign_in_as(client, app, session, youth=youth)
    return youth


def body_text(page: httpx.Response) -> str:
    main = page.text.split("<main", 1)[1]
    return re.sub(r"<[^>]+>", " ", main)


def age_the_sign_in(session: Session, youth: Youth) -> None:
    for record in session.scalars(select(UserSession).where(UserSession.youth_id == youth.id)):
        record.authenticated_at -= timedelta(minutes=16)
    session.commit()


@pytest.mark.parametrize("language", ["fr", "ar"])
async def test_my_data_reads_as_words_dates_and_euros_in_my_language(
    client: httpx.AsyncClient, youth: Youth, referent: StaffUser, language: str
) -> None:
    client.cookies.set("langue", language)
    page = await client.get("/mon-espace/donnees")
    assert page.status_code == 200
    text = body_text(page)
    with i18n.using_locale(language):
        expected = [
            i18n.gettext("Mon profil"),
            i18n.gettext("Revenus par mois"),
            i18n.gettext("Non"),  # no family support, in words
            i18n.gettext("Accordée"),
            i18n.gettext("Mes rendez-vous"),
        ]
    for words in expected:
        assert words in text, words
    if language == "fr":
        assert "14 mars 2005" in text
        assert "651,69" in text and "€" in text and "42,15" in text
        assert "5 janvier 2026 à 10:30" in text  # Paris time
    else:
        assert "مارس" in text  # the month in Arabic, by Babel
    assert "Bonjour Lucas" in text and referent.full_name in text
    for raw in ("True", "False", "None", "centimes", "navigo", "granted", "accordee", "sms"):
        assert raw not in text, raw
    assert not ISO_DATE.search(text), ISO_DATE.search(text)
    assert "&lt;bdi" not in page.text  # dates inside sentences stay markup, not text
    main = page.text.split("<main", 1)[1]
    if language != "fr":
        assert 'lang="fr"' not in main  # every label is translated
    # The machine-readable file keeps field names, codes and ISO dates.
    data = json.loads((await client.get("/mon-espace/donnees.json")).content)
    assert data["profile"]["birth_date"] == "2005-03-14"
    assert data["profile"]["monthly_income_cents"] == 65169
    assert data["requests"][0]["aid"] == "navigo"


async def test_another_youths_session_shows_only_their_own_data(
    client: httpx.AsyncClient, app: FastAPI, session: Session, youth: Youth
) -> None:
    other = create_youth(session, first_name="Awa")
    session.commit()
    sign_in_as(client, app, session, youth=other)
    for path in ("/mon-espace/donnees", "/mon-espace/donnees.json"):
        response = await client.get(path)
        assert response.status_code == 200
        assert "Lucas" not in response.text and "Bonjour Lucas" not in response.text
        assert youth.ase_ref not in response.text and other.ase_ref in response.text


async def test_an_old_sign_in_gets_a_code_at_once_on_a_page_that_says_why(
    client: httpx.AsyncClient, session: Session, settings: Settings, youth: Youth
) -> None:
    age_the_sign_in(session, youth)
    response = await client.get("/mon-espace/donnees")
    assert response.status_code == 303
    assert response.headers["location"] == "/mon-espace/confirmer?suite=/mon-espace/donnees"
    page = await client.get(response.headers["location"])
    assert page.status_code == 200
    assert "cette page demande un nouveau code après 15 minutes de connexion" in page.text
    sms = last_sms(settings)
    assert sms["to"] == youth.phone  # the number on file: nothing to type again
    assert "•" in page.text and "77" in page.text  # masked number
    # Coming back to the page does not send a second code.
    again = await client.get("/mon-espace/confirmer?suite=/mon-espace/donnees")
    assert again.status_code == 200 and last_sms(settings) == sms
    signed = await post_form(
        client, "/connexion/code", {"code": code_in(sms["text"]), "suite": "/mon-espace/donnees"}
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/mon-espace/donnees"
    data = await client.get("/mon-espace/donnees")
    assert data.status_code == 200 and "Bonjour Lucas" in data.text
    # Once confirmed, the page goes straight on.
    done = await client.get("/mon-espace/confirmer?suite=/mon-espace/donnees")
    assert done.headers["location"] == "/mon-espace/donnees"


async def test_a_new_code_on_request_and_never_to_someone_elses_attempt(
    client: httpx.AsyncClient, app: FastAPI, session: Session, settings: Settings, youth: Youth
) -> None:
    age_the_sign_in(session, youth)
    await client.get("/mon-espace/confirmer?suite=/mon-espace/donnees")
    first = last_sms(settings)
    resent = await post_form(client, "/mon-espace/confirmer", {"suite": "/mon-espace/donnees"})
    assert resent.status_code == 200
    second = last_sms(settings)
    assert second["to"] == youth.phone and code_in(second["text"]) != code_in(first["text"])
    # Another youth, in the same browser with Lucas's attempt cookie, gets their own code.
    other = create_youth(session, phone="+33639980088")
    session.commit()
    sign_in_as(client, app, session, youth=other)
    age_the_sign_in(session, other)
    await client.get("/mon-espace/confirmer?suite=/mon-espace/donnees")
    assert last_sms(settings)["to"] == "+33639980088"
    # And a path to another site is never followed.
    outside = await client.get("/mon-espace/confirmer?suite=//evil.example/")
    assert 'name="suite" value="/mon-espace"' in outside.text
