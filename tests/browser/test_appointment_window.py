"""Issue 15 in Chromium at 360x640, with JavaScript on and off: a youth books the soonest
slot offered at the guichet and can still move it online; the picker pages ("Plus tard"),
names today and tomorrow, and says the policy's cut-offs before confirming; the next
appointment is at the top of the dashboard. axe-core finds nothing on these pages."""

from __future__ import annotations

import re
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.browser.conftest import DemoYouth, LiveServer, new_phone_context, sign_in_youth

pytestmark = pytest.mark.browser
COUNTER = "Rendez-vous au guichet (aide pour vos papiers)"
WEEKDAY = r"(lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche) \d{1,2} \w+ \d{4}"


def no_violations(page: Any, javascript: bool) -> None:
    if javascript:
        results = Axe().run(page)
        assert results.violations_count == 0, results.generate_report()


@pytest.mark.parametrize(("javascript", "number"), [(True, 19), (False, 24)], ids=["js", "no-js"])
def test_the_soonest_slot_offered_can_still_be_moved(
    live_server: LiveServer, browser: Any, javascript: bool, number: int
) -> None:
    context = new_phone_context(browser, javascript=javascript)
    page = context.new_page()
    sign_in_youth(page, live_server, DemoYouth(number))
    # By address: the menu is another part of the issue.
    page.goto(live_server.url + "/mon-espace/rendez-vous")
    page.get_by_role("link", name=COUNTER).click()
    confirm = page.get_by_role("button", name="Confirmer le rendez-vous")
    confirm.wait_for()
    # Told before confirming, with the admin's numbers.
    rules = "Vous pourrez déplacer ce rendez-vous en ligne jusqu’à 24 heures avant, et l’annuler jusqu’à 4 heures avant."
    assert page.get_by_text(rules).is_visible()
    legends = page.locator("legend").all_inner_texts()
    assert legends and all(re.search(WEEKDAY, legend) for legend in legends)
    assert not any(legend.startswith("Aujourd’hui") for legend in legends)  # inside the 24 h
    no_violations(page, javascript)

    # 14 days a page, then "Plus tard", and back.
    page.get_by_role("link", name="Plus tard").click()
    page.get_by_role("link", name="Plus tôt").wait_for()
    assert page.locator("input[name=creneau]").count() > 0
    no_violations(page, javascript)
    page.get_by_role("link", name="Plus tôt").click()
    page.get_by_role("link", name="Plus tard").wait_for()

    # The soonest slot offered now.
    page.locator("input[name=creneau]").first.check()
    confirm.click()
    page.get_by_text("C’est confirmé").wait_for()
    assert page.get_by_text("Vous pouvez le déplacer en ligne jusqu’au").is_visible()
    when = page.locator("dd").first.inner_text()
    assert re.search(WEEKDAY + r" à \d\d:\d\d", when), when
    no_violations(page, javascript)

    # On the dashboard, at the top.
    page.goto(live_server.url + "/mon-espace")
    block = page.get_by_role("region", name="Votre prochain rendez-vous")
    block.wait_for()
    assert when in block.inner_text()
    no_violations(page, javascript)

    # It can still be moved online: to the next slot offered.
    block.get_by_role("link").click()
    page.get_by_role("link", name="Déplacer le rendez-vous").click()
    page.get_by_role("button", name="Confirmer le rendez-vous").wait_for()
    page.locator("input[name=creneau]").nth(1).check()
    page.get_by_role("button", name="Confirmer le rendez-vous").click()
    page.get_by_text("C’est confirmé").wait_for()
    assert page.locator("dd").first.inner_text() != when

    # And cancelled: nothing left for the next run.
    page.get_by_text("Annuler le rendez-vous").click()
    page.get_by_role("button", name="Oui, annuler").click()
    page.get_by_text("Le rendez-vous est annulé.").wait_for()
    context.close()
