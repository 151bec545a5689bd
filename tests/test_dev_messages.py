"""/dev/messages, in development only: every SMS and email the platform sent or holds, why
it waits (quiet hours, until when) and "Envoyer maintenant"."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.app import create_app
from paris_avenir.config import Settings
from paris_avenir.db import get_session, transaction_scope
from paris_avenir.devtools import service
from paris_avenir.messaging import outbox
from paris_avenir.messaging.models import OutboxMessage, OutboxStatus
from paris_avenir.youths.models import Channel
from tests.factories import TEST_FERNET_KEY, create_youth
from tests.helpers import csrf_token, post_form

E164 = "+33639980012"
# A Tuesday at 23:00 in Paris: quiet hours until 09:00 on Wednesday.
NIGHT = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)
WEDNESDAY_NINE = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def queue_reminder(session: Session, *, now: datetime, not_before: datetime) -> OutboxMessage:
    message = outbox.enqueue(
        session,
        channel=Channel.SMS,
        recipient=E164,
        template="appointment_reminder",
        body_text="Rappel : rendez-vous demain a 10:00.",
        idempotency_key="test-reminder",
        now=now,
        not_before=not_before,
    )
    session.commit()
    return message


async def test_the_sign_in_code_sms_is_listed_with_its_text(
    client: httpx.AsyncClient, session: Session
) -> None:
    create_youth(session, first_name="Moussa", phone=E164)
    session.commit()
    await post_form(client, "/connexion", {"destination": "06 39 98 00 12"})
    page = await client.get("/dev/messages")
    assert page.status_code == 200
    html = page.text
    assert 'SMS à <bdi dir="ltr">+33639980012</bdi>' in html
    assert "sign_in_code" in html and "<strong>envoyé</strong>" in html
    # Its text comes back from the file backend (the outbox erased it once sent).
    assert re.search(r"<pre[^>]*>[^<]*\b\d{6}\b", html)


def test_a_message_held_at_night_says_until_when(session: Session) -> None:
    queue_reminder(session, now=NIGHT, not_before=WEDNESDAY_NINE)
    [shown] = service.list_messages(session, sms_file=outbox_dir_unused(), now=NIGHT)
    assert shown.held == service.Held("quiet_hours", WEDNESDAY_NINE)
    assert shown.can_send_now and shown.text == "Rappel : rendez-vous demain a 10:00."
    # The next morning it is simply due.
    [later] = service.list_messages(session, sms_file=outbox_dir_unused(), now=WEDNESDAY_NINE)
    assert later.held is None


def outbox_dir_unused() -> Path:
    return Path("/nonexistent/sms.jsonl")


async def test_the_page_says_why_and_send_now_sends_it(
    client: httpx.AsyncClient, session: Session, settings: Settings
) -> None:
    now = datetime.now(UTC)
    message = queue_reminder(session, now=now, not_before=now.replace(year=now.year + 1))
    html = (await client.get("/dev/messages")).text
    assert "Prévu pour le" in html and "Envoyer maintenant" in html
    # Without the CSRF token the form is refused, like every other.
    refused = await client.post(f"/dev/messages/{message.id}/envoyer")
    assert refused.status_code == 403
    sent = await post_form(client, f"/dev/messages/{message.id}/envoyer")
    assert sent.status_code == 303
    session.expire_all()
    assert session.get_one(OutboxMessage, message.id).status is OutboxStatus.SENT
    page = (await client.get(sent.headers["location"])).text
    assert "Message traité : sent." in page
    assert "Rappel : rendez-vous demain a 10:00." in settings.sms_file.read_text()
    # A second press finds nothing waiting.
    again = await post_form(client, f"/dev/messages/{message.id}/envoyer")
    assert (
        "Ce message n’était plus en attente." in (await client.get(again.headers["location"])).text
    )


@pytest.fixture
def prod_app(
    settings: Settings, engine: Engine, session: Session, session_factory: sessionmaker[Session]
) -> Iterator[FastAPI]:
    prod = settings.model_copy(update={"env": "prod", "encryption_keys": TEST_FERNET_KEY})
    application = create_app(prod, engine=engine, session_factory=session_factory)

    def test_session() -> Iterator[Session]:
        yield from transaction_scope(session)

    application.dependency_overrides[get_session] = test_session
    yield application


@pytest.fixture
async def prod_client(prod_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # https: prod cookies are Secure and __Host- prefixed.
    transport = httpx.ASGITransport(app=prod_app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        yield http


async def test_there_is_no_dev_page_in_prod(
    prod_app: FastAPI, prod_client: httpx.AsyncClient, session: Session
) -> None:
    assert not [route for route in prod_app.routes if getattr(route, "path", "").startswith("/dev")]
    message = queue_reminder(session, now=NIGHT, not_before=WEDNESDAY_NINE)
    assert (await prod_client.get("/dev/messages")).status_code == 404
    token = await csrf_token(prod_client)
    response = await prod_client.post(
        f"/dev/messages/{message.id}/envoyer", data={"csrftoken": token}
    )
    assert response.status_code == 404
    session.expire_all()
    assert session.scalar(select(OutboxMessage.status)) is OutboxStatus.QUEUED
