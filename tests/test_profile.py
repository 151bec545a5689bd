"""Profile, preferences, a new phone proven by a code, my data, leaving."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests.models import AidCode, RequestStatus
from paris_avenir.audit.models import AuditEvent
from paris_avenir.auth.models import UserSession
from paris_avenir.config import Settings
from paris_avenir.messaging import service as messaging
from paris_avenir.staff.models import StaffTask, StaffUser, TaskKind
from paris_avenir.youths.models import Channel, Youth
from tests.factories import assign, create_aid_request, create_staff, create_youth
from tests.helpers import code_in, last_sms, post_form, sign_in_as


@pytest.fixture
def referent(session: Session) -> StaffUser:
    return create_staff(session)


@pytest.fixture
def youth(app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser) -> Youth:
    youth = create_youth(
        session, first_name="Lucas", phone="+33639980055", email="lucas@example.org"
    )
    assign(session, youth, referent)
    session.commit()
    sign_in_as(client, app, session, youth=youth)
    return youth


def age_the_sign_in(session: Session, youth: Youth) -> None:
    for record in session.scalars(select(UserSession).where(UserSession.youth_id == youth.id)):
        record.authenticated_at -= timedelta(hours=1)
    session.commit()


async def test_preferences_are_saved(
    client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    response = await post_form(
        client, "/mon-espace/profil", {"langue": "ar", "canal": "email", "pas_de_relance": "oui"}
    )
    assert response.status_code == 303
    assert response.cookies.get("langue") == "ar"
    session.refresh(youth)
    assert (youth.language, youth.preferred_channel) == ("ar", Channel.EMAIL)
    assert youth.outreach_opted_out_at is not None
    await post_form(client, "/mon-espace/profil", {"langue": "ar", "canal": "email"})
    session.refresh(youth)
    assert youth.outreach_opted_out_at is None


async def test_a_new_number_is_used_only_once_proven(
    client: httpx.AsyncClient, session: Session, settings: Settings, youth: Youth
) -> None:
    response = await post_form(client, "/mon-espace/profil/contact", {"nouveau": "06 39 98 00 66"})
    assert response.status_code == 200 and "Entrez le code reçu" in response.text
    sms = last_sms(settings)
    assert sms["to"] == "+33639980066"  # the code goes to the new number
    session.refresh(youth)
    assert youth.phone == "+33639980055"  # nothing changes yet
    wrong = await post_form(client, "/mon-espace/profil/contact/code", {"code": "000000"})
    assert wrong.status_code == 422 and "pas le bon" in wrong.text
    right = await post_form(
        client, "/mon-espace/profil/contact/code", {"code": code_in(sms["text"])}
    )
    assert right.status_code == 303
    session.refresh(youth)
    assert youth.phone == "+33639980066"


async def test_changing_a_number_needs_a_recent_sign_in(
    client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    age_the_sign_in(session, youth)
    response = await post_form(client, "/mon-espace/profil/contact", {"nouveau": "06 39 98 00 66"})
    assert response.status_code == 303
    assert response.headers["location"] == "/mon-espace/confirmer?suite=/mon-espace/profil"


async def test_my_data_in_json_and_as_a_page(
    client: httpx.AsyncClient, session: Session, youth: Youth, referent: StaffUser
) -> None:
    create_aid_request(session, youth, aid_code=AidCode.NAVIGO, status=RequestStatus.SUBMITTED)
    thread = messaging.general_thread(session, youth.id)
    messaging.post_message(session, thread, body="Bonjour Lucas", author_staff_id=referent.id)
    session.commit()
    response = await client.get("/mon-espace/donnees.json")
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment;")
    data = json.loads(response.content)
    assert data["profile"]["first_name"] == "Lucas"
    assert data["requests"][0]["aid"] == "navigo"
    assert data["messages"][0]["messages"][0]["text"] == "Bonjour Lucas"
    assert data["referents"][0]["name"] == referent.full_name
    page = await client.get("/mon-espace/donnees")
    assert "Bonjour Lucas" in page.text and "Navigo" in page.text
    exports = session.scalars(
        select(AuditEvent.detail).where(AuditEvent.action == "youth.export")
    ).all()
    assert exports == [{"format": "json"}, {"format": "page"}]


async def test_my_data_needs_a_recent_sign_in(
    client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    age_the_sign_in(session, youth)
    assert (await client.get("/mon-espace/donnees.json")).status_code == 303


async def test_asking_to_delete_the_account_reaches_the_referent(
    client: httpx.AsyncClient, session: Session, youth: Youth, referent: StaffUser
) -> None:
    refused = await post_form(client, "/mon-espace/suppression")
    assert refused.status_code == 422
    response = await post_form(client, "/mon-espace/suppression", {"confirme": "oui"})
    assert response.status_code == 303
    session.refresh(youth)
    assert youth.deletion_requested_at is not None
    task = session.scalars(select(StaffTask)).one()
    assert (task.kind, task.assignee_id) == (TaskKind.DELETION_REQUEST, referent.id)
    assert (
        "Votre demande de suppression est enregistrée"
        in (await client.get("/mon-espace/suppression")).text
    )
    # The youth's data includes what was handed over to the team about them.
    exported = json.loads((await client.get("/mon-espace/donnees.json")).content)
    assert [item["kind"] for item in exported["work_by_the_team"]] == ["suppression_compte"]
