"""A newcomer signs in as a demo youth with the code read on /dev/messages (development
only), with JavaScript on and off."""

from __future__ import annotations

import re
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.browser.conftest import DemoYouth, LiveServer, new_phone_context

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(("javascript", "number"), [(True, 24), (False, 28)], ids=["js", "no-js"])
def test_the_sign_in_code_shows_on_the_dev_messages_page(
    live_server: LiveServer, browser: Any, javascript: bool, number: int
) -> None:
    youth = DemoYouth(number)
    context = new_phone_context(browser, javascript=javascript)
    page = context.new_page()
    page.goto(live_server.url + "/connexion")
    page.get_by_label("Votre numéro de téléphone ou votre e-mail").fill(youth.phone_as_typed)
    # Other browser tests sign this demo youth in too: only an SMS sent after this tap counts
    # (the code leaves just after the response, so an older one could be read first).
    before = live_server.sms_count()
    page.get_by_role("button", name="Recevoir un code", exact=True).click()
    page.get_by_role("heading", name="Entrez le code reçu").wait_for()
    sent = live_server.last_sms_to(youth.phone, after=before)  # the worker has sent it

    messages = context.new_page()
    messages.goto(live_server.url + "/dev/messages")
    # Other messages to this youth may be listed too (at night, held until 09:00).
    item = (
        messages.locator(".dev-message")
        .filter(has_text=youth.phone)
        .filter(has_text="sign_in_code")
        .first
    )
    assert "envoyé" in item.inner_text()
    text = item.locator("pre").inner_text()
    assert text == sent
    results = Axe().run(messages) if javascript else None

    match = re.search(r"\b(\d{6})\b", text)
    assert match
    page.get_by_label("Code à 6 chiffres").fill(match.group(1))
    page.get_by_role("button", name="Valider", exact=True).click()
    page.get_by_role("heading", name=f"Bonjour {youth.first_name}").wait_for()
    context.close()
    if results is not None:
        assert results.violations_count == 0, results.generate_report()
