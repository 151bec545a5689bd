"""The one-click unsubscribe link of an outreach email, opened in Chromium: the GET shows a
page with a button (no opt-out yet), the button stops outreach emails, and the youth sees it
on their profile page."""

from __future__ import annotations

from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from sqlalchemy import select

from paris_avenir.messaging import unsubscribe
from paris_avenir.youths.models import Youth
from tests.browser.conftest import DemoYouth, LiveServer, new_phone_context, sign_in_youth

pytestmark = pytest.mark.browser


def test_the_unsubscribe_link_asks_then_the_profile_shows_it(
    live_server: LiveServer, browser: Any
) -> None:
    demo_youth = DemoYouth(26)
    with live_server.session_factory() as session:
        youth = session.scalars(select(Youth).where(Youth.phone == demo_youth.phone)).one()
        assert youth.outreach_email_opted_out_at is None
        youth_id = youth.id
    link = unsubscribe.link(
        youth_id, secret_key=live_server.settings.secret_key, base_url=live_server.url
    )
    context = new_phone_context(browser)
    page = context.new_page()
    page.goto(link)
    page.get_by_role("heading", name="Ne plus recevoir ces messages").wait_for()
    assert Axe().run(page).violations_count == 0
    with live_server.session_factory() as session:
        assert session.get_one(Youth, youth_id).outreach_email_opted_out_at is None  # GET only
    page.get_by_role("button", name="Ne plus recevoir ces e-mails").click()
    page.get_by_role("heading", name="C’est fait").wait_for()
    with live_server.session_factory() as session:
        assert session.get_one(Youth, youth_id).outreach_email_opted_out_at is not None

    sign_in_youth(page, live_server, demo_youth)
    page.goto(live_server.url + "/mon-espace/profil")
    choice = page.get_by_label("Je ne veux plus recevoir ces messages par e-mail.")
    assert choice.is_checked()
    assert page.get_by_text("Vous avez arrêté ces e-mails le").is_visible()
    # Only the emails: the other outreach messages are still on.
    assert not page.get_by_label(
        "Je ne veux plus recevoir de messages pour prendre de mes nouvelles."
    ).is_checked()
    context.close()
