"""A decision on a request is told to the youth once, in words that say which decision:
the tester's two identical "du nouveau" SMS came from taking the request on (no decision)
and from the grant, each sending the same text."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests.catalogue import ensure_catalogue
from paris_avenir.aid_requests.models import AidCode, AidRequest, RequestStatus
from paris_avenir.db import utcnow
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.staff.models import StaffRole, StaffUser, Team
from paris_avenir.youths.models import Youth
from tests.factories import assign, create_aid_request, create_staff, create_youth
from tests.helpers import post_form, sign_in_as


@pytest.fixture
def referent(session: Session) -> StaffUser:
    team = Team(name="Est")
    session.add(team)
    session.flush()
    return create_staff(session, StaffRole.REFERENT, team_id=team.id, full_name="Awa Diallo")


@pytest.fixture
def youth(session: Session, referent: StaffUser) -> Youth:
    ensure_catalogue(session)
    youth = create_youth(session, first_name="Binta", phone="+33639980123")
    assign(session, youth, referent)
    session.commit()
    return youth


def filed(session: Session, youth: Youth) -> AidRequest:
    request = create_aid_request(
        session,
        youth,
        aid_code=AidCode.ALLOCATION,
        status=RequestStatus.SUBMITTED,
        submitted_at=utcnow() - timedelta(days=3),
        form_data={"monthly_income": "0"},
    )
    session.commit()
    return request


def sms_to(session: Session, youth: Youth) -> list[OutboxMessage]:
    session.expire_all()
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.youth_id == youth.id, OutboxMessage.channel == "sms")
            .order_by(OutboxMessage.created_at)
        )
    )


async def test_taking_on_then_granting_sends_exactly_one_sms_saying_it_is_granted(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    request = filed(session, youth)
    sign_in_as(client, app, session, staff=referent)
    assert (await post_form(client, f"/pro/demandes/{request.id}/prendre")).status_code == 303
    assert sms_to(session, youth) == []  # taken on: the youth reads it in their space
    granted = await post_form(
        client, f"/pro/demandes/{request.id}/accorder", {"montant": "651,69", "texte": ""}
    )
    assert granted.status_code == 303
    sent = sms_to(session, youth)
    assert len(sent) == 1
    assert sent[0].body_text is not None and "acceptée" in sent[0].body_text
    assert f"/mon-espace/demandes/{request.id}" in sent[0].body_text
    assert "du nouveau" not in sent[0].body_text


async def test_a_request_for_documents_sends_one_sms_leading_to_where_it_is_added(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    request = filed(session, youth)
    sign_in_as(client, app, session, staff=referent)
    await post_form(client, f"/pro/demandes/{request.id}/pieces", {"texte": "Il manque le RIB."})
    sent = sms_to(session, youth)
    assert len(sent) == 1 and sent[0].body_text is not None
    assert sent[0].body_text.rstrip().endswith("/mon-espace/pieces")
    assert "il manque un document" in sent[0].body_text
    # The short link opens the request on the step where the document is added.
    client.cookies.clear()
    sign_in_as(client, app, session, youth=youth)
    opened = await client.get("/mon-espace/pieces", follow_redirects=True)
    assert str(opened.url).endswith(f"/mon-espace/demandes/{request.id}/pieces")
    assert "Il manque le RIB." in opened.text and 'name="fichier_rib"' in opened.text


async def test_a_refusal_sends_one_sms(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    request = filed(session, youth)
    sign_in_as(client, app, session, staff=referent)
    await post_form(client, f"/pro/demandes/{request.id}/prendre")
    refused = await post_form(
        client,
        f"/pro/demandes/{request.id}/refuser",
        {"texte": "Vos revenus dépassent le plafond de l’allocation."},
    )
    assert refused.status_code == 303
    sent = sms_to(session, youth)
    assert len(sent) == 1 and sent[0].body_text is not None
    assert "a répondu à votre demande" in sent[0].body_text
