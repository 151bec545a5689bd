"""The attestation of a granted aid: a PDF that poppler (a reader we did not write) renders
and reads with the expected text, the same verification code on every copy, and
/verifier/{code} confirming the grant without saying more (404 otherwise)."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.aid_requests import attestation
from paris_avenir.aid_requests.models import AidCode, AidRequest, RequestStatus
from paris_avenir.audit.models import AuditEvent
from paris_avenir.youths.models import Youth
from tests.factories import assign, create_aid_request, create_staff, create_youth
from tests.helpers import at_once, sign_in_as

DECIDED = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
RACE_SCHEMA = "attestation_race"
RACE_DOWNLOADS = 36


def poppler(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        from tests.conftest import skip_or_fail

        skip_or_fail(f"Debian's poppler-utils ({tool}) reads the attestation")
    assert found
    return found


def text_of(pdf: bytes, directory: Path) -> str:
    path = directory / "attestation.pdf"
    path.write_bytes(pdf)
    read = subprocess.run(
        [poppler("pdftotext"), "-layout", str(path), "-"], capture_output=True, check=True
    )
    return " ".join(read.stdout.decode().split())


def rendered(pdf: bytes, directory: Path) -> Image.Image:
    """The first page as poppler draws it (pdftoppm, 50 dpi)."""
    path = directory / "rendered.pdf"
    path.write_bytes(pdf)
    subprocess.run(
        [
            poppler("pdftoppm"),
            "-png",
            "-r",
            "50",
            "-f",
            "1",
            "-l",
            "1",
            str(path),
            str(directory / "page"),
        ],
        check=True,
        capture_output=True,
    )
    (page,) = directory.glob("page*.png")
    return Image.open(page).convert("L")


def granted_allocation(session: Session, youth: Youth) -> AidRequest:
    return create_aid_request(
        session,
        youth,
        aid_code=AidCode.ALLOCATION,
        status=RequestStatus.GRANTED,
        submitted_at=DECIDED - timedelta(days=10),
        decided_at=DECIDED,
        granted_amount_cents=65169,
        renewal_due_on=datetime(2027, 5, 20, 10, 0, tzinfo=UTC),
    )


@pytest.fixture
def youth(session: Session) -> Youth:
    return create_youth(
        session,
        first_name="Zabiullah",
        last_name="Safi",
        birth_date=date(2005, 3, 14),
        language="ps",
    )


async def test_the_attestation_says_who_what_how_much_and_when_and_can_be_verified(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth, tmp_path: Path
) -> None:
    request = granted_allocation(session, youth)
    sign_in_as(client, app, session, youth=youth)

    page = await client.get(f"/mon-espace/demandes/{request.id}")
    assert f"/mon-espace/demandes/{request.id}/attestation.pdf" in page.text
    vault = await client.get("/mon-espace/documents")
    assert f"/mon-espace/demandes/{request.id}/attestation.pdf" in vault.text

    first = await client.get(f"/mon-espace/demandes/{request.id}/attestation.pdf")
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/pdf"
    assert f'filename="attestation-{request.reference}.pdf"' in first.headers["content-disposition"]
    assert "no-store" in first.headers["cache-control"]
    text = text_of(first.content, tmp_path)
    # In French, whatever the youth reads the platform in (Pashto here): for a landlord.
    for expected in (
        "Attestation d’attribution",
        "Zabiullah SAFI",
        "14 mars 2005",
        "Allocation",
        "651,69 € par mois",
        "du 20 novembre 2026 au 20 mai 2027",
        request.reference,
    ):
        assert expected in text, (expected, text)
    code = re.search(r"Code de vérification : ([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})", text)
    assert code, text
    assert f"{app.state.settings.base_url}/verifier/{code.group(1)}" in text
    # Poppler draws the page: mostly white paper, with ink on it (text and the QR code).
    page_image = rendered(first.content, tmp_path)
    ink = page_image.point(lambda value: 255 if value < 128 else 0).histogram()[255]
    assert page_image.size[0] < page_image.size[1]  # A4 portrait
    assert 0.005 < ink / (page_image.size[0] * page_image.size[1]) < 0.3

    # Every copy carries the same code: the first paper handed out stays valid.
    second = await client.get(f"/mon-espace/demandes/{request.id}/attestation.pdf")
    assert code.group(1) in text_of(second.content, tmp_path)

    client.cookies.clear()  # the landlord has no account
    checked = await client.get(f"/verifier/{code.group(1)}")
    assert checked.status_code == 200
    assert "Cette attestation est valable." in checked.text
    assert "Zabiullah S." in checked.text and "Safi" not in checked.text
    assert "651,69" in checked.text and request.reference in checked.text
    assert "2005" not in checked.text  # not the birth date
    # Typed by hand: lower case, spaces, an O for a 0 — the form leads to the same page.
    typed = code.group(1).lower().replace("-", " ").replace("0", "o")
    form = await client.get("/verifier", params={"code": typed})
    assert form.status_code == 303 and form.headers["location"] == f"/verifier/{code.group(1)}"


async def test_no_attestation_before_a_grant_nor_for_someone_else(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    waiting = create_aid_request(session, youth, status=RequestStatus.SUBMITTED)
    other = create_youth(session, first_name="Autre")
    theirs = granted_allocation(session, other)
    sign_in_as(client, app, session, youth=youth)

    assert (
        await client.get(f"/mon-espace/demandes/{waiting.id}/attestation.pdf")
    ).status_code == 404
    page = await client.get(f"/mon-espace/demandes/{waiting.id}")
    assert "attestation.pdf" not in page.text
    # Another youth's grant: not found, and no code was made for it.
    assert (
        await client.get(f"/mon-espace/demandes/{theirs.id}/attestation.pdf")
    ).status_code == 404
    session.expire_all()
    assert session.get_one(AidRequest, theirs.id).attestation_code is None
    # A staff session is not a youth's: refused, like any youth page.
    referent = create_staff(session)
    assign(session, other, referent)
    client.cookies.clear()
    sign_in_as(client, app, session, staff=referent)
    staff_try = await client.get(f"/mon-espace/demandes/{theirs.id}/attestation.pdf")
    assert staff_try.status_code in {303, 401, 403, 404}
    assert staff_try.headers.get("content-type") != "application/pdf"


async def test_the_youth_s_referent_downloads_the_same_attestation_and_it_is_audited(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth, tmp_path: Path
) -> None:
    referent, stranger = create_staff(session), create_staff(session)
    assign(session, youth, referent)
    request = granted_allocation(session, youth)
    code = attestation.code_for(session, request)
    url = f"/pro/demandes/{request.id}/attestation.pdf"

    sign_in_as(client, app, session, staff=stranger)
    assert (await client.get(url)).status_code == 404
    denied = session.scalars(
        select(AuditEvent).where(AuditEvent.actor_staff_id == stranger.id)
    ).all()
    assert [event.action for event in denied] == ["access_denied"]
    client.cookies.clear()
    sign_in_as(client, app, session, staff=referent)
    page = await client.get(f"/pro/demandes/{request.id}")
    assert url in page.text
    response = await client.get(url)
    assert response.status_code == 200 and response.content.startswith(b"%PDF-")
    assert attestation.shown(code) in text_of(response.content, tmp_path)
    # The youth reads it in « Qui a consulté mon dossier ».
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.actor_staff_id == referent.id)
    ).all()
    assert "aid_request.attestation" in actions
    client.cookies.clear()
    sign_in_as(client, app, session, youth=youth)
    accesses = await client.get("/mon-espace/acces")
    assert "a téléchargé l’attestation d’une aide" in accesses.text


async def test_the_verification_page_answers_404_for_an_unknown_or_withdrawn_grant(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    request = granted_allocation(session, youth)
    code = attestation.code_for(session, request)

    unknown = await client.get("/verifier/7K2M-9QXD-4RTB")
    assert unknown.status_code == 404
    assert "Aucune attestation valable ne porte ce code." in unknown.text
    malformed = await client.get("/verifier", params={"code": "12"})
    assert malformed.status_code == 422
    assert "Ce code n’a pas la bonne forme" in malformed.text
    assert (await client.get("/verifier")).status_code == 200

    assert (await client.get(f"/verifier/{code}")).status_code == 200
    request.status = RequestStatus.REFUSED  # the grant no longer holds
    session.commit()
    assert (await client.get(f"/verifier/{attestation.shown(code)}")).status_code == 404


def test_an_anonymised_file_s_attestation_is_no_longer_confirmed(
    app: FastAPI, session: Session, youth: Youth
) -> None:
    from paris_avenir.retention.files import anonymise_due

    request = granted_allocation(session, youth)
    code = attestation.code_for(session, request)
    old = datetime(2023, 1, 10, tzinfo=UTC)
    youth.birth_date = date(1998, 1, 1)
    youth.last_activity_at = youth.activated_at = youth.created_at = old
    request.submitted_at, request.decided_at = old, old
    request.status = RequestStatus.PAID
    session.commit()
    assert attestation.verify(session, code) is not None

    anonymise_due(session, store=app.state.document_store, now=datetime(2026, 12, 2, tzinfo=UTC))
    session.commit()
    assert attestation.verify(session, code) is None
    assert (
        session.scalar(select(AidRequest.attestation_code).where(AidRequest.id == request.id))
        is None
    )


def test_thirty_six_first_downloads_at_once_print_one_code(tmp_path: Path) -> None:
    """The first downloads of a new grant, from a phone and a laptop at once, and so on:
    every copy carries the one code kept (a code on paper that /verifier denies would be
    worse than none)."""
    from paris_avenir.db import create_database_engine
    from paris_avenir.migrate import upgrade_to_head
    from tests.conftest import postgres_schema_url

    url = postgres_schema_url(RACE_SCHEMA, needed_for="attestation races on PostgreSQL")
    engine = create_database_engine(url, pool_size=RACE_DOWNLOADS, max_overflow=4)
    try:
        upgrade_to_head(engine)
        factory = sessionmaker(bind=engine, expire_on_commit=False)
        with factory.begin() as session:
            youth = create_youth(session)
            request_id = granted_allocation(session, youth).id

        def download(_index: int) -> str:
            with factory() as session:
                request = session.get_one(AidRequest, request_id)
                young = session.get_one(Youth, request.youth_id)
                facts = attestation.attested(session, request, young)
                assert facts is not None
                return facts.code

        codes = at_once(RACE_DOWNLOADS, download)
        assert len(set(codes)) == 1
        with factory() as session:
            assert (
                session.scalar(
                    select(AidRequest.attestation_code).where(AidRequest.id == request_id)
                )
                == codes[0]
            )
            assert attestation.verify(session, codes[0]) is not None
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("7K2M-9QXD-4RTB", "7K2M9QXD4RTB"),
        (" 7k2m 9qxd 4rtb ", "7K2M9QXD4RTB"),
        ("OIL0-0000-0000", "011000000000"),
        ("7K2M-9QXD-4RT", None),
        ("7K2M-9QXD-4RTU", None),  # U is not in the alphabet
    ],
)
def test_a_typed_code_is_read_leniently(typed: str, stored: str | None) -> None:
    assert attestation.normalise(typed) == stored
