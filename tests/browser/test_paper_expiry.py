"""Papers that expire (issue 18, part 6) in Chromium at 360x640, JavaScript on and off: a
titre de séjour expiring in 30 days is, for the youth, a warning in the vault with what to
prepare and the guichet to book; for their référent, a task in "À faire" and a line of the
dashboard's "Échéances à venir" — and the same for the youth's allocation, to renew in 25 days;
another référent sees neither."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from paris_avenir import demo
from paris_avenir.aid_requests.models import AidCode, RequestStatus
from paris_avenir.db import utcnow
from paris_avenir.documents.models import DocumentKind
from paris_avenir.documents.storage import DocumentStore
from paris_avenir.kit.crypto import build_cipher
from paris_avenir.kit.dates import paris_day
from paris_avenir.outreach import papers
from paris_avenir.staff import assignments, tasks
from paris_avenir.staff.models import StaffRole, StaffUser
from paris_avenir.youths.models import Youth
from tests.browser.conftest import DemoYouth, LiveServer, new_phone_context, sign_in_demo_staff
from tests.browser.test_work_queue import _sign_in_by_link, assert_accessible, assert_fits
from tests.factories import create_aid_request, create_document

pytestmark = pytest.mark.browser

# Each run its own youth (the server and its demo data are shared by the suite; 18 is
# tests/browser/test_delivery_fallback.py's, whose number is left to verify).
RUNS = [(True, DemoYouth(17)), (False, DemoYouth(20))]


def _expiring_permit(live: LiveServer, youth: DemoYouth) -> tuple[Any, str, str, str]:
    """A titre de séjour in the youth's vault expiring in 30 days, and the task the watch
    opens for it (the cycle's hand-over, for this youth only: a whole cycle would contact
    the demo youths the other tests rely on). The youth's id, the expiry date as written,
    the référent's email and another référent's email."""
    store = DocumentStore(live.settings.upload_dir, build_cipher(live.settings))
    now = utcnow()
    expires_on = paris_day(now) + timedelta(days=30)
    with live.session_factory.begin() as session:
        found = session.scalars(select(Youth).where(Youth.phone == youth.phone)).one()
        create_document(
            session,
            store,
            found,
            DocumentKind.RESIDENCE_PERMIT,
            filename="titre.pdf",
            expires_on=expires_on,
        )
        # Her allocation is to renew in 25 days: the same hand-over opens its task.
        create_aid_request(
            session,
            found,
            AidCode.ALLOCATION,
            RequestStatus.GRANTED,
            renewal_due_on=now + timedelta(days=25),
        )
        candidates = papers.hand_overs(session, now, [Youth.id == found.id])
        tasks.open_tasks(
            session,
            [
                tasks.Opening(
                    youth_id=candidate.youth_id,
                    kind=candidate.kind,
                    key=candidate.key,
                    due_at=candidate.due_at,
                    detail=candidate.detail,
                )
                for candidate in candidates
            ],
            now=now,
        )
        referent = assignments.current_referent(session, found.id)
        assert referent is not None
        other = session.scalars(
            select(StaffUser)
            .where(
                StaffUser.role == StaffRole.REFERENT,
                StaffUser.id != referent.id,
                # A demo référent (the demo's password): other tests add référents of their
                # own, and PostgreSQL returns rows in no set order.
                StaffUser.email.in_(
                    [email for email, _name, role in demo.STAFF if role is StaffRole.REFERENT]
                ),
            )
            .order_by(StaffUser.email)
        ).first()
        assert other is not None
        return found.id, expires_on.strftime("%d/%m/%Y"), referent.email, other.email


def _sign_in_staff(page: Any, live: LiveServer, email: str) -> None:
    sign_in_demo_staff(page, live, email)
    page.locator("h1").first.wait_for()


@pytest.mark.parametrize(("javascript", "youth"), RUNS, ids=["js", "no-js"])
def test_the_youth_and_the_referent_see_the_paper_that_expires(
    live_server: LiveServer, browser: Any, javascript: bool, youth: DemoYouth
) -> None:
    youth_id, expires, referent_email, other_email = _expiring_permit(live_server, youth)

    # The youth: the vault says it expires, what to prepare, and books the guichet.
    phone = new_phone_context(browser, javascript=javascript)
    page = phone.new_page()
    _sign_in_by_link(page, live_server, youth_id)
    page.get_by_role("heading", name=f"Bonjour {youth.first_name}").wait_for()
    page.goto(live_server.url + "/mon-espace/documents")
    warning = page.locator(
        "section", has=page.get_by_role("heading", name="Titre de séjour : expire bientôt")
    )
    text = warning.inner_text()
    assert f"Votre titre de séjour expire le {expires}." in text
    assert "Ce qu’il faut préparer :" in text and "3 photos d’identité récentes" in text
    assert (
        "Expire bientôt : le" in page.locator(".document-list", has_text="titre.pdf").inner_text()
    )
    if javascript:
        assert_accessible(page)
    assert_fits(page)
    warning.get_by_role("link", name="Prendre rendez-vous au guichet").click()
    page.wait_for_url(lambda url: "motif=guichet" in url)
    assert page.locator("h1").first.is_visible()
    phone.close()

    # The référent, on a phone too: "À faire" and the dashboard's "Échéances à venir".
    desk = new_phone_context(browser, javascript=javascript)
    staff = desk.new_page()
    _sign_in_staff(staff, live_server, referent_email)
    section = staff.locator("section", has=staff.get_by_role("heading", name="Échéances à venir"))
    line = section.locator("li", has_text=youth.first_name).filter(has_text="Titre de séjour")
    renewal_due = (paris_day(utcnow()) + timedelta(days=25)).strftime("%d/%m/%Y")
    renewing = section.locator("li", has_text=youth.first_name).filter(has_text="Renouvellement")
    assert f"Renouvellement de l’allocation : le {renewal_due} (dans 25 jours)" in (
        renewing.inner_text()
    )
    assert f"Titre de séjour : le {expires} (dans 30 jours)" in line.inner_text()
    # The section fits the phone (the caseload's table below it scrolls on its own).
    box = section.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360
    staff.goto(live_server.url + "/pro/a-faire")
    task = staff.locator("li.task", has_text="Papier qui expire dans un mois").filter(
        has_text=youth.first_name
    )
    assert f"Titre de séjour : expire le {expires}." in task.inner_text()
    renewal = staff.locator("li.task", has_text="Allocation à renouveler dans un mois").filter(
        has_text=youth.first_name
    )
    assert f"Renouvellement dû le {renewal_due}." in renewal.inner_text()
    if javascript:
        assert_accessible(staff)
    assert_fits(staff)
    desk.close()

    # Another référent: neither the task nor the deadline.
    other = new_phone_context(browser, javascript=javascript)
    theirs = other.new_page()
    _sign_in_staff(theirs, live_server, other_email)
    deadlines = theirs.locator(
        "section", has=theirs.get_by_role("heading", name="Échéances à venir")
    )
    assert deadlines.locator("li", has_text=youth.first_name).filter(has_text=expires).count() == 0
    theirs.goto(live_server.url + "/pro/a-faire")
    assert (
        theirs.locator("li.task", has_text="Papier qui expire dans un mois")
        .filter(has_text=youth.first_name)
        .count()
        == 0
    )
    other.close()
