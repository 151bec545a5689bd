"""Fallback driven by delivery, in Chromium (issue 18, part 3): an SMS without a receipt is
followed by the email, the email fails, the référent reads "Numéro à vérifier" in "À faire"
with what failed; the youth, at their next sign-in (360x640, JavaScript on and off), is
asked to confirm their number and does."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from paris_avenir.messaging.models import OutboxMessage, OutboxStatus
from paris_avenir.outreach import delivery
from paris_avenir.staff.assignments import current_referent
from paris_avenir.staff.models import StaffTask, TaskKind
from paris_avenir.youths.models import Youth
from tests.browser.conftest import (
    DemoYouth,
    LiveServer,
    new_phone_context,
    sign_in_demo_staff,
    words,
)
from tests.browser.test_work_queue import _sign_in_by_link, assert_accessible, assert_fits
from tests.factories import create_outbox_message

pytestmark = pytest.mark.browser


def _failed_twice(live: LiveServer, youth: DemoYouth) -> tuple[uuid.UUID, str]:
    """An SMS of the référent's message, never delivered; 24 h later the pass sends the
    email, which the mail server refuses; the next pass opens the task. The youth's id and
    their référent's email."""
    now = datetime.now(UTC)
    with live.session_factory.begin() as session:
        found = session.scalars(select(Youth).where(Youth.phone == youth.phone)).one()
        referent = current_referent(session, found.id)
        assert referent is not None
        found.last_activity_at = now - timedelta(days=3)  # not seen since the SMS
        sms = create_outbox_message(
            session,
            found,
            template="new_message",
            key=f"navigateur-repli:{found.id}",
            now=now - timedelta(hours=26),
        )
        sms.status, sms.sent_at, sms.provider_message_id = (
            OutboxStatus.SENT,
            now - timedelta(hours=25),
            f"nav-{found.id.hex[:8]}",
        )
        session.flush()
        assert delivery.run(session, base_url=live.url, receipts=True, now=now).queued == 1
        email = session.scalars(
            select(OutboxMessage).where(OutboxMessage.idempotency_key == f"fallback:{sms.id}")
        ).one()
        email.status = OutboxStatus.FAILED  # what the dispatcher records of a 550
        session.flush()
        assert len(delivery.run(session, base_url=live.url, receipts=True, now=now).tasks) == 1
        return found.id, referent.email


def test_the_referent_reads_the_number_to_check_in_a_faire(
    live_server: LiveServer, browser: Any
) -> None:
    youth = DemoYouth(18)
    youth_id, referent_email = _failed_twice(live_server, youth)
    desk = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    page = desk.new_page()
    sign_in_demo_staff(page, live_server, referent_email)
    page.goto(live_server.url + "/pro/a-faire")
    line = page.locator("li.task", has_text=youth.first_name).filter(has_text="Numéro à vérifier")
    text = line.inner_text()
    assert "pas reçu (aucun accusé de réception)" in text
    assert "E-mail du" in text and "échec (adresse refusée)" in text
    assert "se termine par 18" in text
    assert youth.phone_as_typed not in text and youth.phone not in text
    assert_accessible(page)
    page.set_viewport_size({"width": 360, "height": 640})
    assert_fits(page)
    desk.close()
    with live_server.session_factory() as session:
        task = session.scalars(
            select(StaffTask).where(
                StaffTask.youth_id == youth_id, StaffTask.kind == TaskKind.NUMBER_TO_CHECK
            )
        ).one()
        assert task.done_at is None


@pytest.mark.parametrize(
    ("javascript", "youth"), [(True, DemoYouth(27)), (False, DemoYouth(19))], ids=["js", "no-js"]
)
def test_the_youth_confirms_the_number_at_next_sign_in(
    live_server: LiveServer, browser: Any, javascript: bool, youth: DemoYouth
) -> None:
    youth_id, referent_email = _failed_twice(live_server, youth)
    phone = new_phone_context(browser, javascript=javascript)
    page = phone.new_page()
    # A sign-in that does not prove the number (a link sent to their email).
    _sign_in_by_link(page, live_server, youth_id)
    page.get_by_role("heading", name="Est-ce toujours votre numéro ?").wait_for()
    main = page.locator("main").inner_text()
    assert youth.phone_as_typed in main and "Nos SMS n’arrivent plus à ce numéro :" in main
    if javascript:
        assert_accessible(page)
    assert_fits(page)
    sms_before = live_server.sms_count()
    page.get_by_role("button", name="Oui, c’est mon numéro").click()
    page.get_by_role("heading", name=words("fr", "Entrez le code reçu")).wait_for()
    proof = re.search(r"\b(\d{6})\b", live_server.last_sms_to(youth.phone, after=sms_before))
    assert proof is not None
    page.get_by_label("Code à 6 chiffres").fill(proof.group(1))
    page.get_by_role("button", name="Valider", exact=True).click()
    page.get_by_text("C’est enregistré.").wait_for()
    phone.close()
    with live_server.session_factory() as session:
        assert session.get_one(Youth, youth_id).phone_unreachable_at is None

    # The number is proven: the référent's « Numéro à vérifier » is done by itself.
    desk = browser.new_context(
        viewport={"width": 1280, "height": 800}, locale="fr-FR", java_script_enabled=javascript
    )
    staff = desk.new_page()
    sign_in_demo_staff(staff, live_server, referent_email)
    staff.goto(live_server.url + "/pro/a-faire")
    staff.get_by_role("heading", name="À faire", exact=True).wait_for()
    lines = staff.locator("li.task", has_text=youth.first_name)
    assert lines.filter(has_text="Numéro à vérifier").count() == 0
    desk.close()
