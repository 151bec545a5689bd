"""A youth whose sign-in is more than 90 days old is asked to sign in again, and told why,
in a real browser."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from paris_avenir.auth.models import UserSession
from paris_avenir.db import utcnow
from paris_avenir.youths.models import Youth
from tests.browser.conftest import DemoYouth, LiveServer, new_phone_context, sign_in_youth

pytestmark = pytest.mark.browser


def test_after_90_days_the_youth_signs_in_again_and_is_told_why(
    live_server: LiveServer, browser: Any
) -> None:
    youth = DemoYouth(21)
    context = new_phone_context(browser)
    page = context.new_page()
    sign_in_youth(page, live_server, youth)
    assert page.url.endswith("/mon-espace")
    # 91 days later, with a visit every day (the session's expiry slid each time).
    with live_server.session_factory.begin() as session:
        session.execute(
            update(UserSession)
            .where(UserSession.youth_id == Youth.id, Youth.phone == youth.phone)
            .values(
                authenticated_at=utcnow() - timedelta(days=91),
                expires_at=utcnow() + timedelta(days=89),
            )
        )
    page.goto(live_server.url + "/mon-espace")
    assert page.url.startswith(live_server.url + "/connexion")
    notice = page.get_by_role("status").filter(has_text="Pour votre sécurité")
    assert "reconnectez-vous : votre connexion a plus de 90 jours" in notice.inner_text()
    # Signing in again works at once.
    sign_in_youth(page, live_server, youth)
    assert page.url.endswith("/mon-espace")
    context.close()
