"""Filing a request in a few steps: saved at every step, asked once, tracked to the end."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from paris_avenir.aid_requests import kinds as catalogue
from paris_avenir.aid_requests import service
from paris_avenir.aid_requests.catalogue import ensure_catalogue
from paris_avenir.aid_requests.kinds.base import FieldKind, FormField
from paris_avenir.aid_requests.models import AidCode, AidRequest, AidRequestEvent, RequestStatus
from paris_avenir.db import utcnow
from paris_avenir.documents.models import DocumentKind
from paris_avenir.staff.models import StaffTask, TaskKind
from paris_avenir.youths.models import EmploymentSituation, Youth
from tests.factories import PDF_BYTES, create_aid_request, create_document, create_youth, jpeg_bytes
from tests.helpers import csrf_token, post_form, sign_in_as
from tests.querycount import CountQueries


@pytest.fixture
def youth(app: FastAPI, client: httpx.AsyncClient, session: Session) -> Youth:
    ensure_catalogue(session)
    youth = create_youth(
        session,
        first_name="Oumar",
        employment_situation=EmploymentSituation.TRAINING,
        monthly_income_cents=25000,
        has_family_support=None,
    )
    session.commit()
    sign_in_as(client, app, session, youth=youth)
    return youth


async def start(client: httpx.AsyncClient, aid: str = "allocation") -> str:
    response = await post_form(client, "/mon-espace/demandes", {"aide": aid})
    assert response.status_code == 303
    return str(response.headers["location"])


def shown(response: httpx.Response) -> str:
    """The page's text as read, without its tags (dates sit in <bdi>)."""
    return re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", "", response.text))


def the_request(session: Session) -> AidRequest:
    session.expire_all()
    return session.scalars(
        select(AidRequest)
        .options(selectinload(AidRequest.events), selectinload(AidRequest.documents))
        .order_by(AidRequest.created_at)
        .limit(1)
    ).one()


async def test_a_draft_is_prefilled_from_the_profile(
    client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    location = await start(client)
    assert location.endswith("/etape/1")
    page = await client.get(location)
    assert "Étape 1 sur 3" in page.text
    assert 'value="formation" checked' in page.text
    assert 'value="250"' in page.text
    assert the_request(session).status is RequestStatus.DRAFT
    # Starting again reopens the same draft instead of a second one.
    assert await start(client) == location


async def test_wrong_answers_are_explained_and_the_rest_is_kept(
    client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    location = await start(client)
    response = await post_form(
        client,
        location,
        {"employment_situation": "recherche", "monthly_income": "beaucoup", "action": "continuer"},
    )
    assert response.status_code == 422
    assert "Écrivez un montant en euros" in response.text
    assert 'value="beaucoup"' in response.text and 'aria-invalid="true"' in response.text
    assert "Répondez à cette question." in response.text  # family support unanswered
    answers = the_request(session).form_data
    assert answers["employment_situation"] == "recherche"


async def test_finish_later_keeps_the_draft(
    client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    location = await start(client)
    response = await post_form(
        client, location, {"employment_situation": "recherche", "action": "plus_tard"}
    )
    assert response.headers["location"] == "/mon-espace/demandes?enregistre=1"
    page = await client.get("/mon-espace/demandes")
    assert "Continuer la demande" in page.text
    assert the_request(session).form_data["employment_situation"] == "recherche"


async def test_an_allocation_filed_with_two_documents_of_the_vault(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    identity = create_document(session, app.state.document_store, youth, DocumentKind.IDENTITY)
    bank = create_document(session, app.state.document_store, youth, DocumentKind.BANK_DETAILS)
    session.commit()
    location = await start(client)
    base = location.rsplit("/", 1)[0]
    answers = {
        "employment_situation": "recherche",
        "monthly_income": "250,50",
        "family_support": "non",
        "action": "continuer",
    }
    assert (await post_form(client, base + "/1", answers)).headers["location"] == base + "/2"
    page = await client.get(base + "/2")
    assert (
        f'value="{identity.id}" checked' in page.text and f'value="{bank.id}" checked' in page.text
    )
    response = await post_form(
        client, base + "/2", {"documents": [str(identity.id), str(bank.id)], "action": "continuer"}
    )
    assert response.headers["location"] == base + "/3"
    review = await client.get(base + "/3")
    assert "250,50" in review.text and "Envoyer ma demande" in review.text

    refused = await post_form(client, location.rsplit("/etape", 1)[0] + "/envoyer", {})
    assert refused.status_code == 422 and "Cochez la case" in refused.text
    sent = await post_form(
        client, location.rsplit("/etape", 1)[0] + "/envoyer", {"certifie": "oui"}
    )
    assert sent.status_code == 303
    detail = await client.get(sent.headers["location"])
    assert "Déposée" in detail.text and "Votre demande est envoyée" in detail.text

    request = the_request(session)
    assert request.status is RequestStatus.SUBMITTED and request.submitted_at is not None
    assert {document.id for document in request.documents} == {identity.id, bank.id}
    history = [
        (event.from_status, event.to_status, event.actor_is_youth) for event in request.events
    ]
    assert history == [
        (None, RequestStatus.DRAFT, True),
        (RequestStatus.DRAFT, RequestStatus.SUBMITTED, True),
    ]
    session.refresh(youth)
    assert youth.monthly_income_cents == 25050 and youth.has_family_support is False
    assert youth.employment_situation is EmploymentSituation.JOB_SEEKING


async def test_a_request_without_its_documents_cannot_be_sent(
    client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    location = await start(client)
    base = location.rsplit("/", 1)[0]
    await post_form(
        client,
        base + "/1",
        {
            "employment_situation": "recherche",
            "monthly_income": "0",
            "family_support": "non",
            "action": "continuer",
        },
    )
    review = await client.get(base + "/3")
    assert "Avant d’envoyer, il manque" in review.text and "Pièce d’identité" in review.text
    sent = await post_form(client, base.rsplit("/etape", 1)[0] + "/envoyer", {"certifie": "oui"})
    assert sent.status_code == 422
    assert the_request(session).status is RequestStatus.DRAFT


async def test_the_next_request_asks_nothing_twice(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    create_aid_request(
        session,
        youth,
        aid_code=AidCode.BOURSE,
        status=RequestStatus.WITHDRAWN,
        form_data={"school": "Université Paris Cité", "programme": "Licence de droit"},
    )
    session.commit()
    page = await client.get(await start(client, "bourse"))
    assert 'value="Université Paris Cité"' in page.text and 'value="Licence de droit"' in page.text


async def test_a_youth_withdraws_until_a_decision(
    client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    request = create_aid_request(
        session, youth, aid_code=AidCode.AIDE_URGENCE, status=RequestStatus.SUBMITTED
    )
    session.commit()
    response = await post_form(
        client,
        f"/mon-espace/demandes/{request.id}/retirer",
        {"raison": "J'ai trouvé une solution."},
    )
    assert response.status_code == 303
    request = the_request(session)
    assert request.status is RequestStatus.WITHDRAWN
    assert request.events[-1].reason == "J'ai trouvé une solution."

    granted = create_aid_request(
        session, youth, aid_code=AidCode.NAVIGO, status=RequestStatus.GRANTED
    )
    session.commit()
    refused = await post_form(client, f"/mon-espace/demandes/{granted.id}/retirer")
    # The youth reads the real reason, not a generic "Une erreur est arrivée".
    assert refused.status_code == 409
    assert "Ce n’est plus possible" in refused.text
    assert "Une décision a été prise : cette demande ne peut plus être retirée." in refused.text
    assert "Une erreur est arrivée" not in refused.text
    session.expire_all()
    assert session.get_one(AidRequest, granted.id).status is RequestStatus.GRANTED


async def test_missing_documents_go_back_to_the_referent(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    request = create_aid_request(
        session,
        youth,
        aid_code=AidCode.NAVIGO,
        status=RequestStatus.MISSING_DOCUMENTS,
        decision_reason="Il manque une photo récente.",
    )
    photo = create_document(session, app.state.document_store, youth, DocumentKind.PHOTO)
    session.commit()
    page = await client.get(f"/mon-espace/demandes/{request.id}")
    assert "Il manque une photo récente." in page.text
    assert f'href="/mon-espace/demandes/{request.id}/pieces"' in page.text
    home = await client.get("/mon-espace")
    assert f'href="/mon-espace/demandes/{request.id}/pieces"' in home.text

    step = await client.get(f"/mon-espace/demandes/{request.id}/pieces")
    assert "Il manque une photo récente." in step.text and "Envoyer à mon référent" in step.text
    assert 'name="fichier_photo"' in step.text and 'capture="environment"' in step.text
    nothing = await post_form(client, f"/mon-espace/demandes/{request.id}/documents-ajoutes")
    assert nothing.status_code == 422 and "Ajoutez le document demandé" in nothing.text
    assert the_request(session).status is RequestStatus.MISSING_DOCUMENTS

    response = await post_form(
        client,
        f"/mon-espace/demandes/{request.id}/documents-ajoutes",
        {"documents": [str(photo.id)]},
    )
    assert response.status_code == 303
    request = the_request(session)
    assert request.status is RequestStatus.UNDER_REVIEW
    assert [document.id for document in request.documents] == [photo.id]
    # Once sent, the page leads back to the request: nothing more is asked.
    again = await client.get(f"/mon-espace/demandes/{request.id}/pieces")
    assert again.status_code == 303


async def test_the_missing_document_is_added_on_the_page_the_referent_points_to(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    request = create_aid_request(
        session,
        youth,
        aid_code=AidCode.ALLOCATION,
        status=RequestStatus.MISSING_DOCUMENTS,
        decision_reason="Il manque votre RIB.",
    )
    session.commit()
    token = await csrf_token(client)
    response = await client.post(
        f"/mon-espace/demandes/{request.id}/documents-ajoutes",
        data={"csrftoken": token},
        files={"fichier_rib": ("rib.pdf", PDF_BYTES, "application/pdf")},
    )
    assert response.status_code == 303
    assert response.headers["location"].endswith("?documents=1")
    request = the_request(session)
    assert request.status is RequestStatus.UNDER_REVIEW
    assert [document.kind for document in request.documents] == [DocumentKind.BANK_DETAILS]
    task = session.scalars(select(StaffTask).where(StaffTask.aid_request_id == request.id)).one()
    assert task.kind is TaskKind.DOCUMENTS_RECEIVED
    detail = await client.get(response.headers["location"])
    assert "Vos documents sont envoyés" in detail.text and "rib.pdf" in detail.text


async def test_documents_are_added_inside_the_documents_step(
    client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    location = await start(client)
    base = location.rsplit("/", 1)[0]
    page = await client.get(base + "/2")
    assert 'enctype="multipart/form-data"' in page.text
    assert 'name="fichier_identite"' in page.text and 'name="fichier_rib"' in page.text
    assert 'accept="image/*,application/pdf"' in page.text
    # The expiry date of the identity card: three boxes, never the browser's date widget.
    assert 'name="expire_identite_jour"' in page.text and 'type="date"' not in page.text
    token = await csrf_token(client)
    response = await client.post(
        base + "/2",
        data={
            "csrftoken": token,
            "expire_identite_jour": "31",
            "expire_identite_mois": "12",
            "expire_identite_annee": "2030",
            "action": "continuer",
        },
        files=[
            ("fichier_identite", ("carte.jpg", jpeg_bytes(), "image/jpeg")),
            ("fichier_rib", ("rib.pdf", PDF_BYTES, "application/pdf")),
            ("fichier_ressources", ("", b"", "application/octet-stream")),
        ],
    )
    assert response.status_code == 303 and response.headers["location"] == base + "/3"
    request = the_request(session)
    kinds = {document.kind: document for document in request.documents}
    assert set(kinds) == {DocumentKind.IDENTITY, DocumentKind.BANK_DETAILS}
    assert kinds[DocumentKind.IDENTITY].expires_on == date(2030, 12, 31)
    review = await client.get(base + "/3")
    assert "carte.jpg" in review.text and "rib.pdf" in review.text
    # They stay in "Mes documents" for the next request.
    vault = shown(await client.get("/mon-espace/documents"))
    assert "carte.jpg" in vault and "Valable jusqu’au mardi 31 décembre 2030" in vault


async def test_a_refused_file_or_a_wrong_date_is_explained_on_its_row(
    client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    location = await start(client)
    base = location.rsplit("/", 1)[0]
    token = await csrf_token(client)
    response = await client.post(
        base + "/2",
        data={
            "csrftoken": token,
            "expire_identite_jour": "31",
            "expire_identite_mois": "02",
            "expire_identite_annee": "2030",
            "action": "continuer",
        },
        files=[
            ("fichier_identite", ("carte.jpg", jpeg_bytes(), "image/jpeg")),
            ("fichier_rib", ("rib.exe", b"MZ not a document", "application/octet-stream")),
        ],
    )
    assert response.status_code == 422
    assert "Écrivez une date qui existe" in response.text
    assert 'id="fichier_rib-erreur"' in response.text and 'aria-invalid="true"' in response.text
    # What was typed stays, to correct it.
    assert 'name="expire_identite_jour"' in response.text
    assert (
        'id="expire_identite_jour" name="expire_identite_jour" type="text" inputmode="numeric"'
        in response.text
    )
    assert 'maxlength="2" autocomplete="off" value="02"' in response.text
    assert the_request(session).documents == []


async def test_a_date_question_is_typed_in_three_boxes(
    client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    field = FormField("start", "Quand commence votre bail ?", FieldKind.DATE)
    kind = catalogue.kind(AidCode.GARANTIE_FSL)
    kind.questions = [field]
    request = create_aid_request(
        session, youth, aid_code=AidCode.GARANTIE_FSL, form_data={}, status=RequestStatus.DRAFT
    )
    session.flush()
    assert (
        service.save_answers(
            request, kind, {"start_jour": "5", "start_mois": "1", "start_annee": "2027"}
        )
        == {}
    )
    assert request.form_data["start"] == "2027-01-05"
    errors = service.save_answers(
        request, kind, {"start_jour": "30", "start_mois": "2", "start_annee": "2027"}
    )
    assert "Écrivez une date qui existe" in errors["start"]
    assert request.form_data["start"] == "30/2/2027"


async def test_a_granted_allocation_says_how_much_how_often_and_until_when(
    client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    decided = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    granted = create_aid_request(
        session,
        youth,
        aid_code=AidCode.ALLOCATION,
        status=RequestStatus.GRANTED,
        granted_amount_cents=65169,
        decided_at=decided,
        renewal_due_on=datetime(2027, 6, 1, 10, 0, tzinfo=UTC),
        decision_reason="Premier versement le 5.",
    )
    session.commit()
    page = shown(await client.get(f"/mon-espace/demandes/{granted.id}"))
    assert "651,69\u00a0€ par mois" in page
    assert "Du mardi 1 décembre 2026 au mardi 1 juin 2027" in page
    assert "versé chaque mois sur le compte de votre RIB" in page
    assert "faites une nouvelle demande à partir du dimanche 2 mai 2027" in page
    assert "Premier versement le 5." in page

    home = shown(await client.get("/mon-espace"))
    assert "Allocation Paris avenir : accordée." in home
    assert (
        "651,69\u00a0€ par mois" in home and "du mardi 1 décembre 2026 au mardi 1 juin 2027" in home
    )
    assert "Tout est à jour" not in home


async def test_an_allocation_coming_to_its_end_is_prompted_for_renewal(
    client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    create_aid_request(
        session,
        youth,
        aid_code=AidCode.ALLOCATION,
        status=RequestStatus.PAID,
        renewal_due_on=utcnow() + timedelta(days=12),
    )
    session.commit()
    assert "pensez à la renouveler" in (await client.get("/mon-espace/demandes")).text
    assert "pensez à la renouveler" in (await client.get("/mon-espace")).text


def test_transitions_follow_the_life_cycle(session: Session) -> None:
    youth = create_youth(session)
    request = create_aid_request(
        session, youth, aid_code=AidCode.ALLOCATION, status=RequestStatus.REFUSED
    )
    session.flush()
    with pytest.raises(service.RequestError):
        service.record_transition(session, request, RequestStatus.GRANTED)
    assert session.scalars(select(AidRequestEvent)).all() == []


async def test_pages_run_the_same_number_of_queries_whatever_the_amount(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    youth: Youth,
    count_queries: CountQueries,
) -> None:
    async def queries(path: str) -> int:
        with count_queries() as counter:
            assert (await client.get(path)).status_code == 200
        return counter.count

    def add(count: int) -> None:
        for _ in range(count):
            create_aid_request(
                session, youth, aid_code=AidCode.AIDE_URGENCE, status=RequestStatus.SUBMITTED
            )
            create_document(session, app.state.document_store, youth, DocumentKind.OTHER)
        session.commit()

    add(2)
    few = {
        path: await queries(path)
        for path in (
            "/mon-espace",
            "/mon-espace/demandes",
            "/mon-espace/documents",
            "/mon-espace/droits",
        )
    }
    add(15)
    many = {path: await queries(path) for path in few}
    assert many == few
    assert max(few.values()) <= 12
