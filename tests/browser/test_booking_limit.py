"""At the limit of upcoming appointments, the youth reads why in Chromium and finds the
appointment they hold, to move or cancel it."""

from __future__ import annotations

from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from sqlalchemy import select

from paris_avenir.auth import sessions
from paris_avenir.auth.models import AuthMethod
from paris_avenir.youths.models import Youth
from tests.browser.conftest import DemoYouth, LiveServer, new_phone_context

pytestmark = pytest.mark.browser

# A demo youth with one upcoming appointment with their référent (the limit is 1), whom no
# other browser test signs in.
HOLDER = DemoYouth(22)


def _signed_in_context(live_server: LiveServer, browser: Any, *, javascript: bool) -> Any:
    """A phone already signed in (a server-side session: sign-in codes are rate-limited)."""
    with live_server.session_factory.begin() as session:
        youth_id = session.scalars(select(Youth.id).where(Youth.phone == HOLDER.phone)).one()
        started = sessions.start_session(session, youth_id=youth_id, method=AuthMethod.CODE)
    context = new_phone_context(browser, javascript=javascript)
    context.add_cookies(
        [
            {
                "name": live_server.settings.session_cookie_name,
                "value": started.token,
                "url": live_server.url,
            }
        ]
    )
    return context


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_the_youth_sees_the_limit_and_the_appointment_they_hold(
    live_server: LiveServer, browser: Any, javascript: bool
) -> None:
    context = _signed_in_context(live_server, browser, javascript=javascript)
    page = context.new_page()
    page.goto(live_server.url + "/mon-espace/rendez-vous")
    held = page.locator(".request-list a").first.inner_text()
    page.get_by_role("link", name="Rendez-vous avec votre référent").click()
    page.get_by_role("alert").get_by_text(
        "Vous avez déjà 1 rendez-vous de ce type à venir : c’est le maximum."
    ).wait_for()
    assert page.get_by_role("button", name="Confirmer le rendez-vous").count() == 0
    page.get_by_role("heading", name="Vos rendez-vous à venir").wait_for()
    if javascript:
        assert Axe().run(page).violations_count == 0
    page.get_by_role("link", name=held).click()
    page.get_by_role("link", name="Déplacer le rendez-vous").wait_for()
    context.close()
