"""The SMS adapter against Brevo's published API definition (tests/brevo/): our requests
validate against its schema, its examples read as they should, every event type of the
statistics lookup means what it says (a rejected SMS is failed, not sent), a 400 is read by
its body (a request error flags nobody and alerts the operator; an invalid number flags the
youth), batched webhooks and Basic authentication are accepted, STOP is read leniently."""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.app import create_app
from paris_avenir.audit.models import AuditEvent
from paris_avenir.config import Settings
from paris_avenir.db import create_database_engine, make_session_factory
from paris_avenir.messaging import outbox
from paris_avenir.messaging.channels import (
    Channels,
    MessageRefused,
    PermanentFailure,
    ProviderRefusedRequest,
    TemporaryFailure,
)
from paris_avenir.messaging.channels.email_smtp import SmtpEmailSender
from paris_avenir.messaging.channels.sms_brevo import (
    BrevoSmsSender,
    classify_events,
    reference_tag,
)
from paris_avenir.messaging.models import OutboxMessage, OutboxStatus, OutboxStatusEvent
from paris_avenir.messaging.webhooks import is_stop_reply
from paris_avenir.migrate import upgrade_to_head
from paris_avenir.staff.models import StaffRole
from paris_avenir.youths.models import Channel, Youth
from tests.conftest import postgres_schema_url
from tests.factories import create_staff, create_youth
from tests.helpers import sign_in_as
from tests.servers import (
    BrevoSmsApi,
    PlatformServer,
    brevo_definition,
    brevo_error,
    brevo_example,
    brevo_schema,
)

E164 = "+33639980042"
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)  # a Wednesday, 10:00 in Paris
WEBHOOK = "/webhooks/sms/brevo"
TOKEN = "hook-secret-" + "z" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _sender(api: BrevoSmsApi, *, sender: str = "ParisAvenir") -> BrevoSmsSender:
    return BrevoSmsSender(api_url=api.url, api_key=BrevoSmsApi.API_KEY, sender=sender)


def _channels(api: BrevoSmsApi, *, sender: str = "ParisAvenir") -> Channels:
    return Channels(
        sms=_sender(api, sender=sender),
        email=SmtpEmailSender("smtp://127.0.0.1:9", sender="Paris avenir <pa@example.org>"),
    )


def _queue(session: Session, youth: Youth, key: str = "contract:1") -> OutboxMessage:
    message = outbox.enqueue(
        session,
        channel=Channel.SMS,
        recipient=E164,
        template="test",
        body_text="Paris avenir : bonjour.",
        idempotency_key=key,
        youth_id=youth.id,
        now=NOW,
    )
    session.commit()
    return message


def _answering(status: int, body: Any) -> BrevoSmsSender:
    """The adapter facing one answer, exactly as the definition gives it."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    return BrevoSmsSender(
        api_url="https://api.brevo.com/v3/transactionalSMS/send",
        api_key="k",
        sender="ParisAvenir",
        transport=httpx.MockTransport(handler),
    )


# --- Requests and examples -------------------------------------------------------------


@pytest.mark.parametrize("text", ["Paris avenir : bonjour.", "Rendez-vous à 10 h — œuvre"])
def test_our_send_request_is_valid_for_the_definition(sms_api: BrevoSmsApi, text: str) -> None:
    _sender(sms_api).send_sms(to=E164, text=text, reference="contract:1", tag="test")
    (call,) = sms_api.calls
    jsonschema.validate(call.payload, brevo_schema("sendTransacSms"))
    assert call.payload["recipient"] == "33639980042"
    assert call.payload["unicodeEnabled"] is (text != "Paris avenir : bonjour.")
    assert sms_api.url.endswith("/v3/transactionalSMS/send")


def test_the_stub_refuses_what_the_definition_refuses(sms_api: BrevoSmsApi) -> None:
    """The double is the definition's, not ours: a sender longer than it allows is a 400."""
    with pytest.raises(ProviderRefusedRequest):
        _sender(sms_api, sender="ParisAvenirTropLong").send_sms(
            to=E164, text="Bonjour", reference="contract:1", tag="test"
        )
    assert not sms_api.sent


@pytest.mark.parametrize("path", ["/transactionalSMS/send", "/transactionalSMS/sms"])
def test_the_definitions_201_examples_give_the_message_id(path: str) -> None:
    example = brevo_example(path, "post", "201")
    sender = _answering(201, example)
    assert sender.send_sms(to=E164, text="x", reference="r", tag="t") == "1511882900176220"


def test_the_definitions_events_example_reads_as_sent() -> None:
    example = brevo_example("/transactionalSMS/statistics/events", "get", "200")
    jsonschema.validate(example, brevo_schema("getSmsEventReport"))
    assert _answering(200, example).find_sent(to=E164, reference="r") == "1473139351170140"


# --- Every event type of the lookup ------------------------------------------------------

# What each event type means when it is all the lookup finds for our reference.
EVENT_MEANINGS: dict[str, type[Exception] | str | None] = {
    "sent": "sent",
    "delivered": "sent",
    "accepted": TemporaryFailure,  # Brevo has it: wait, never send twice
    "hardBounces": PermanentFailure,  # the number: flagged
    "blocked": PermanentFailure,
    "rejected": MessageRefused,  # this message only: not retried, nobody flagged
    "skipped": MessageRefused,
    "softBounces": None,  # phone off: sending again is the retry
    "bounces": None,
    "unsubscription": None,  # not about delivery
    "replies": None,
}


def test_every_event_type_of_the_definition_has_a_meaning() -> None:
    enum = brevo_definition()["components"]["schemas"]["smsEventType"]["enum"]
    assert sorted(EVENT_MEANINGS) == sorted(enum)


@pytest.mark.parametrize("kind", sorted(EVENT_MEANINGS))
def test_each_event_type_is_read_for_what_it_means(kind: str) -> None:
    template = brevo_example("/transactionalSMS/statistics/events", "get", "200")["events"][0]
    events = [template | {"event": kind}]
    jsonschema.validate({"events": events}, brevo_schema("getSmsEventReport"))
    meaning = EVENT_MEANINGS[kind]
    if isinstance(meaning, type):
        with pytest.raises(meaning) as raised:
            classify_events(events)
        assert type(raised.value) is meaning
    elif meaning == "sent":
        assert classify_events(events) == template["messageId"]
    else:
        assert classify_events(events) is None


def test_a_delivered_event_wins_over_an_earlier_soft_bounce() -> None:
    events = [
        {"event": "softBounces", "messageId": "7"},
        {"event": "delivered", "messageId": "7"},
    ]
    assert classify_events(events) == "7"


def _interrupted_then_found(
    session: Session,
    session_factory: sessionmaker[Session],
    api: BrevoSmsApi,
    kind: str,
) -> tuple[OutboxMessage, Youth, outbox.DispatchReport]:
    """A first attempt the provider answered with a 500 although it had the SMS (its
    event is `kind`); the retry asks the lookup first."""
    youth = create_youth(session, phone=E164)
    message = _queue(session, youth)
    api.next_statuses = [500]
    first = outbox.dispatch_due(session_factory, _channels(api), now=NOW)
    assert first.retried == [message.id]
    template = brevo_example("/transactionalSMS/statistics/events", "get", "200")["events"][0]
    api.sent.append(
        template
        | {
            "event": kind,
            "messageId": "4242",
            "phoneNumber": E164.lstrip("+"),
            "tags": ["test", reference_tag(message.idempotency_key)],
        }
    )
    report = outbox.dispatch_due(session_factory, _channels(api), now=NOW + timedelta(hours=1))
    session.refresh(message)
    session.refresh(youth)
    return message, youth, report


def test_a_rejected_sms_is_failed_not_sent_and_not_retried(
    session: Session, session_factory: sessionmaker[Session], sms_api: BrevoSmsApi
) -> None:
    message, youth, report = _interrupted_then_found(session, session_factory, sms_api, "rejected")
    assert report.failed == [message.id]
    assert message.status is OutboxStatus.FAILED and message.provider_message_id is None
    assert "rejected" in (message.last_error or "")
    assert youth.phone_unreachable_at is None  # the message was refused, not the number
    assert len(sms_api.calls) == 1  # never sent again
    later = outbox.dispatch_due(session_factory, _channels(sms_api), now=NOW + timedelta(days=1))
    assert later.sent == later.retried == later.failed == []


def test_a_hard_bounce_fails_and_flags_the_number(
    session: Session, session_factory: sessionmaker[Session], sms_api: BrevoSmsApi
) -> None:
    message, youth, report = _interrupted_then_found(
        session, session_factory, sms_api, "hardBounces"
    )
    assert report.failed == [message.id] and message.status is OutboxStatus.FAILED
    assert youth.phone_unreachable_at is not None
    assert len(sms_api.calls) == 1


def test_a_soft_bounce_is_sent_again(
    session: Session, session_factory: sessionmaker[Session], sms_api: BrevoSmsApi
) -> None:
    message, youth, report = _interrupted_then_found(
        session, session_factory, sms_api, "softBounces"
    )
    assert report.sent == [message.id]
    assert len(sms_api.calls) == 2
    assert youth.phone_unreachable_at is None


def test_an_accepted_sms_waits_and_is_not_sent_twice(
    session: Session, session_factory: sessionmaker[Session], sms_api: BrevoSmsApi
) -> None:
    message, youth, report = _interrupted_then_found(session, session_factory, sms_api, "accepted")
    assert report.retried == [message.id]
    assert message.status is OutboxStatus.QUEUED and message.provider_message_id is None
    assert youth.phone_unreachable_at is None
    assert len(sms_api.calls) == 1


# --- A 400, read by its body ---------------------------------------------------------


@pytest.mark.parametrize("example", ["invalidSender", "missingParameter"])
def test_a_request_level_400_flags_nobody_and_alerts_the_operator(
    session: Session,
    session_factory: sessionmaker[Session],
    sms_api: BrevoSmsApi,
    caplog: pytest.LogCaptureFixture,
    example: str,
) -> None:
    jsonschema.validate(brevo_error(example), brevo_schema("errorModel"))
    youth = create_youth(session, phone=E164)
    message = _queue(session, youth)
    sms_api.next_statuses = [400]
    sms_api.next_errors = [example]
    with caplog.at_level(logging.INFO, logger="paris_avenir.messaging.outbox"):
        report = outbox.dispatch_due(session_factory, _channels(sms_api), now=NOW)
    session.refresh(message)
    session.refresh(youth)
    assert youth.phone_unreachable_at is None
    # Retried: once the operator fixes the setting, the message leaves.
    assert report.retried == [message.id] and message.status is OutboxStatus.QUEUED
    alerts = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(alerts) == 1
    alert = alerts[0].getMessage()
    assert "operator alert" in alert and brevo_error(example)["code"] in alert
    assert "639980042" not in caplog.text
    retried = outbox.dispatch_due(session_factory, _channels(sms_api), now=NOW + timedelta(hours=1))
    assert retried.sent == [message.id]


def test_an_invalid_number_400_flags_the_youth_and_does_not_alert(
    session: Session,
    session_factory: sessionmaker[Session],
    sms_api: BrevoSmsApi,
    caplog: pytest.LogCaptureFixture,
) -> None:
    youth = create_youth(session, phone=E164)
    message = _queue(session, youth)
    sms_api.next_statuses = [400]
    sms_api.next_errors = ["invalidRecipient"]
    with caplog.at_level(logging.INFO):
        report = outbox.dispatch_due(session_factory, _channels(sms_api), now=NOW)
    session.refresh(message)
    session.refresh(youth)
    assert report.failed == [message.id] and message.status is OutboxStatus.FAILED
    assert youth.phone_unreachable_at is not None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_bad_api_key_alerts_the_operator_and_flags_nobody(
    session: Session, session_factory: sessionmaker[Session], sms_api: BrevoSmsApi
) -> None:
    youth = create_youth(session, phone=E164)
    message = _queue(session, youth)
    channels = Channels(
        sms=BrevoSmsSender(api_url=sms_api.url, api_key="wrong", sender="ParisAvenir"),
        email=SmtpEmailSender("smtp://127.0.0.1:9", sender="pa@example.org"),
    )
    report = outbox.dispatch_due(session_factory, channels, now=NOW)
    session.refresh(youth)
    assert report.retried == [message.id]
    assert youth.phone_unreachable_at is None


# --- Webhooks: batched, Basic authentication, STOP -------------------------------------


@pytest.fixture
def webhook_app(app: FastAPI) -> FastAPI:
    app.state.settings = app.state.settings.model_copy(update={"sms_webhook_token": TOKEN})
    return app


def _sent(session: Session, youth: Youth, provider_id: str) -> OutboxMessage:
    message = _queue(session, youth, key=f"contract:{provider_id}")
    message.status = OutboxStatus.SENT
    message.provider_message_id = provider_id
    session.commit()
    return message


async def test_a_batched_webhook_applies_every_event(
    webhook_app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    youth = create_youth(session, phone=E164)
    message = _sent(session, youth, "9001")
    batch = [
        {"event": "delivered", "messageId": 9001, "ts_event": 1764666000},
        {"event": "reply", "from": "33639980042", "reply": "Stop svp.", "ts_event": 1764666060},
    ]
    response = await client.post(WEBHOOK, json=batch, headers=AUTH)
    assert response.status_code == 200
    assert response.json()["events"] == ["ok", "ok"]
    session.refresh(message)
    session.refresh(youth)
    assert message.status is OutboxStatus.DELIVERED
    assert youth.outreach_opted_out_at is not None
    again = await client.post(WEBHOOK, json=batch, headers=AUTH)
    assert again.json()["events"] == ["duplicate", "duplicate"]


@pytest.mark.parametrize("body", [[], [{"event": "delivered"}, "x"], [1]])
async def test_a_malformed_batch_is_refused(
    webhook_app: FastAPI, client: httpx.AsyncClient, body: list[Any]
) -> None:
    assert (await client.post(WEBHOOK, json=body, headers=AUTH)).status_code == 400


async def test_brevos_basic_auth_option_is_accepted_with_the_token_as_password(
    webhook_app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    youth = create_youth(session, phone=E164)
    session.commit()
    stop = {"event": "reply", "from": "33639980042", "reply": "STOP", "ts_event": 1764666000}
    wrong = base64.b64encode(b"brevo:not-the-token").decode()
    response = await client.post(WEBHOOK, json=stop, headers={"Authorization": f"Basic {wrong}"})
    assert response.status_code == 401
    session.refresh(youth)
    assert youth.outreach_opted_out_at is None
    good = base64.b64encode(f"brevo:{TOKEN}".encode()).decode()
    response = await client.post(WEBHOOK, json=stop, headers={"Authorization": f"Basic {good}"})
    assert response.status_code == 200
    session.refresh(youth)
    assert youth.outreach_opted_out_at is not None


STOPS = [
    "STOP",
    "stop",
    "Stop.",
    "STOP !",
    "Stop svp",
    "stop SVP.",
    "Stop merci",
    "merci stop",
    "STOP STOP",
    "stop s'il vous plaît",
    "Arrêt",
    "ARRET",
    "arreter",
    "Désinscription",
    "desinscription",
    "STOP SMS",
    "stopsms",
    "Ne plus recevoir",
    "je ne veux plus recevoir de messages",
    "  stop\n",
]
NOT_STOPS = [
    "Stop, j'arrive dans 5 minutes",
    "je suis à l'arrêt de bus",
    "non stop",
    "Le bus s'est arrêté",
    "Je voudrais stopper mon dossier",
    "ok merci",
    "",
    "?",
    "stop le rendez-vous de demain je ne peux pas venir",
]


@pytest.mark.parametrize("text", STOPS)
def test_these_replies_are_a_stop(text: str) -> None:
    assert is_stop_reply(text)


@pytest.mark.parametrize("text", NOT_STOPS)
def test_these_replies_are_not_a_stop(text: str) -> None:
    assert not is_stop_reply(text)


@pytest.mark.parametrize(("text", "stops"), [("Arrêt.", True), ("Stop, j'arrive", False)])
async def test_a_reply_opts_out_only_when_it_is_a_stop(
    webhook_app: FastAPI, client: httpx.AsyncClient, session: Session, text: str, stops: bool
) -> None:
    youth = create_youth(session, phone=E164)
    session.commit()
    reply = {"event": "reply", "from": "33639980042", "reply": text, "ts_event": 1764666000}
    response = await client.post(WEBHOOK, content=json.dumps(reply), headers=AUTH)
    assert response.status_code == 200
    session.refresh(youth)
    assert (youth.outreach_opted_out_at is not None) is stops


# --- The operator sees the alert --------------------------------------------------------


async def test_the_admin_sees_the_provider_refusing_our_requests_until_it_is_fixed(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    session_factory: sessionmaker[Session],
    sms_api: BrevoSmsApi,
) -> None:
    youth = create_youth(session, phone=E164)
    message = _queue(session, youth)
    admin = create_staff(session, role=StaffRole.ADMIN)
    session.commit()
    sign_in_as(client, app, session, staff=admin)
    assert "alerte-fournisseur-sms" not in (await client.get("/pro/admin/messages")).text
    sms_api.next_statuses = [400]
    sms_api.next_errors = ["invalidSender"]
    outbox.dispatch_due(session_factory, _channels(sms_api), now=NOW)
    page = (await client.get("/pro/admin/messages")).text
    assert "Le fournisseur SMS refuse nos envois." in page
    assert "1 SMS attend." in page and "invalid_parameter" in page
    assert "639980042" not in page  # the alert names no youth
    # Fixed: the retry leaves, the alert is gone.
    outbox.dispatch_due(session_factory, _channels(sms_api), now=NOW + timedelta(hours=1))
    session.refresh(message)
    assert message.status is OutboxStatus.SENT
    assert "alerte-fournisseur-sms" not in (await client.get("/pro/admin/messages")).text


def _webhook_sms_events() -> list[str]:
    """The SMS events of a transactional webhook, as the definition lists them."""
    description = brevo_definition()["components"]["schemas"]["createWebhook"]["properties"][
        "events"
    ]["description"]
    return [word.strip() for word in description.split(":", 1)[1].split(",")]


# What each webhook event does to an SMS we sent: its status after, and whether the
# youth's number is flagged.
WEBHOOK_MEANINGS: dict[str, tuple[OutboxStatus, bool]] = {
    "sent": (OutboxStatus.SENT, False),
    "accepted": (OutboxStatus.SENT, False),  # taken, not yet sent: changes nothing
    "delivered": (OutboxStatus.DELIVERED, False),
    "softBounce": (OutboxStatus.SENT, False),  # Brevo retries
    "hardBounce": (OutboxStatus.FAILED, True),
    "blacklisted": (OutboxStatus.FAILED, True),
    "skip": (OutboxStatus.FAILED, False),
    "unsubscribe": (OutboxStatus.SENT, False),  # an opt-out, not a delivery status
    "reply": (OutboxStatus.SENT, False),
    "subscribe": (OutboxStatus.SENT, False),
}


def test_every_webhook_event_of_the_definition_has_a_meaning() -> None:
    assert sorted(WEBHOOK_MEANINGS) == sorted(_webhook_sms_events())


@pytest.mark.parametrize("event", sorted(WEBHOOK_MEANINGS))
async def test_each_webhook_event_does_what_it_means(
    webhook_app: FastAPI, client: httpx.AsyncClient, session: Session, event: str
) -> None:
    youth = create_youth(session, phone=E164)
    message = _sent(session, youth, "7007")
    body = {"event": event, "messageId": 7007, "ts_event": 1764666000}
    assert (await client.post(WEBHOOK, json=body, headers=AUTH)).status_code == 200
    session.refresh(message)
    session.refresh(youth)
    status, flagged = WEBHOOK_MEANINGS[event]
    assert message.status is status
    assert (youth.phone_unreachable_at is not None) is flagged


# --- 30 identical batches at once, on PostgreSQL ----------------------------------------

BATCH_SCHEMA = "brevo_batch_races"
PARALLEL = 30


@pytest.fixture(scope="module")
def batch_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, sessionmaker[Session]]]:
    engine: Engine = create_database_engine(
        postgres_schema_url(BATCH_SCHEMA, needed_for="batched webhook races on PostgreSQL"),
        pool_size=20,
        max_overflow=20,
    )
    upgrade_to_head(engine)
    directory = tmp_path_factory.mktemp("batch-races")
    settings = Settings(
        env="dev",
        secret_key="batch-race-secret-" + "x" * 32,
        sms_file=directory / "sms.jsonl",
        upload_dir=directory / "uploads",
        smtp_url="smtp://127.0.0.1:9",
        sms_webhook_token=TOKEN,
    )
    platform = PlatformServer(create_app(settings, engine=engine))
    platform.start()
    yield platform.url, make_session_factory(engine)
    platform.stop()
    engine.dispose()


def test_thirty_identical_batches_at_once_take_each_event_once(
    batch_server: tuple[str, sessionmaker[Session]],
) -> None:
    url, factory = batch_server
    with factory.begin() as session:
        youth = create_youth(session, phone="+33639984411")
        message = outbox.enqueue(
            session,
            channel=Channel.SMS,
            recipient="+33639984411",
            template="test",
            body_text="Paris avenir : bonjour.",
            idempotency_key="batch-race:1",
            youth_id=youth.id,
            now=NOW,
        )
        message.status = OutboxStatus.SENT
        message.provider_message_id = "5005"
        youth_id, message_id = youth.id, message.id
    batch = [
        {"event": "delivered", "messageId": 5005, "ts_event": 1764666000},
        {"event": "reply", "from": "33639984411", "reply": "Stop.", "ts_event": 1764666060},
    ]
    barrier = threading.Barrier(PARALLEL)

    def deliver(_index: int) -> list[str]:
        barrier.wait()
        with httpx.Client(base_url=url, timeout=60) as client:
            response = client.post(WEBHOOK, json=batch, headers=AUTH)
            assert response.status_code == 200, response.text
            return list(response.json()["events"])

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        answers = list(pool.map(deliver, range(PARALLEL)))
    for position in range(len(batch)):
        taken = sorted(answer[position] for answer in answers)
        assert taken == ["duplicate"] * (PARALLEL - 1) + ["ok"]
    with factory() as session:
        youth = session.get_one(Youth, youth_id)
        assert youth.outreach_opted_out_at is not None
        opt_outs = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "youth.outreach_opt_out", AuditEvent.youth_id == youth_id)
        )
        assert opt_outs == 1
        delivered = session.scalar(
            select(func.count())
            .select_from(OutboxStatusEvent)
            .where(
                OutboxStatusEvent.outbox_message_id == message_id,
                OutboxStatusEvent.status == OutboxStatus.DELIVERED,
            )
        )
        assert delivered == 1
        assert session.get_one(OutboxMessage, message_id).status is OutboxStatus.DELIVERED
