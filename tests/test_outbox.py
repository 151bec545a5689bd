"""The outbox delivers through real channels: SMTP on loopback, Brevo's HTTP API on
loopback, the development file; retries what can be retried, flags what cannot."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.messaging import outbox
from paris_avenir.messaging.channels import Channels, OutgoingEmail
from paris_avenir.messaging.channels.email_smtp import SmtpEmailSender
from paris_avenir.messaging.channels.sms_brevo import BrevoSmsSender
from paris_avenir.messaging.channels.sms_file import FileSmsSender
from paris_avenir.messaging.models import OutboxMessage, OutboxStatus, OutboxStatusEvent
from paris_avenir.youths.models import Channel, Youth
from tests.factories import create_outbox_message, create_youth
from tests.servers import BrevoSmsApi, SmtpServer

E164 = "+33639980042"
# A Wednesday, 10:00 in Paris: inside the sending window, whatever the machine's clock says.
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def channels_for(
    tmp_sms: Path, *, sms_api: BrevoSmsApi | None = None, smtp_url: str = "smtp://127.0.0.1:9"
) -> Channels:
    sms = (
        BrevoSmsSender(api_url=sms_api.url, api_key=BrevoSmsApi.API_KEY, sender="ParisAvenir")
        if sms_api
        else FileSmsSender(tmp_sms)
    )
    return Channels(
        sms=sms, email=SmtpEmailSender(smtp_url, sender="Paris avenir <pa@example.org>")
    )


def queue_sms(
    session: Session, youth: Youth, key: str = "test:1", *, now: datetime = NOW
) -> OutboxMessage:
    message = create_outbox_message(session, youth, recipient=E164, key=key, now=now)
    session.commit()
    return message


def queue_email(session: Session, youth: Youth, key: str = "mail:1") -> OutboxMessage:
    assert youth.email
    message = create_outbox_message(session, youth, channel=Channel.EMAIL, key=key, now=NOW)
    session.commit()
    return message


def status_of(session: Session, message: OutboxMessage) -> OutboxStatus:
    session.refresh(message)
    return message.status


def statuses(session: Session, message: OutboxMessage) -> list[OutboxStatus]:
    return list(
        session.scalars(
            select(OutboxStatusEvent.status)
            .where(OutboxStatusEvent.outbox_message_id == message.id)
            .order_by(OutboxStatusEvent.occurred_at, OutboxStatusEvent.created_at)
        )
    )


def test_the_same_key_never_queues_twice(session: Session) -> None:
    youth = create_youth(session, phone=E164)
    first = queue_sms(session, youth, "once")
    second = queue_sms(session, youth, "once")
    assert first.id == second.id
    assert len(session.scalars(select(OutboxMessage)).all()) == 1


def test_file_backend_writes_one_json_line_per_sms(
    session: Session, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    sms_file = tmp_path / "sms.jsonl"
    youth = create_youth(session, phone=E164)
    queue_sms(session, youth, "a")
    queue_sms(session, youth, "b")
    report = outbox.dispatch_due(session_factory, channels_for(sms_file), now=NOW)
    assert len(report.sent) == 2
    lines = [json.loads(line) for line in sms_file.read_text().splitlines()]
    assert [line["to"] for line in lines] == [E164, E164]
    assert lines[0]["text"] == "Paris avenir : bonjour."


def test_with_the_smtp_server_down_the_message_waits_then_leaves(
    session: Session, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    smtp = SmtpServer()  # not started yet: its port refuses connections
    youth = create_youth(session, email="awa.k@example.org")
    message = queue_email(session, youth)
    channels = channels_for(tmp_path, smtp_url=smtp.url)
    now = NOW

    report = outbox.dispatch_due(session_factory, channels, now=now)
    session.refresh(message)
    assert report.retried == [message.id]
    assert message.status is OutboxStatus.QUEUED
    assert message.next_attempt_at == now + timedelta(seconds=30)
    assert youth.email_unreachable_at is None  # a server outage is not the youth's fault

    smtp.start()
    try:
        # Not before its retry time…
        assert (
            outbox.dispatch_due(session_factory, channels, now=now + timedelta(seconds=10)).sent
            == []
        )
        report = outbox.dispatch_due(session_factory, channels, now=now + timedelta(seconds=31))
    finally:
        smtp.stop()
    assert report.sent == [message.id]
    assert status_of(session, message) is OutboxStatus.SENT
    assert len(smtp.inbox) == 1
    received = smtp.inbox[0]
    assert received["To"] == "awa.k@example.org"
    assert received.get_body(preferencelist=("html",)) is not None
    assert statuses(session, message) == [
        OutboxStatus.QUEUED,
        OutboxStatus.QUEUED,
        OutboxStatus.SENT,
    ]


def test_a_provider_500_is_retried_with_exponential_backoff(
    session: Session, session_factory: sessionmaker[Session], sms_api: BrevoSmsApi, tmp_path: Path
) -> None:
    youth = create_youth(session, phone=E164)
    message = queue_sms(session, youth)
    channels = channels_for(tmp_path, sms_api=sms_api)
    sms_api.next_statuses = [500, 500, 503]
    now = NOW
    delays = []
    for _ in range(3):
        outbox.dispatch_due(session_factory, channels, now=now)
        session.refresh(message)
        assert message.status is OutboxStatus.QUEUED
        assert message.next_attempt_at is not None
        delays.append(message.next_attempt_at - now)
        now = message.next_attempt_at
    assert delays == [timedelta(seconds=30), timedelta(seconds=60), timedelta(seconds=120)]
    report = outbox.dispatch_due(session_factory, channels, now=now)
    session.refresh(message)
    assert report.sent == [message.id] and message.status is OutboxStatus.SENT
    assert message.provider_message_id is not None
    assert len(sms_api.calls) == 4
    call = sms_api.calls[-1].payload
    assert call["recipient"] == "33639980042" and call["type"] == "transactional"
    assert call["unicodeEnabled"] is False


def test_a_permanent_error_is_not_retried_and_flags_the_youth(
    session: Session, session_factory: sessionmaker[Session], sms_api: BrevoSmsApi, tmp_path: Path
) -> None:
    youth = create_youth(session, phone=E164)
    message = queue_sms(session, youth)
    sms_api.next_statuses = [400]
    now = NOW
    report = outbox.dispatch_due(session_factory, channels_for(tmp_path, sms_api=sms_api), now=now)
    session.refresh(message)
    session.refresh(youth)
    assert report.failed == [message.id]
    assert message.status is OutboxStatus.FAILED and message.next_attempt_at is None
    assert youth.phone_unreachable_at is not None
    later = outbox.dispatch_due(
        session_factory, channels_for(tmp_path, sms_api=sms_api), now=now + timedelta(days=1)
    )
    assert later.sent == later.retried == later.failed == []
    assert len(sms_api.calls) == 1


def test_gives_up_after_the_last_attempt(
    session: Session, session_factory: sessionmaker[Session], sms_api: BrevoSmsApi, tmp_path: Path
) -> None:
    youth = create_youth(session, phone=E164)
    message = queue_sms(session, youth)
    sms_api.next_statuses = [500] * outbox.MAX_ATTEMPTS
    now = NOW
    for _ in range(outbox.MAX_ATTEMPTS):
        outbox.dispatch_due(session_factory, channels_for(tmp_path, sms_api=sms_api), now=now)
        now += timedelta(hours=1)  # every retry is due by then, and all within one day
    session.refresh(message)
    assert message.status is OutboxStatus.FAILED
    assert youth.phone_unreachable_at is None  # never proven wrong, only unreachable for now


def test_a_message_held_by_another_worker_is_not_sent_twice(
    session: Session, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    sms_file = tmp_path / "sms.jsonl"
    youth = create_youth(session, phone=E164)
    message = queue_sms(session, youth)
    now = NOW
    channels = channels_for(sms_file)
    assert outbox.send_one(session_factory, message.id, channels, now=now) is OutboxStatus.SENT
    assert outbox.send_one(session_factory, message.id, channels, now=now) is None
    assert len(sms_file.read_text().splitlines()) == 1


# --- Provider webhooks -----------------------------------------------------------------

WEBHOOK = "/webhooks/sms/brevo"


@pytest.fixture
def webhook_app(app: FastAPI) -> FastAPI:
    app.state.settings = app.state.settings.model_copy(update={"sms_webhook_token": "hook-secret"})
    return app


def sent_message(session: Session, youth: Youth, provider_id: str = "777") -> OutboxMessage:
    # Queued well before the receipts, which the webhook stamps with the real clock.
    message = queue_sms(session, youth, f"sent:{provider_id}", now=NOW - timedelta(days=60))
    message.status = OutboxStatus.SENT
    message.provider_message_id = provider_id
    session.commit()
    return message


async def test_webhooks_need_the_shared_secret(
    webhook_app: FastAPI, client: httpx.AsyncClient
) -> None:
    body = {"event": "delivered", "messageId": 777}
    assert (await client.post(WEBHOOK, json=body)).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await client.post(WEBHOOK, json=body, headers=wrong)).status_code == 401


async def test_webhooks_are_off_without_a_secret(client: httpx.AsyncClient) -> None:
    response = await client.post(WEBHOOK, json={}, headers={"Authorization": "Bearer x"})
    assert response.status_code == 404


async def test_a_late_receipt_never_undoes_delivered(
    webhook_app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    youth = create_youth(session, phone=E164)
    message = sent_message(session, youth)
    auth = {"Authorization": "Bearer hook-secret"}
    for event in ("delivered", "sent", "hard_bounce"):
        response = await client.post(WEBHOOK, json={"event": event, "messageId": 777}, headers=auth)
        assert response.status_code == 200
    session.refresh(message)
    session.refresh(youth)
    assert message.status is OutboxStatus.DELIVERED and message.delivered_at is not None
    assert youth.phone_unreachable_at is None
    assert statuses(session, message)[-1] is OutboxStatus.DELIVERED  # history keeps every receipt
    assert len(statuses(session, message)) == 4


async def test_a_hard_bounce_flags_the_number(
    webhook_app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    youth = create_youth(session, phone=E164)
    message = sent_message(session, youth, "888")
    response = await client.post(
        WEBHOOK,
        json={"event": "hard_bounce", "messageId": 888},
        headers={"Authorization": "Bearer hook-secret"},
    )
    assert response.status_code == 200
    session.refresh(message)
    session.refresh(youth)
    assert message.status is OutboxStatus.FAILED
    assert youth.phone_unreachable_at is not None


@pytest.mark.parametrize("answer", ["STOP", " stop ", "Arret"])
async def test_an_inbound_stop_opts_the_youth_out(
    webhook_app: FastAPI, client: httpx.AsyncClient, session: Session, answer: str
) -> None:
    youth = create_youth(session, phone=E164)
    other = create_youth(session, phone="+33639980043")
    session.commit()
    response = await client.post(
        WEBHOOK,
        json={"event": "reply", "from": "33639980042", "reply": answer},
        headers={"Authorization": "Bearer hook-secret"},
    )
    assert response.status_code == 200
    session.refresh(youth)
    session.refresh(other)
    assert youth.outreach_opted_out_at is not None
    assert other.outreach_opted_out_at is None


async def test_an_ordinary_reply_does_not_opt_out(
    webhook_app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    youth = create_youth(session, phone=E164)
    session.commit()
    await client.post(
        WEBHOOK,
        json={"event": "reply", "from": "33639980042", "reply": "merci, stop pas"},
        headers={"Authorization": "Bearer hook-secret"},
    )
    session.refresh(youth)
    assert youth.outreach_opted_out_at is None


def test_an_sms_the_provider_already_has_is_not_sent_again_on_retry(
    session: Session, session_factory: sessionmaker[Session], sms_api: BrevoSmsApi, tmp_path: Path
) -> None:
    """The provider took the SMS but its answer never came back (lost, or we crashed)."""
    youth = create_youth(session, phone=E164)
    message = queue_sms(session, youth)
    channels = channels_for(tmp_path, sms_api=sms_api)
    now = NOW
    sms_api.sent.append(
        {
            "phoneNumber": "33639980042",
            "messageId": 4242,
            "event": "sent",
            "tags": ["test", f"ref:{message.idempotency_key}"],
        }
    )
    message.attempt_count = 1  # the earlier attempt whose answer was lost
    session.commit()
    report = outbox.dispatch_due(session_factory, channels, now=now)
    session.refresh(message)
    assert report.sent == [message.id]
    assert message.provider_message_id == "4242"
    assert sms_api.calls == []  # the youth gets it once


def test_an_sms_lookup_that_fails_waits_instead_of_risking_a_duplicate(
    session: Session, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    youth = create_youth(session, phone=E164)
    message = queue_sms(session, youth)
    message.attempt_count = 1
    session.commit()
    down = BrevoSmsApi()  # never started: the provider cannot be asked
    report = outbox.dispatch_due(session_factory, channels_for(tmp_path, sms_api=down), now=NOW)
    session.refresh(message)
    assert report.retried == [message.id]
    assert message.status is OutboxStatus.QUEUED


def test_the_file_backend_finds_what_it_sent(tmp_path: Path) -> None:
    sender = FileSmsSender(tmp_path / "sms.jsonl")
    assert sender.find_sent(to=E164, reference="k1") is None
    provider_id = sender.send_sms(to=E164, text="bonjour", reference="k1", tag="t")
    assert sender.find_sent(to=E164, reference="k1") == provider_id
    assert sender.find_sent(to="+33600000000", reference="k1") is None


def test_an_email_keeps_its_message_id_on_every_attempt(smtp_server: SmtpServer) -> None:
    sender = SmtpEmailSender(smtp_server.url, sender="noreply@paris.fr")
    email = OutgoingEmail(to="a@example.org", subject="s", text="t", html=None, reference="r1")
    first = sender.send_email(email)
    again = sender.send_email(email)
    assert first == again == "<r1@paris-avenir.local>"
    assert [received["Message-ID"] for received in smtp_server.inbox] == [first, first]
