"""A service's refusal (kit/errors.py DomainError) reaches the youth with its real reason:
the youth opened their request to withdraw it, the référent decided meanwhile, and the
youth's "Oui, retirer ma demande" answers "Ce n’est plus possible" with why — not "Une
erreur est arrivée" — with JavaScript on (htmx swaps the 409 page) and off."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from paris_avenir.aid_requests import instruction
from paris_avenir.aid_requests.models import AidCode, AidRequest, RequestStatus
from paris_avenir.staff.assignments import current_referent
from paris_avenir.youths.models import Youth
from tests.browser.conftest import DemoYouth, LiveServer, new_phone_context, sign_in_youth

pytestmark = pytest.mark.browser

REASON = "Votre loyer est déjà pris en charge par le foyer jusqu’en mars."


@pytest.mark.parametrize(
    ("javascript", "youth_number"), [(True, 20), (False, 23)], ids=["js", "no-js"]
)
def test_a_withdrawal_after_a_decision_says_why_it_is_no_longer_possible(
    live_server: LiveServer, browser: Any, javascript: bool, youth_number: int
) -> None:
    demo_youth = DemoYouth(youth_number)  # used by no other browser test
    with live_server.session_factory.begin() as session:
        youth = session.scalars(select(Youth).where(Youth.phone == demo_youth.phone)).one()
        request = AidRequest(
            youth_id=youth.id,
            aid_code=AidCode.AIDE_URGENCE,
            status=RequestStatus.SUBMITTED,
            submitted_at=datetime.now(UTC),
            form_data={"explanation": "Une facture d’électricité en retard.", "amount": "90"},
        )
        session.add(request)
        session.flush()
        request_id = request.id
        youth_id = youth.id

    phone = new_phone_context(browser, javascript=javascript)
    page = phone.new_page()
    sign_in_youth(page, live_server, demo_youth)
    page.goto(f"{live_server.url}/mon-espace/demandes/{request_id}")
    page.get_by_text("Retirer ma demande", exact=True).click()
    page.get_by_label("Pourquoi ? (facultatif)").fill("J’ai trouvé une autre solution.")

    # Meanwhile, at the référent's desk, the request is decided.
    with live_server.session_factory.begin() as session:
        referent = current_referent(session, youth_id)
        assert referent is not None
        instruction.refuse(
            session,
            session.get_one(AidRequest, request_id),
            instruction.Decider(referent, live_server.url),
            reason=REASON,
        )

    page.get_by_role("button", name="Oui, retirer ma demande").click()
    page.get_by_role("heading", name="Ce n’est plus possible").wait_for()
    text = page.locator("main").inner_text()
    assert "Une décision a été prise : cette demande ne peut plus être retirée." in text
    assert "Une erreur est arrivée" not in text

    # Nothing was lost: the decision stands, and the youth reads it with its reason.
    page.goto(f"{live_server.url}/mon-espace/demandes/{request_id}")
    page.locator(".badge", has_text="Refusée").first.wait_for()
    assert REASON in page.locator("main").inner_text()
    phone.close()
    with live_server.session_factory() as session:
        assert session.get_one(AidRequest, request_id).status is RequestStatus.REFUSED
