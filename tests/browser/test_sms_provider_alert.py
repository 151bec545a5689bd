"""The operator's alert in the browser: when the SMS provider refuses our requests (a bad
sender or key), the admin sees it on the SMS texts page, with no youth named, and it goes
once the messages have left."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe

from paris_avenir.messaging import outbox
from paris_avenir.messaging.channels import ProviderRefusedRequest
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.youths.models import Channel
from tests.browser.conftest import LiveServer

pytestmark = pytest.mark.browser

PHONE = "+33639981177"


def test_the_admin_sees_that_the_sms_provider_refuses_our_requests(
    live_server: LiveServer, browser: Any, admin_cookies: list[Any]
) -> None:
    later = datetime(2099, 1, 1, tzinfo=UTC)  # never due while this test runs
    with live_server.session_factory.begin() as session:
        message = outbox.enqueue(
            session,
            channel=Channel.SMS,
            recipient=PHONE,
            template="test",
            body_text="Paris avenir : bonjour.",
            idempotency_key="browser:provider-alert",
        )
        message.last_error = str(ProviderRefusedRequest("SMS 400 invalid_parameter"))
        message.next_attempt_at = later
        message_id = message.id
    try:
        for width in (360, 1280):
            desk = browser.new_context(viewport={"width": width, "height": 800}, locale="fr-FR")
            desk.add_cookies(admin_cookies)
            page = desk.new_page()
            page.goto(live_server.url + "/pro/admin/messages")
            alert = page.get_by_role("alert")
            assert "Le fournisseur SMS refuse nos envois." in alert.inner_text()
            assert "1 SMS attend." in alert.inner_text()
            assert "personne n’est marqué injoignable" in alert.inner_text()
            assert "06 39 98" not in page.content() and "639981177" not in page.content()
            results = Axe().run(page)
            assert results.violations_count == 0, results.generate_report()
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            desk.close()
    finally:
        with live_server.session_factory.begin() as session:
            session.delete(session.get_one(OutboxMessage, message_id))
    desk = browser.new_context(locale="fr-FR")
    desk.add_cookies(admin_cookies)
    page = desk.new_page()
    page.goto(live_server.url + "/pro/admin/messages")
    assert page.get_by_role("alert").count() == 0
    desk.close()
