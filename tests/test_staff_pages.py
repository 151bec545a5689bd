"""Issue 15 (staff side): words instead of codes, a home per role, a confirmation before
granting against a rule, documents previewed in place, counter mode that leaves nothing
half done, SMS texts with their default shown, and the youth's access history grouped."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests import service as requests_service
from paris_avenir.aid_requests.catalogue import ensure_catalogue
from paris_avenir.aid_requests.models import AidCode, AidRequest, RequestStatus
from paris_avenir.audit import service as audit
from paris_avenir.audit.models import AuditEvent
from paris_avenir.backoffice import labels
from paris_avenir.db import utcnow
from paris_avenir.documents.models import DocumentKind
from paris_avenir.outreach.models import OutreachAttempt, OutreachReason
from paris_avenir.staff.models import StaffRole, StaffUser, Team
from paris_avenir.youths.models import Channel, Youth
from tests.factories import (
    PDF_BYTES,
    assign,
    create_aid_request,
    create_document,
    create_staff,
    create_youth,
)
from tests.helpers import post_form, sign_in_as


@pytest.fixture
def team(session: Session) -> Team:
    team = Team(name="Équipe des mots")
    session.add(team)
    session.flush()
    return team


@pytest.fixture
def referent(session: Session, team: Team) -> StaffUser:
    return create_staff(session, StaffRole.REFERENT, full_name="Awa Diallo", team_id=team.id)


@pytest.fixture
def youth(session: Session, referent: StaffUser) -> Youth:
    ensure_catalogue(session)
    youth = create_youth(session, first_name="Bilal")  # 21 years old: no free Navigo pass
    assign(session, youth, referent)
    session.commit()
    return youth


def _text(html: str) -> str:
    """What a person reads: no tags, no scripts, ordinary spaces."""
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", html)
    return re.sub(r"[\s\u202f\u00a0]+", " ", text)


def _filed(session: Session, youth: Youth, code: AidCode, **values: object) -> AidRequest:
    request = create_aid_request(
        session,
        youth,
        aid_code=code,
        status=RequestStatus.UNDER_REVIEW,
        submitted_at=utcnow() - timedelta(days=2),
        **values,
    )
    session.commit()
    return request


# --- One label function ----------------------------------------------------------------


def test_every_code_of_every_enum_has_french_words() -> None:
    for enum_class, mapping in labels.MAPPINGS.items():
        for member in enum_class:
            assert member in mapping, f"{enum_class.__name__}.{member.name} has no words"
            assert labels.label(member).strip(), member
    assert labels.label(AidCode.NAVIGO) == "Passe Navigo gratuit"
    assert labels.label(None) == "—"


async def test_the_instruction_page_shows_answers_in_words(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    request = _filed(
        session,
        youth,
        AidCode.ALLOCATION,
        form_data={
            "employment_situation": "cdi",
            "family_support": "non",
            "monthly_income": "350,50",
        },
    )
    sign_in_as(client, app, session, staff=referent)
    page = _text((await client.get(f"/pro/demandes/{request.id}")).text)
    assert " cdi " not in page and " non " not in page
    assert "CDI" in page and "Non" in page and "350,50 €" in page


async def test_aid_parameters_and_agenda_words(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    ensure_catalogue(session)
    admin = create_staff(session, StaffRole.ADMIN)
    session.commit()
    sign_in_as(client, app, session, staff=admin)
    page = _text((await client.get("/pro/admin/aides")).text)
    assert "Revenus mensuels maximum (euros)" in page and "Âge minimum (ans)" in page
    assert "max_monthly_income" not in page and "min_age" not in page


# --- A home per role ----------------------------------------------------------------------


async def test_each_role_lands_on_its_own_home(
    app: FastAPI, client: httpx.AsyncClient, session: Session, team: Team, youth: Youth
) -> None:
    admin = create_staff(session, StaffRole.ADMIN, full_name="Nadia Admin")
    psychologist = create_staff(session, StaffRole.PSYCHOLOGIST)
    supervisor = create_staff(session, StaffRole.SUPERVISOR, team_id=team.id)
    _filed(session, youth, AidCode.AIDE_URGENCE)
    audit.record(session, "admin.sms_template", actor_staff_id=admin.id)
    session.commit()

    sign_in_as(client, app, session, staff=admin)
    home = await client.get("/pro")
    assert home.status_code == 303 and home.headers["location"] == "/pro/admin"
    page = _text((await client.get("/pro/admin")).text)
    assert "Réglages" in page and "Montants, âges et ouverture de chaque aide" in page
    assert "Nadia Admin a changé un texte de SMS" in page
    assert "0 jeunes" not in page

    client.cookies.clear()
    sign_in_as(client, app, session, staff=psychologist)
    home = await client.get("/pro")
    assert home.status_code == 303 and home.headers["location"] == "/pro/agenda?vue=jour"

    client.cookies.clear()
    sign_in_as(client, app, session, staff=supervisor)
    page = _text((await client.get("/pro")).text)
    assert "Mon équipe et les demandes" in page and "Awa Diallo" in page
    assert "Bilal" in page and "Aide d’urgence, En cours d’examen" in page  # the queue


async def test_only_an_admin_opens_the_admin_home(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser
) -> None:
    sign_in_as(client, app, session, staff=referent)
    assert (await client.get("/pro/admin")).status_code == 403
    client.cookies.clear()
    assert (await client.get("/pro/admin")).status_code in {303, 401}


# --- Granting against a rule --------------------------------------------------------------


async def test_a_grant_against_a_failed_rule_asks_for_a_confirmation(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    navigo = _filed(session, youth, AidCode.NAVIGO)  # Bilal is 21: the age rule fails
    sign_in_as(client, app, session, staff=referent)
    page = _text((await client.get(f"/pro/demandes/{navigo.id}")).text)
    assert "1 condition n’est pas remplie : il faudra confirmer." in page

    asked = await post_form(client, f"/pro/demandes/{navigo.id}/accorder", {"texte": "Bien."})
    assert asked.status_code == 409
    text = _text(asked.text)
    assert "Une règle n’est pas remplie : confirmer l’accord ?" in text
    assert "J’ai vérifié : l’aide est accordée malgré cette règle." in text
    assert 'name="malgre_regle"' in asked.text and 'value="Bien."' in asked.text
    session.expire_all()
    assert session.get_one(AidRequest, navigo.id).status is RequestStatus.UNDER_REVIEW

    confirmed = await post_form(
        client, f"/pro/demandes/{navigo.id}/accorder", {"texte": "Bien.", "malgre_regle": "oui"}
    )
    assert confirmed.status_code == 303
    session.expire_all()
    assert session.get_one(AidRequest, navigo.id).status is RequestStatus.GRANTED


async def test_a_grant_with_every_rule_met_needs_no_confirmation(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    urgent = _filed(session, youth, AidCode.AIDE_URGENCE)
    sign_in_as(client, app, session, staff=referent)
    page = _text((await client.get(f"/pro/demandes/{urgent.id}")).text)
    assert "il faudra confirmer" not in page
    done = await post_form(client, f"/pro/demandes/{urgent.id}/accorder", {"montant": "100"})
    assert done.status_code == 303


# --- Documents previewed in place ---------------------------------------------------------


async def test_documents_are_previewed_on_the_instruction_page(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    document = create_document(session, app.state.document_store, youth, DocumentKind.BANK_DETAILS)
    request = _filed(session, youth, AidCode.AIDE_URGENCE)
    requests_service.set_documents(session, request, youth.id, [str(document.id)])
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    page = (await client.get(f"/pro/demandes/{request.id}")).text
    preview = f"/pro/jeunes/{youth.id}/documents/{document.id}?apercu=1"
    assert f'<iframe src="{preview}"' in page
    shown = await client.get(preview)
    assert shown.status_code == 200 and shown.content.startswith(b"%PDF")
    assert shown.headers["content-disposition"].startswith("inline;")
    assert "frame-ancestors 'self'" in shown.headers["content-security-policy"]
    assert shown.headers["x-frame-options"] == "SAMEORIGIN"
    # The download stays a download.
    download = await client.get(f"/pro/jeunes/{youth.id}/documents/{document.id}")
    assert download.headers["content-disposition"].startswith("attachment;")


async def test_another_referent_cannot_preview_a_document(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    document = create_document(session, app.state.document_store, youth, DocumentKind.BANK_DETAILS)
    stranger = create_staff(session, StaffRole.REFERENT)
    session.commit()
    sign_in_as(client, app, session, staff=stranger)
    refused = await client.get(f"/pro/jeunes/{youth.id}/documents/{document.id}?apercu=1")
    assert refused.status_code == 404 and PDF_BYTES not in refused.content
    assert session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "access_denied", AuditEvent.actor_staff_id == stranger.id)
    )


# --- Counter mode -------------------------------------------------------------------------


async def test_a_missing_consent_keeps_the_counter_section_open(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    sign_in_as(client, app, session, staff=referent)
    refused = await post_form(client, f"/pro/jeunes/{youth.id}/guichet")
    assert refused.status_code == 422
    assert re.search(r'<details class="card" id="guichet" open>', refused.text)
    assert 'aria-describedby="guichet-erreur"' in refused.text


async def test_a_failed_filing_at_the_counter_leaves_no_draft(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    sign_in_as(client, app, session, staff=referent)
    await post_form(client, f"/pro/jeunes/{youth.id}/guichet", {"accord": "oui"})
    # An answer missing: the form again, nothing written.
    missing_answer = await post_form(
        client, f"/pro/jeunes/{youth.id}/guichet/demande", {"aide": "aide_urgence", "amount": "120"}
    )
    assert missing_answer.status_code == 422 and 'value="120"' in missing_answer.text
    # Every answer but no RIB: refused by the submission, nothing written either.
    missing_document = await post_form(
        client,
        f"/pro/jeunes/{youth.id}/guichet/demande",
        {"aide": "aide_urgence", "explanation": "Facture impayée.", "amount": "120"},
    )
    assert missing_document.status_code == 422
    text = _text(missing_document.text)
    assert "Rien n’a été enregistré" in text and "Facture impayée." in missing_document.text
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(AidRequest)) == 0


# --- SMS texts ----------------------------------------------------------------------------


async def test_the_sms_editor_shows_the_default_text_and_counts_ucs2(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    admin = create_staff(session, StaffRole.ADMIN)
    session.commit()
    sign_in_as(client, app, session, staff=admin)
    page = (await client.get("/pro/admin/messages")).text
    arabic = page[page.index('id="invitation-ar"') :]
    arabic = arabic[: arabic.index("</section>")]
    assert "Texte par défaut (utilisé tant que la case est vide)" in arabic
    assert "{link}" in arabic and 'placeholder="' in arabic
    assert re.search(r"\d SMS \(UCS-2\) — texte par défaut", arabic)
    assert "GSM-7" not in arabic
    french = page[page.index('id="invitation-fr"') :]
    french = french[: french.index("</section>")]
    assert "1 SMS (GSM-7) — texte par défaut" in french


# --- The youth's access history -----------------------------------------------------------


async def test_two_minutes_of_work_read_as_one_visit(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    start = utcnow().replace(hour=13, minute=0, second=0, microsecond=0) - timedelta(days=1)
    for number in range(15):
        audit.record(
            session,
            "youth.view",
            actor_staff_id=referent.id,
            youth_id=youth.id,
            now=start + timedelta(seconds=8 * number),
        )
    for action in ("aid_request.view", "aid_request.update"):
        audit.record(
            session,
            action,
            actor_staff_id=referent.id,
            youth_id=youth.id,
            now=start + timedelta(minutes=2),
        )
    session.commit()
    sign_in_as(client, app, session, youth=youth)
    html = (await client.get("/mon-espace/acces")).text
    page = _text(html[html.index('class="access-list"') : html.index("Une question sur ces accès")])
    assert page.count("Awa Diallo") == 1
    assert "a consulté votre dossier (15 fois)" in page
    assert "a consulté une demande" in page and "a traité une demande" in page
    assert re.search(r"Le \w+ \d+ \w+ \d{4} ?, de 1\d:00 à 1\d:02", page)


# --- Statistics ---------------------------------------------------------------------------


async def test_statistics_hide_small_counts_not_measures_over_many_people(
    app: FastAPI, client: httpx.AsyncClient, session: Session, team: Team
) -> None:
    from tests.test_stats import add_requests

    ensure_catalogue(session)
    add_requests(session, AidCode.BOURSE, RequestStatus.REFUSED, 12, days_to_decision=3)
    add_requests(session, AidCode.LOGEMENT, RequestStatus.REFUSED, 4, days_to_decision=3)
    now = utcnow()
    for number in range(15):
        session.add(
            OutreachAttempt(
                youth_id=create_youth(session).id,
                reason=OutreachReason.INACTIVITY,
                step=1,
                period_key="p",
                channel=Channel.SMS,
                attempted_at=now,
                responded_at=now if number < 2 else None,  # 2 of 15 answered
            )
        )
    supervisor = create_staff(session, StaffRole.SUPERVISOR, team_id=team.id)
    session.commit()
    sign_in_as(client, app, session, staff=supervisor)
    page = (await client.get("/pro/statistiques")).text
    text = re.sub(r"<[^>]+>", " ", page)
    # 2 answers out of 15 youths: the rate protects 15 people, it is shown, the French way.
    assert "13,3\u00a0%" in text and "13.3" not in text
    bourse = text[text.index("Bourse d’études") :]
    assert re.match(r"Bourse d’études(\s+\S+)*?\s+12\s", bourse)  # 12 refusals shown
    assert "3\u00a0j" in bourse.split("</tr>")[0] or "3\u00a0j" in bourse[:400]
    logement = text[text.index("Logement social") :][:600]
    assert "&lt; 10" in logement  # 4 refusals: masked
    assert "secret (moins de 10 personnes)" in logement  # a median over 4 people: masked
    assert "deposee" not in text and "refusee" not in text


# --- Reasons from a translated list -------------------------------------------------------


async def test_a_reason_picked_from_the_list_reaches_an_arabic_reader_in_arabic(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser
) -> None:
    ensure_catalogue(session)
    youth = create_youth(session, first_name="Yusuf", language="ar")
    assign(session, youth, referent)
    navigo = _filed(session, youth, AidCode.NAVIGO)
    allocation = _filed(session, youth, AidCode.ALLOCATION)
    sign_in_as(client, app, session, staff=referent)
    form = _text((await client.get(f"/pro/demandes/{navigo.id}")).text)
    assert "Vous n’avez pas l’âge prévu pour cette aide." in form  # the list, in French
    assert "Langue du jeune : arabe (العربية). Vos mots lui arrivent en français" in form
    refused = await post_form(
        client,
        f"/pro/demandes/{navigo.id}/refuser",
        {"motif": "age", "texte": "Passez me voir jeudi."},
    )
    assert refused.status_code == 303
    asked = await post_form(
        client, f"/pro/demandes/{allocation.id}/pieces", {"motif": "rib", "texte": ""}
    )
    assert asked.status_code == 303

    client.cookies.clear()
    sign_in_as(client, app, session, youth=youth)
    client.cookies.set("langue", "ar")
    page = _text((await client.get(f"/mon-espace/demandes/{navigo.id}")).text)
    assert "عمرك ليس العمر المطلوب لهذه المساعدة." in page
    assert "رسالة من مرشدك، غير مترجمة: Passez me voir jeudi." in page
    page = _text((await client.get(f"/mon-espace/demandes/{allocation.id}")).text)
    assert "ينقص كشف هويتك البنكية (RIB)." in page


async def test_a_french_reader_gets_the_reason_and_the_words_as_written(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    navigo = _filed(session, youth, AidCode.NAVIGO)
    sign_in_as(client, app, session, staff=referent)
    await post_form(
        client, f"/pro/demandes/{navigo.id}/refuser", {"motif": "age", "texte": "À jeudi."}
    )
    session.expire_all()
    assert (
        session.get_one(AidRequest, navigo.id).decision_reason
        == "Vous n’avez pas l’âge prévu pour cette aide. À jeudi."
    )
