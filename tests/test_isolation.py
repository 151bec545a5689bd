"""A youth never reaches another youth's request, document, message or data: every youth
route taking an id, listed from the application itself, is called with someone else's."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests.catalogue import ensure_catalogue
from paris_avenir.aid_requests.models import AidCode, AidRequestEvent, RequestStatus
from paris_avenir.db import utcnow
from paris_avenir.documents.models import Document, DocumentKind
from paris_avenir.messaging import service as messaging
from paris_avenir.messaging.models import Message
from tests.factories import (
    create_aid_request,
    create_appointment,
    create_document,
    create_staff,
    create_youth,
)
from tests.helpers import post_form, sign_in_as

ID_PARAMETER = re.compile(r"\{(\w+_id)\}")


async def test_no_youth_route_reaches_another_youths_data(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    ensure_catalogue(session)
    me, other = create_youth(session, first_name="Moi"), create_youth(session, first_name="Autre")
    their_request = create_aid_request(
        session,
        other,
        aid_code=AidCode.ALLOCATION,
        status=RequestStatus.DRAFT,
        form_data={"employment_situation": "recherche"},
    )
    their_document = create_document(
        session, app.state.document_store, other, DocumentKind.IDENTITY
    )
    their_appointment = create_appointment(
        session, other, create_staff(session), utcnow() + timedelta(days=5)
    )
    their_thread = messaging.general_thread(session, other.id)
    messaging.post_message(session, their_thread, body="Secret", author_staff_id=None)
    session.commit()
    ids = {
        "request_id": str(their_request.id),
        "document_id": str(their_document.id),
        "thread_id": str(their_thread.id),
        "appointment_id": str(their_appointment.id),
    }

    routes = [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/mon-espace") and ID_PARAMETER.search(path)
        for method in operations
    ]
    assert len(routes) >= 10
    sign_in_as(client, app, session, youth=me)
    before = (
        session.scalar(select(func.count()).select_from(AidRequestEvent)),
        session.scalar(select(func.count()).select_from(Message)),
        session.scalar(select(func.count()).select_from(Document)),
    )
    for method, path in routes:
        url = ID_PARAMETER.sub(lambda match: ids[match.group(1)], path).replace("{step}", "1")
        response = await (
            client.get(url)
            if method == "GET"
            else post_form(client, url, {"message": "x", "certifie": "oui", "aide": "allocation"})
        )
        assert response.status_code == 404, f"{method} {url}: {response.status_code}"
    after = (
        session.scalar(select(func.count()).select_from(AidRequestEvent)),
        session.scalar(select(func.count()).select_from(Message)),
        session.scalar(select(func.count()).select_from(Document)),
    )
    assert after == before
    session.refresh(their_request)
    assert their_request.status is RequestStatus.DRAFT

    export = (await client.get("/mon-espace/donnees.json")).text
    assert "Autre" not in export and "Secret" not in export
