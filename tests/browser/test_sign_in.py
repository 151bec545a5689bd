"""Sign-in journeys in a real browser at 360x640, with JavaScript on and off."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import (
    JOURNEY_STAFF,
    DemoYouth,
    LiveServer,
    new_phone_context,
    sign_in_staff,
    sign_in_youth,
)

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_demo_youth_signs_in_by_phone(
    live_server: LiveServer, browser: Any, javascript: bool
) -> None:
    context = new_phone_context(browser, javascript=javascript)
    page = context.new_page()
    sign_in_youth(page, live_server)
    assert page.url.endswith("/mon-espace")
    assert page.get_by_role("heading", name="Votre référent").is_visible()
    page.get_by_role("button", name="Se déconnecter").click()
    page.get_by_role("heading", name="Se connecter").wait_for()
    page.goto(live_server.url + "/mon-espace")
    assert page.url.startswith(live_server.url + "/connexion")
    context.close()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_demo_youth_signs_in_by_email(
    live_server: LiveServer, browser: Any, javascript: bool
) -> None:
    context = new_phone_context(browser, javascript=javascript)
    page = context.new_page()
    sign_in_youth(page, live_server, DemoYouth(2), by_email=True)
    assert page.url.endswith("/mon-espace")
    context.close()


def test_a_wrong_code_is_explained_and_focusable(live_server: LiveServer, browser: Any) -> None:
    context = new_phone_context(browser)
    page = context.new_page()
    page.goto(live_server.url + "/connexion")
    page.get_by_label("Votre numéro de téléphone ou votre e-mail").fill(DemoYouth(4).phone_as_typed)
    page.get_by_role("button", name="Recevoir un code").click()
    page.get_by_label("Code à 6 chiffres").fill("000000")
    page.get_by_role("button", name="Valider").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "Ce code n’est pas le bon" in alert.inner_text()
    assert page.get_by_label("Code à 6 chiffres").get_attribute("aria-invalid") == "true"
    context.close()


def test_a_staff_member_signs_in_with_password_and_totp(
    live_server: LiveServer, browser: Any
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    page = context.new_page()
    sign_in_staff(page, live_server, JOURNEY_STAFF)
    assert page.get_by_role("table").first.is_visible()
    context.close()
