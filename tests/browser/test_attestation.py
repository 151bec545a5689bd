"""Issue 18 in Chromium at 360x640: a youth downloads the attestation of a granted aid from
the request's page and from "Mes documents"; their référent downloads the same one from the
instruction page, and the youth reads it in « Qui a consulté mon dossier »; a landlord,
without an account and without JavaScript, types the code printed on it and reads that it
is valid."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from sqlalchemy import select

from paris_avenir.aid_requests.models import AidCode, AidRequest, RequestStatus
from paris_avenir.db import utcnow
from paris_avenir.staff.models import StaffUser
from tests.browser.conftest import (
    PAGES_STAFF,
    DemoYouth,
    LiveServer,
    new_phone_context,
    sign_in_youth,
)
from tests.factories import assign, create_youth
from tests.test_attestation import poppler

pytestmark = pytest.mark.browser


class AttestationYouth(DemoYouth):
    """A youth of this test's own (not of the demo: no other test signs them in)."""

    @property
    def first_name(self) -> str:
        return "Yared"


def assert_no_axe_violation(page: Any) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, f"{page.url}\n{results.generate_report()}"


def downloaded_text(page: Any, link_name: str, directory: Path, name: str) -> str:
    with page.expect_download() as download_info:
        page.get_by_role("link", name=link_name).click()
    download = download_info.value
    assert download.suggested_filename.startswith("attestation-D-")
    path = directory / name
    download.save_as(path)
    assert path.read_bytes().startswith(b"%PDF-")
    read = subprocess.run([poppler("pdftotext"), str(path), "-"], capture_output=True, check=True)
    return " ".join(read.stdout.decode().split())


@pytest.mark.parametrize(
    ("javascript", "number"), [(True, 9101), (False, 9102)], ids=["js", "no-js"]
)
def test_a_youth_downloads_the_attestation_and_a_landlord_checks_it(
    live_server: LiveServer,
    browser: Any,
    staff_cookies: list[Any],
    tmp_path: Path,
    javascript: bool,
    number: int,
) -> None:
    youth = AttestationYouth(number)
    with live_server.session_factory.begin() as session:
        referent = session.scalars(select(StaffUser).where(StaffUser.email == PAGES_STAFF)).one()
        person = create_youth(
            session,
            first_name=youth.first_name,
            last_name="Tesfaye",
            phone=youth.phone,
            activated_at=utcnow() - timedelta(days=60),
        )
        request = AidRequest(
            youth_id=person.id,
            aid_code=AidCode.ALLOCATION,
            status=RequestStatus.GRANTED,
            submitted_at=datetime.now(UTC) - timedelta(days=12),
            decided_at=datetime.now(UTC) - timedelta(days=2),
            granted_amount_cents=65169,
            renewal_due_on=datetime.now(UTC) + timedelta(days=180),
        )
        session.add(request)
        session.flush()
        assign(session, person, referent)
        request_id, reference = request.id, request.reference

    context = new_phone_context(browser, javascript=javascript)
    context.set_default_timeout(15_000)
    page = context.new_page()
    sign_in_youth(page, live_server, youth)
    page.goto(f"{live_server.url}/mon-espace/demandes/{request_id}")
    if javascript:
        assert_no_axe_violation(page)
    from_request = downloaded_text(page, "Télécharger l’attestation (PDF)", tmp_path, "a.pdf")
    assert "Yared TESFAYE" in from_request and "651,69 € par mois" in from_request
    assert reference in from_request
    code = re.search(r"Code de vérification : (\S{4}-\S{4}-\S{4})", from_request)
    assert code, from_request

    page.goto(f"{live_server.url}/mon-espace/documents")
    page.get_by_role("heading", name="Attestations de vos aides").wait_for()
    from_vault = downloaded_text(
        page, "Télécharger l’attestation (PDF) : Allocation Paris avenir", tmp_path, "b.pdf"
    )
    assert code.group(1) in from_vault  # the same code on every copy

    # Her référent hands over a copy at the counter: the same code; she sees who did it.
    office = browser.new_context(accept_downloads=True)
    office.add_cookies(staff_cookies)
    desk = office.new_page()
    desk.goto(f"{live_server.url}/pro/demandes/{request_id}")
    from_office = downloaded_text(
        desk, "Télécharger l’attestation d’attribution (PDF)", tmp_path, "c.pdf"
    )
    assert code.group(1) in from_office
    office.close()
    page.goto(f"{live_server.url}/mon-espace/acces")
    page.get_by_text("a téléchargé l’attestation d’une aide").first.wait_for()
    context.close()

    # The landlord: another phone, no account, JavaScript off, the code typed by hand.
    landlord = new_phone_context(browser, javascript=False)
    check = landlord.new_page()
    check.goto(f"{live_server.url}/verifier")
    check.get_by_label("Code de vérification").fill(code.group(1).lower().replace("-", " "))
    check.get_by_role("button", name="Vérifier").click()
    check.get_by_text("Cette attestation est valable.").wait_for()
    facts = check.locator("dl.facts").inner_text()
    assert "Yared T." in facts and "Tesfaye" not in facts
    assert "651,69" in facts and reference in facts
    # A wrong code: said plainly, the form again.
    check.goto(f"{live_server.url}/verifier/7K2M-9QXD-4RTB")
    check.get_by_text("Aucune attestation valable ne porte ce code.").wait_for()
    check.get_by_label("Code de vérification").wait_for()
    landlord.close()
