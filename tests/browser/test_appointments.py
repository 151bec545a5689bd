"""Issue 6's journey in Chromium at 360x640, with JavaScript on and off: book, move, cancel."""

from __future__ import annotations

from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.browser.conftest import DemoYouth, LiveServer, new_phone_context, sign_in_youth

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(("javascript", "number"), [(True, 11), (False, 15)], ids=["js", "no-js"])
def test_a_youth_books_moves_and_cancels(
    live_server: LiveServer, browser: Any, javascript: bool, number: int
) -> None:
    context = new_phone_context(browser, javascript=javascript)
    page = context.new_page()
    sign_in_youth(page, live_server, DemoYouth(number))
    page.get_by_role("link", name="Rendez-vous", exact=True).click()
    page.get_by_role("heading", name="Mes rendez-vous").wait_for()
    page.get_by_role("link", name="Rendez-vous avec votre référent").click()
    page.get_by_role("button", name="Confirmer le rendez-vous").wait_for()
    if javascript:
        assert Axe().run(page).violations_count == 0
    page.locator("input[name=creneau]").last.check()
    page.get_by_role("button", name="Confirmer le rendez-vous").click()
    page.get_by_text("C’est confirmé").wait_for()
    if javascript:
        assert Axe().run(page).violations_count == 0

    page.get_by_role("link", name="Déplacer le rendez-vous").click()
    page.get_by_role("button", name="Confirmer le rendez-vous").wait_for()
    page.locator("input[name=creneau]").nth(-2).check()
    page.get_by_role("button", name="Confirmer le rendez-vous").click()
    page.get_by_text("C’est confirmé").wait_for()

    page.get_by_text("Annuler le rendez-vous").click()
    page.get_by_role("button", name="Oui, annuler").click()
    page.get_by_text("Le rendez-vous est annulé.").wait_for()
    assert "Vous n’avez pas de rendez-vous prévu." in page.content()
    # The first slot was moved, the second cancelled: the youth's list tells them apart.
    assert "(déplacé)" in page.content() and "(annulé)" in page.content()
    context.close()
