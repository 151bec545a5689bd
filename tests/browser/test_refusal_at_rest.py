"""A refusal in Chromium, against what the database holds: the référent reads the youth's
answers and refuses with a reason, the youth reads the refusal and its reason on their
phone, and the database itself holds neither the answers nor the reason in clear."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text

from paris_avenir.aid_requests.models import AidCode, AidRequest, RequestStatus
from paris_avenir.demo import DEMO_STAFF_PASSWORD
from paris_avenir.youths.models import Youth
from tests.browser.conftest import (
    DemoYouth,
    LiveServer,
    new_phone_context,
    sign_in_youth,
    unused_totp,
)

pytestmark = pytest.mark.browser

YOUTH = DemoYouth(26)  # followed by Awa Diallo, used by no other browser test
EXPLANATION = "Mon foyer ferme ce week-end et je n’ai nulle part où dormir."
REASON = "Le foyer du 13e vous accueille dès vendredi : appelez votre référente pour l’adresse."


def test_a_refusal_reads_in_clear_on_the_pages_and_nowhere_in_the_database(
    live_server: LiveServer, browser: Any
) -> None:
    with live_server.session_factory.begin() as session:
        youth = session.scalars(select(Youth).where(Youth.phone == YOUTH.phone)).one()
        request = AidRequest(
            youth_id=youth.id,
            aid_code=AidCode.AIDE_URGENCE,
            status=RequestStatus.SUBMITTED,
            submitted_at=datetime.now(UTC),
            form_data={"explanation": EXPLANATION, "amount": "120"},
        )
        session.add(request)
        session.flush()
        request_id = request.id

    desk = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    staff = desk.new_page()
    staff.goto(live_server.url + "/pro/connexion")
    staff.get_by_label("E-mail professionnel").fill("referent.diallo@example.org")
    staff.get_by_label("Mot de passe").fill(DEMO_STAFF_PASSWORD)
    staff.get_by_label("Code de votre application d’authentification").fill(
        unused_totp(live_server, "referent.diallo@example.org")
    )
    staff.get_by_role("button", name="Se connecter").click()
    staff.get_by_role("heading", name="Mes jeunes").wait_for()
    staff.goto(f"{live_server.url}/pro/demandes/{request_id}")
    staff.get_by_role("heading", name="Réponses du jeune").wait_for()
    assert EXPLANATION in staff.content()  # decrypted for the référent
    staff.get_by_text("Refuser", exact=True).click()
    staff.get_by_label("Raison, écrite pour le jeune, avec des mots simples").fill(REASON)
    staff.get_by_role("button", name="Refuser la demande").click()
    staff.locator(".badge", has_text="Refusée").wait_for()

    phone = new_phone_context(browser)
    page = phone.new_page()
    sign_in_youth(page, live_server, YOUTH)
    page.goto(f"{live_server.url}/mon-espace/demandes/{request_id}")
    page.locator(".badge", has_text="Refusée").first.wait_for()
    assert REASON.replace("’", "'") in page.content().replace("’", "'")
    desk.close()
    phone.close()

    with live_server.session_factory() as session:
        stored = session.execute(
            text("SELECT form_data, decision_reason FROM aid_request"),
        ).all()
        reasons = session.execute(text("SELECT reason FROM aid_request_event")).all()
        everything = " ".join(str(value) for row in [*stored, *reasons] for value in row)
        assert "nulle part où dormir" not in everything
        assert "Le foyer du 13e" not in everything
        decided = session.get_one(AidRequest, request_id)
        assert decided.status is RequestStatus.REFUSED and decided.decision_reason == REASON
