"""A youth's session ends 90 days after the sign-in, however often they come back (it still
ends sooner after 90 days without a visit); the sign-in page then says why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import time_machine
from fastapi import FastAPI
from sqlalchemy.orm import Session

from paris_avenir.auth import sessions
from paris_avenir.auth.models import AuthMethod
from paris_avenir.config import Settings
from paris_avenir.db import utcnow
from tests.factories import create_youth
from tests.helpers import code_in, last_sms, post_form, sign_in_as

SIGNED_IN = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TOO_OLD = "Pour votre sécurité, reconnectez-vous"


async def sign_in_by_code(client: httpx.AsyncClient, settings: Settings, phone: str) -> None:
    """As the youth does it: number, code from the SMS. The server sets the cookie."""
    assert (await post_form(client, "/connexion", {"destination": phone})).status_code == 303
    code = code_in(last_sms(settings)["text"])
    response = await post_form(client, "/connexion/code", {"code": code})
    assert response.status_code == 303 and response.headers["location"] == "/mon-espace"


async def test_a_youth_signs_in_again_90_days_after_the_sign_in_however_active(
    client: httpx.AsyncClient, settings: Settings, session: Session
) -> None:
    youth = create_youth(session, first_name="Moussa")
    session.commit()
    assert youth.phone
    with time_machine.travel(SIGNED_IN, tick=False) as traveller:
        await sign_in_by_code(client, settings, youth.phone)
        # Every week a visit: the idle timeout never comes near.
        for day in range(0, 90, 7):
            traveller.move_to(SIGNED_IN + timedelta(days=day))
            assert (await client.get("/mon-espace")).status_code == 200
        traveller.move_to(SIGNED_IN + timedelta(days=89, hours=23))
        assert (await client.get("/mon-espace")).status_code == 200

        # The browser still holds the cookie (it outlives the session to tell why), the
        # server says no.
        traveller.move_to(SIGNED_IN + timedelta(days=90, minutes=1))
        assert client.cookies.get(settings.session_cookie_name)
        response = await client.get("/mon-espace")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/connexion")
        page = await client.get(response.headers["location"])
        assert page.status_code == 200 and TOO_OLD in page.text
        # Said once: the dead cookie is gone.
        assert client.cookies.get(settings.session_cookie_name) is None
        assert TOO_OLD not in (await client.get("/connexion")).text

        # Signing in again opens 90 new days.
        await sign_in_by_code(client, settings, youth.phone)
        assert (await client.get("/mon-espace")).status_code == 200


async def test_a_revoked_or_signed_out_session_is_not_called_too_old(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    youth = create_youth(session)
    with time_machine.travel(SIGNED_IN, tick=False) as traveller:
        token = sign_in_as(client, app, session, youth=youth)
        sessions.revoke_code_sessions_for_youth(session, youth.id, now=utcnow())
        session.commit()
        traveller.move_to(SIGNED_IN + timedelta(days=100))
        assert sessions.ended_by_max_lifetime(session, token) is False
        assert TOO_OLD not in (await client.get("/connexion")).text


def test_a_session_stays_capped_at_90_days_after_the_sign_in(session: Session) -> None:
    youth = create_youth(session)
    started = sessions.start_session(
        session, youth_id=youth.id, method=AuthMethod.CODE, now=SIGNED_IN
    )
    for day in (30, 60, 89):
        found = sessions.find_active(session, started.token, now=SIGNED_IN + timedelta(days=day))
        assert found is not None
        assert found.expires_at == SIGNED_IN + sessions.YOUTH_MAX_LIFETIME
    assert sessions.find_active(session, started.token, now=SIGNED_IN + timedelta(days=90)) is None
    assert sessions.ended_by_max_lifetime(
        session, started.token, now=SIGNED_IN + timedelta(days=90)
    )


def test_a_session_that_slid_past_90_days_before_the_cap_ends_too(session: Session) -> None:
    youth = create_youth(session)
    started = sessions.start_session(
        session, youth_id=youth.id, method=AuthMethod.CODE, now=SIGNED_IN
    )
    # As main left it: expiry pushed 90 days past each visit.
    started.record.expires_at = SIGNED_IN + timedelta(days=170)
    now = SIGNED_IN + timedelta(days=95)
    assert sessions.find_active(session, started.token, now=now) is None
    assert sessions.ended_by_max_lifetime(session, started.token, now=now)
