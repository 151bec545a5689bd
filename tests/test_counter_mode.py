"""Counter mode: a référent acts for a youth who is present and agreed; the youth sees it."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from paris_avenir.aid_requests.catalogue import ensure_catalogue
from paris_avenir.aid_requests.models import AidRequest, RequestStatus
from paris_avenir.audit.models import AuditEvent
from paris_avenir.documents.models import Document, DocumentKind
from paris_avenir.staff.models import StaffRole, StaffUser
from paris_avenir.youths.models import Youth
from tests.factories import PDF_BYTES, assign, create_document, create_staff, create_youth
from tests.helpers import csrf_token, post_form, sign_in_as


@pytest.fixture
def referent(session: Session) -> StaffUser:
    return create_staff(session, StaffRole.REFERENT, full_name="Julien Marchand")


@pytest.fixture
def youth(session: Session, referent: StaffUser) -> Youth:
    ensure_catalogue(session)
    youth = create_youth(session, first_name="Bilal")
    assign(session, youth, referent)
    session.commit()
    return youth


async def test_counter_mode_needs_the_youths_consent(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    sign_in_as(client, app, session, staff=referent)
    refused = await post_form(client, f"/pro/jeunes/{youth.id}/guichet")
    assert refused.status_code == 422 and "présent et d’accord" in refused.text
    closed = await client.get(f"/pro/jeunes/{youth.id}/guichet")
    assert closed.status_code == 303
    response = await post_form(client, f"/pro/jeunes/{youth.id}/guichet", {"accord": "oui"})
    assert response.headers["location"] == f"/pro/jeunes/{youth.id}/guichet"
    assert (await client.get(f"/pro/jeunes/{youth.id}/guichet")).status_code == 200


async def test_a_request_filed_at_the_counter_is_marked_and_seen_by_the_youth(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    document = create_document(session, app.state.document_store, youth, DocumentKind.BANK_DETAILS)
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    await post_form(client, f"/pro/jeunes/{youth.id}/guichet", {"accord": "oui"})
    form = await client.get(f"/pro/jeunes/{youth.id}/guichet/demande?aide=aide_urgence")
    assert "Expliquez en quelques mots" in form.text
    response = await post_form(
        client,
        f"/pro/jeunes/{youth.id}/guichet/demande",
        {
            "aide": "aide_urgence",
            "explanation": "Facture d’électricité impayée.",
            "amount": "120",
            "documents": [str(document.id)],
        },
    )
    assert response.status_code == 303 and "envoyee=" in response.headers["location"]

    request = session.scalars(select(AidRequest).options(selectinload(AidRequest.events))).one()
    assert request.status is RequestStatus.SUBMITTED and request.filed_by_staff_id == referent.id
    assert all(
        event.on_behalf_of_youth and event.actor_staff_id == referent.id for event in request.events
    )
    marked = session.scalars(
        select(AuditEvent.action).where(AuditEvent.on_behalf_of_youth.is_(True))
    ).all()
    assert set(marked) == {"counter.start", "counter.request"}

    client.cookies.clear()
    sign_in_as(client, app, session, youth=youth)
    seen = (await client.get(f"/mon-espace/demandes/{request.id}")).text
    assert "fait par votre référent pour vous" in seen
    accesses = (await client.get("/mon-espace/acces")).text
    assert "a fait une demande pour vous au guichet" in accesses and "Julien Marchand" in accesses


async def test_a_document_added_at_the_counter_lands_in_the_youths_vault(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    sign_in_as(client, app, session, staff=referent)
    await post_form(client, f"/pro/jeunes/{youth.id}/guichet", {"accord": "oui"})
    token = await csrf_token(client)
    response = await client.post(
        f"/pro/jeunes/{youth.id}/guichet/documents",
        data={"csrftoken": token, "type_document": "identite"},
        files={"fichier": ("titre.pdf", PDF_BYTES, "application/pdf")},
    )
    assert response.status_code == 303
    document = session.scalars(select(Document)).one()
    assert document.youth_id == youth.id and document.uploaded_by_staff_id == referent.id
    client.cookies.clear()
    sign_in_as(client, app, session, youth=youth)
    assert "par votre référent, pour vous" in (await client.get("/mon-espace/documents")).text


async def test_counter_mode_ends_and_stays_within_scope(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    sign_in_as(client, app, session, staff=referent)
    await post_form(client, f"/pro/jeunes/{youth.id}/guichet", {"accord": "oui"})
    await post_form(client, f"/pro/jeunes/{youth.id}/guichet/fin")
    assert (await client.get(f"/pro/jeunes/{youth.id}/guichet")).status_code == 303
    stranger = create_staff(session, StaffRole.REFERENT)
    session.commit()
    client.cookies.clear()
    sign_in_as(client, app, session, staff=stranger)
    assert (
        await post_form(client, f"/pro/jeunes/{youth.id}/guichet", {"accord": "oui"})
    ).status_code == 404
