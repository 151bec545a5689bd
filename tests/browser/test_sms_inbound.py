"""Two-way SMS in Chromium: a youth answers one of our SMS; the référent finds the answer
in the youth's conversation marked "reçu par SMS" (desktop), and the youth sees it in their
space marked "par SMS" (360x640). A reply from a number two youths share reaches no file:
the supervisor finds it from the team page, reads it with the two candidates of their team
and attaches it to the right one, JavaScript on and off; it is then in that youth's file.

The platform runs with the webhook's token (its own server over a SQLite file, or a
PostgreSQL schema when PARIS_AVENIR_TEST_DATABASE_URL is set); reply events are built from
Brevo's documented webhook body (tests/brevo/sms-webhook.json)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe

from paris_avenir.auth import sessions
from paris_avenir.auth.models import AuthMethod
from paris_avenir.messaging import outbox
from paris_avenir.messaging import service as messaging
from paris_avenir.messaging.models import OutboxStatus
from paris_avenir.staff.models import StaffRole, Team
from paris_avenir.youths.models import Channel
from tests.browser.conftest import new_phone_context
from tests.conftest import POSTGRES_URL_ENV, postgres_schema_url
from tests.factories import assign, create_staff, create_youth
from tests.servers import RacePlatform, brevo_reply_event, race_platform

pytestmark = pytest.mark.browser

TOKEN = "hook-secret-" + "b" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}
OWN_NUMBER = "+33639980081"
SHARED_NUMBER = "+33639980082"


@pytest.fixture
def platform(tmp_path: Path, browser: Any) -> Iterator[RacePlatform]:
    url = (
        postgres_schema_url(f"sms_inbound_browser_{uuid.uuid4().hex[:8]}", needed_for="browser")
        if os.environ.get(POSTGRES_URL_ENV)
        else f"sqlite:///{tmp_path / 'inbound.sqlite3'}"
    )
    with race_platform(url, tmp_path, pool={}, sms_webhook_token=TOKEN) as running:
        yield running


def _cookie_for(
    platform: RacePlatform, *, youth_id: uuid.UUID | None = None, staff_id: uuid.UUID | None = None
) -> dict[str, str]:
    with platform.factory.begin() as session:
        method = AuthMethod.CODE if youth_id else AuthMethod.PASSWORD_TOTP
        token = sessions.start_session(
            session, youth_id=youth_id, staff_id=staff_id, method=method
        ).token
    return {"name": platform.settings.session_cookie_name, "value": token, "url": platform.url}


def _seed(platform: RacePlatform) -> dict[str, uuid.UUID]:
    with platform.factory.begin() as session:
        team = Team(name="Nord")
        session.add(team)
        session.flush()
        referent = create_staff(session, team_id=team.id, full_name="Julie Référente")
        supervisor = create_staff(
            session, StaffRole.SUPERVISOR, team_id=team.id, full_name="Paul Superviseur"
        )
        own = create_youth(session, phone=OWN_NUMBER, first_name="Inès", last_name="Martin")
        sister = create_youth(session, phone=SHARED_NUMBER, first_name="Awa", last_name="Diallo")
        brother = create_youth(
            session, phone=SHARED_NUMBER, first_name="Moussa", last_name="Diallo"
        )
        for youth in (own, sister, brother):
            assign(session, youth, referent)
        for provider_id, youth in ((8001, own), (8002, sister)):
            sms = outbox.enqueue(
                session,
                channel=Channel.SMS,
                recipient=youth.phone or "",
                template="new_message",
                body_text="Paris avenir : un nouveau message de votre référent.",
                idempotency_key=f"browser-inbound:{provider_id}",
                youth_id=youth.id,
            )
            sms.status = OutboxStatus.SENT
            sms.provider_message_id = str(provider_id)
        thread = messaging.general_thread(session, own.id)
        return {
            "referent": referent.id,
            "supervisor": supervisor.id,
            "own": own.id,
            "brother": brother.id,
            "thread": thread.id,
        }


def _reply(platform: RacePlatform, message_id: int, number: str, text: str) -> None:
    event = brevo_reply_event(
        message_id=message_id, to=number, text=text, ts_event=int(time.time()) - 30
    )
    response = httpx.post(platform.url + "/webhooks/sms/brevo", json=event, headers=AUTH)
    assert response.json() == {"status": "ok"}, response.text


def test_the_referent_and_the_youth_see_the_sms_reply_in_the_conversation(
    platform: RacePlatform, browser: Any
) -> None:
    ids = _seed(platform)
    _reply(platform, 8001, OWN_NUMBER, "Oui, je serai là jeudi")

    staff = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    staff.add_cookies([_cookie_for(platform, staff_id=ids["referent"])])
    page = staff.new_page()
    page.goto(f"{platform.url}/pro/jeunes/{ids['own']}")
    message = page.locator(".message", has_text="Oui, je serai là jeudi")
    message.wait_for()
    assert "reçu par SMS" in message.inner_text()
    assert "Le jeune" in message.inner_text()
    staff.close()

    phone = new_phone_context(browser)
    phone.add_cookies([_cookie_for(platform, youth_id=ids["own"])])
    own = phone.new_page()
    own.goto(f"{platform.url}/mon-espace/messages/{ids['thread']}")
    mine = own.locator(".message", has_text="Oui, je serai là jeudi")
    mine.wait_for()
    assert "Vous" in mine.inner_text() and "par SMS" in mine.inner_text()
    overflow = own.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    phone.close()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_the_supervisor_attaches_a_reply_from_a_shared_number(
    platform: RacePlatform, browser: Any, javascript: bool
) -> None:
    ids = _seed(platform)
    _reply(platform, 8002, SHARED_NUMBER, "C'est Moussa, je rappelle demain")

    # Not in either youth's file.
    referent = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    referent.add_cookies([_cookie_for(platform, staff_id=ids["referent"])])
    file_page = referent.new_page()
    file_page.goto(f"{platform.url}/pro/jeunes/{ids['brother']}")
    assert "je rappelle demain" not in file_page.content()
    referent.close()

    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, locale="fr-FR", java_script_enabled=javascript
    )
    context.add_cookies([_cookie_for(platform, staff_id=ids["supervisor"])])
    page = context.new_page()
    page.goto(f"{platform.url}/pro/equipe")
    page.get_by_role("link", name="1 SMS à rattacher à un dossier").click()
    page.get_by_role("heading", name="SMS à rattacher").wait_for()
    item = page.locator(".task", has_text="C'est Moussa, je rappelle demain")
    assert "•• •• •• •• 82" in item.inner_text()
    assert "Awa Diallo" in item.inner_text() and "Moussa Diallo" in item.inner_text()
    if javascript:
        results = Axe().run(page)
        assert results.violations_count == 0, results.generate_report()
    item.get_by_label("Moussa Diallo").check()
    item.get_by_role("button", name="Rattacher à ce jeune").click()
    page.get_by_text("Le SMS est dans la conversation du jeune.").wait_for()
    assert "Aucun SMS à rattacher." in page.content()

    page.goto(f"{platform.url}/pro/jeunes/{ids['brother']}")
    message = page.locator(".message", has_text="C'est Moussa, je rappelle demain")
    message.wait_for()
    assert "reçu par SMS" in message.inner_text()
    context.close()
