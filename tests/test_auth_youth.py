"""A youth signs in with a one-time code: by SMS, by email, and safely."""

from __future__ import annotations

import logging
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from paris_avenir.audit.models import AuditEvent
from paris_avenir.auth import codes
from paris_avenir.auth.models import SignInAttempt, UserSession
from paris_avenir.config import Settings
from paris_avenir.db import utcnow
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.youths.models import Youth
from tests import factories
from tests.factories import create_youth
from tests.helpers import code_in, last_sms, post_form, sms_count
from tests.servers import SmtpServer

PHONE = "06 39 98 00 12"
E164 = "+33639980012"


@pytest.fixture
def youth(session: Session) -> Youth:
    return create_youth(session, first_name="Moussa", phone=E164, email="moussa.t@example.org")


async def request_code(client: httpx.AsyncClient, destination: str) -> httpx.Response:
    return await post_form(client, "/connexion", {"destination": destination})


async def test_sign_in_by_phone_end_to_end(
    client: httpx.AsyncClient, settings: Settings, youth: Youth, session: Session
) -> None:
    response = await request_code(client, PHONE)
    assert response.status_code == 303
    assert response.headers["location"] == "/connexion/code"
    sms = last_sms(settings)
    assert sms["to"] == E164
    code = code_in(sms["text"])

    page = await client.get("/connexion/code")
    assert "+336•••••12" in page.text
    response = await post_form(client, "/connexion/code", {"code": code})
    assert response.status_code == 303
    assert response.headers["location"] == "/mon-espace"
    space = await client.get("/mon-espace")
    assert space.status_code == 200
    assert "Bonjour Moussa" in space.text
    session.refresh(youth)
    assert youth.activated_at is not None and youth.last_activity_at is not None


async def test_sign_in_by_email_reaches_a_real_smtp_server(
    app: FastAPI,
    client: httpx.AsyncClient,
    settings: Settings,
    youth: Youth,
    smtp_server: SmtpServer,
) -> None:
    from paris_avenir.messaging.channels.email_smtp import SmtpEmailSender

    app.state.channels.email = SmtpEmailSender(smtp_server.url, sender=settings.mail_from)
    response = await request_code(client, "  Moussa.T@Example.org ")
    assert response.status_code == 303
    assert len(smtp_server.inbox) == 1
    email = smtp_server.inbox[0]
    assert email["To"] == "moussa.t@example.org"
    assert "code" in email["Subject"] and not code_in_subject(email["Subject"])
    assert email.is_multipart()  # plain text and HTML
    code = code_in(smtp_server.text_of(email))
    response = await post_form(client, "/connexion/code", {"code": code})
    assert response.headers["location"] == "/mon-espace"


def code_in_subject(subject: str) -> bool:
    return any(char.isdigit() for char in subject)


async def test_unknown_number_gets_the_same_answer_and_nothing_is_sent(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, youth: Youth, session: Session
) -> None:
    known = await request_code(client, PHONE)
    known_page = await client.get("/connexion/code")
    client.cookies.delete("tentative_connexion")  # a new attempt, same browser
    sent_before = sms_count(settings)
    unknown = await request_code(client, "06 39 98 01 12")  # same masked form, nobody's number
    unknown_page = await client.get("/connexion/code")

    assert (unknown.status_code, unknown.headers["location"], unknown.content) == (
        known.status_code,
        known.headers["location"],
        known.content,
    )
    assert unknown_page.status_code == known_page.status_code
    assert unknown_page.text == known_page.text
    assert sms_count(settings) == sent_before
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1
    # The unknown attempt behaves like a real one: codes are refused, tries are counted.
    response = await post_form(client, "/connexion/code", {"code": "000000"})
    assert response.status_code == 422 and "Essais restants : 4" in response.text


async def test_unknown_email_gets_the_same_answer(client: httpx.AsyncClient, youth: Youth) -> None:
    known = await request_code(client, "moussa.t@example.org")
    known_page = (await client.get("/connexion/code")).text
    client.cookies.delete("tentative_connexion")  # a new attempt, same browser
    unknown = await request_code(client, "mhidden.t@example.org")
    unknown_page = (await client.get("/connexion/code")).text
    assert unknown.status_code == known.status_code == 303
    assert unknown_page.replace("m•••", "X") == known_page.replace("m•••", "X")


async def test_five_wrong_codes_void_the_attempt(
    client: httpx.AsyncClient, settings: Settings, youth: Youth
) -> None:
    await request_code(client, PHONE)
    good = code_in(last_sms(settings)["text"])
    wrong = "000000" if good != "000000" else "111111"
    for left in (4, 3, 2, 1):
        response = await post_form(client, "/connexion/code", {"code": wrong})
        assert f"Essais restants : {left}" in response.text
    response = await post_form(client, "/connexion/code", {"code": wrong})
    assert "Trop d’essais avec ce code" in response.text
    # The sixth try, even with the right code, meets a void attempt.
    response = await post_form(client, "/connexion/code", {"code": good})
    assert response.status_code == 422
    assert "Trop d’essais avec ce code" in response.text
    assert (await client.get("/mon-espace")).status_code == 303


async def test_four_wrong_codes_still_leave_the_right_one_working(
    client: httpx.AsyncClient, settings: Settings, youth: Youth
) -> None:
    await request_code(client, PHONE)
    good = code_in(last_sms(settings)["text"])
    for _ in range(4):
        await post_form(
            client, "/connexion/code", {"code": "99999" + str((int(good[-1]) + 1) % 10)}
        )
    response = await post_form(client, "/connexion/code", {"code": good})
    assert response.headers["location"] == "/mon-espace"


async def test_a_code_works_once(
    client: httpx.AsyncClient, settings: Settings, youth: Youth
) -> None:
    await request_code(client, PHONE)
    code = code_in(last_sms(settings)["text"])
    assert (await post_form(client, "/connexion/code", {"code": code})).status_code == 303
    client.cookies.delete("session")
    again = await post_form(client, "/connexion/code", {"code": code})
    assert again.status_code == 422


def test_a_code_expires_after_ten_minutes(session: Session, youth: Youth) -> None:
    now = utcnow()
    request = factories.request_code(
        session, secret_key="k" * 40, raw_destination=PHONE, ip_address="127.0.0.1", now=now
    )
    assert request.outbox_message is not None
    code = code_in(request.outbox_message.body_text)
    late = codes.check_code(
        session,
        secret_key="k" * 40,
        attempt_token=request.attempt_token,
        code=code,
        now=now + timedelta(minutes=10, seconds=1),
    )
    assert late.outcome is codes.CodeOutcome.EXPIRED
    in_time = codes.check_code(
        session,
        secret_key="k" * 40,
        attempt_token=request.attempt_token,
        code=code,
        now=now + timedelta(minutes=9),
    )
    assert in_time.outcome is codes.CodeOutcome.ACCEPTED


def test_codes_are_stored_hashed(session: Session, youth: Youth) -> None:
    request = factories.request_code(
        session, secret_key="k" * 40, raw_destination=PHONE, ip_address="127.0.0.1"
    )
    assert request.outbox_message is not None
    code = code_in(request.outbox_message.body_text)
    attempt = session.scalars(select(SignInAttempt)).one()
    assert code not in attempt.code_hash and E164 not in attempt.destination_hash


async def test_a_burst_of_code_requests_gets_429(client: httpx.AsyncClient, youth: Youth) -> None:
    for _ in range(3):
        assert (await request_code(client, PHONE)).status_code == 303
    response = await request_code(client, PHONE)
    assert response.status_code == 429
    assert "Trop de codes demandés" in response.text


async def test_one_address_asking_for_many_numbers_gets_429(client: httpx.AsyncClient) -> None:
    # A shelter's Wi-Fi is shared by many: the limit per address is far above 3 per number.
    most = codes.IP_LIMITS[0][1]
    assert most >= 100
    for number in range(most):
        response = await request_code(client, f"06 39 98 {1000 + number}")
        assert response.status_code == 303
    assert (await request_code(client, "06 39 98 19 99")).status_code == 429


async def test_a_wrong_entry_is_explained_in_french_and_kept(client: httpx.AsyncClient) -> None:
    response = await request_code(client, "06 12")
    assert response.status_code == 422
    assert "Ce n’est pas un numéro de téléphone ou un e-mail" in response.text
    assert 'value="06 12"' in response.text
    assert 'aria-invalid="true"' in response.text


async def test_when_the_sms_provider_fails_the_email_code_is_offered(
    app: FastAPI,
    client: httpx.AsyncClient,
    settings: Settings,
    youth: Youth,
    smtp_server: SmtpServer,
    sms_api: object,
) -> None:
    from paris_avenir.messaging.channels.email_smtp import SmtpEmailSender
    from paris_avenir.messaging.channels.sms_brevo import BrevoSmsSender
    from tests.servers import BrevoSmsApi

    assert isinstance(sms_api, BrevoSmsApi)
    sms_api.next_statuses = [500]
    app.state.channels.sms = BrevoSmsSender(
        api_url=sms_api.url, api_key=BrevoSmsApi.API_KEY, sender="ParisAvenir"
    )
    app.state.channels.email = SmtpEmailSender(smtp_server.url, sender=settings.mail_from)

    response = await request_code(client, PHONE)
    assert response.status_code == 303  # never a 500
    page = await client.get("/connexion/code")
    assert "Recevoir le code par e-mail" in page.text
    response = await post_form(client, "/connexion/code/email")
    assert response.status_code == 200
    assert "un nouveau code vient d’y partir" in response.text
    code = code_in(smtp_server.text_of(smtp_server.inbox[-1]))
    assert (await post_form(client, "/connexion/code", {"code": code})).headers[
        "location"
    ] == "/mon-espace"


async def test_session_id_changes_at_sign_in_and_sign_out_kills_it(
    client: httpx.AsyncClient, settings: Settings, youth: Youth, session: Session
) -> None:
    await request_code(client, PHONE)
    await post_form(client, "/connexion/code", {"code": code_in(last_sms(settings)["text"])})
    first = client.cookies.get("session")
    assert first
    await request_code(client, PHONE)
    await post_form(client, "/connexion/code", {"code": code_in(last_sms(settings)["text"])})
    second = client.cookies.get("session")
    assert second and second != first

    response = await post_form(client, "/deconnexion")
    assert response.status_code == 303
    assert "session" not in client.cookies
    client.cookies.set("session", second)
    assert (await client.get("/mon-espace")).status_code == 303
    client.cookies.set("session", first)
    assert (await client.get("/mon-espace")).status_code == 303
    assert (
        session.scalar(
            select(func.count()).select_from(UserSession).where(UserSession.revoked_at.is_(None))
        )
        == 0
    )


async def test_the_session_cookie_is_httponly_and_lax(
    client: httpx.AsyncClient, settings: Settings, youth: Youth
) -> None:
    await request_code(client, PHONE)
    response = await post_form(
        client, "/connexion/code", {"code": code_in(last_sms(settings)["text"])}
    )
    cookie = next(
        value
        for key, value in response.headers.multi_items()
        if key == "set-cookie" and value.startswith("session=")
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie


async def test_signed_in_pages_need_a_session(client: httpx.AsyncClient) -> None:
    response = await client.get("/mon-espace")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/connexion?suite=")


async def test_no_phone_number_or_code_in_logs_or_audit(
    client: httpx.AsyncClient,
    settings: Settings,
    youth: Youth,
    session: Session,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await request_code(client, PHONE)
    code = code_in(last_sms(settings)["text"])
    await post_form(client, "/connexion/code", {"code": "000000" if code != "000000" else "111111"})
    await post_form(client, "/connexion/code", {"code": code})
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in (E164, "0639980012", "39980012", code):
        assert secret not in logged
    audit_text = " ".join(str(event.detail) for event in session.scalars(select(AuditEvent)))
    assert E164 not in audit_text and code not in audit_text


async def test_signed_in_pages_stay_out_of_every_cache(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    from tests.helpers import sign_in_as

    sign_in_as(client, app, session, youth=youth)
    for page in ("/mon-espace", "/mon-espace/acces"):
        response = await client.get(page)
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        assert 'historyCacheSize":0' in response.text  # nor in htmx's history snapshots
