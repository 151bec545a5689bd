"""Issue 18 part 5 in Chromium at 360x640, JavaScript on and off: the youth finds
"messages discrets" chosen on their profile, switches to "messages détaillés", and finds
that choice still made after a reload and in "Mes données"."""

from __future__ import annotations

from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from sqlalchemy import select

from paris_avenir.youths.models import Youth
from tests.browser.conftest import DemoYouth, LiveServer, new_phone_context, sign_in_youth

pytestmark = pytest.mark.browser


def detailed_messages(live: LiveServer, youth: DemoYouth) -> bool:
    with live.session_factory() as session:
        return bool(
            session.scalar(select(Youth.detailed_messages).where(Youth.phone == youth.phone))
        )


@pytest.mark.parametrize(("javascript", "number"), [(True, 19), (False, 23)])
def test_the_youth_chooses_detailed_messages_on_their_profile(
    live_server: LiveServer, browser: Any, javascript: bool, number: int
) -> None:
    youth = DemoYouth(number)
    context = new_phone_context(browser, javascript=javascript)
    page = context.new_page()
    sign_in_youth(page, live_server, youth)
    page.goto(live_server.url + "/mon-espace/profil")
    section = page.get_by_role("region", name="Ce que disent mes SMS et e-mails")
    discreet = section.get_by_role("radio", name="Messages discrets")
    detailed = section.get_by_role("radio", name="Messages détaillés")
    # Discreet until the youth says otherwise.
    assert discreet.is_checked() and not detailed.is_checked()
    assert not detailed_messages(live_server, youth)
    if javascript:
        results = Axe().run(page)
        assert results.violations_count == 0, results.generate_report()

    detailed.check()
    section.get_by_role("button", name="Enregistrer mon choix").click()
    page.get_by_text("C’est enregistré.").wait_for()
    assert detailed_messages(live_server, youth)

    page.reload()
    section = page.get_by_role("region", name="Ce que disent mes SMS et e-mails")
    assert section.get_by_role("radio", name="Messages détaillés").is_checked()
    assert not section.get_by_role("radio", name="Messages discrets").is_checked()
    # Narrow phone: the choice fits the screen, nothing scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    # The youth reads their choice among their data too.
    page.goto(live_server.url + "/mon-espace/donnees")
    row = page.locator("dt", has_text="Messages détaillés")
    assert row.count() == 1
    assert row.locator("xpath=following-sibling::dd[1]").inner_text().strip() == "Oui"
    context.close()
