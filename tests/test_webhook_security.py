"""The SMS provider's webhook under attack: a forged call (no token, a wrong one, the token
anywhere but a bearer header) is refused and changes nothing; a replayed event has no second
effect, even 30 copies at once on PostgreSQL; a STOP opts out the number that sent it and no
other number the payload may carry."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from paris_avenir.audit.models import AuditEvent
from paris_avenir.messaging.models import (
    OutboxMessage,
    OutboxStatus,
    OutboxStatusEvent,
    ProviderEvent,
)
from paris_avenir.youths.models import Youth
from tests.conftest import postgres_schema_url
from tests.factories import create_outbox_message, create_youth
from tests.helpers import at_once, sign_in_as
from tests.servers import RacePlatform, race_platform

WEBHOOK = "/webhooks/sms/brevo"
TOKEN = "hook-secret-" + "y" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}
YOUTH_PHONE = "+33639980042"
VICTIM_PHONE = "+33639980043"
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
OPT_OUT = "youth.outreach_opt_out"


@pytest.fixture
def webhook_app(app: FastAPI) -> FastAPI:
    app.state.settings = app.state.settings.model_copy(update={"sms_webhook_token": TOKEN})
    return app


def _opt_out_audits(session: Session, youth: Youth) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == OPT_OUT, AuditEvent.youth_id == youth.id)
        )
        or 0
    )


def _provider_events(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(ProviderEvent)) or 0)


def _sent_sms(session: Session, youth: Youth, provider_id: str, to: str) -> OutboxMessage:
    message = create_outbox_message(
        session,
        youth,
        recipient=to,
        key=f"webhook-test:{provider_id}",
        now=NOW - timedelta(days=1),
        status=OutboxStatus.SENT,
        provider_message_id=provider_id,
    )
    session.commit()
    return message


STOP = {"event": "reply", "from": "33639980042", "reply": "STOP", "ts_event": 1764666000}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-the-token"},
        {"Authorization": TOKEN},  # no scheme
        # Basic auth carries base64("user:token") (tests/test_brevo_contract.py), never the
        # token as it is.
        {"Authorization": "Basic " + TOKEN},
        {"X-Token": TOKEN},
    ],
    ids=["none", "wrong", "bare", "basic", "other-header"],
)
async def test_a_forged_stop_is_refused_and_changes_nothing(
    webhook_app: FastAPI, client: httpx.AsyncClient, session: Session, headers: dict[str, str]
) -> None:
    youth = create_youth(session, phone=YOUTH_PHONE)
    session.commit()
    response = await client.post(WEBHOOK, json=STOP, headers=headers)
    assert response.status_code == 401
    # The token in the query string is refused too: it would sit in access logs.
    response = await client.post(f"{WEBHOOK}?token={TOKEN}", json=STOP, headers=headers)
    assert response.status_code == 401
    session.refresh(youth)
    assert youth.outreach_opted_out_at is None
    assert _opt_out_audits(session, youth) == 0
    assert _provider_events(session) == 0


async def test_a_replayed_stop_has_no_second_effect(
    webhook_app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    youth = create_youth(session, phone=YOUTH_PHONE)
    session.commit()
    first = await client.post(WEBHOOK, json=STOP, headers=AUTH)
    assert first.json() == {"status": "ok"}
    session.refresh(youth)
    opted_out_at = youth.outreach_opted_out_at
    assert opted_out_at is not None
    # The youth opts back in on their profile; a replay of the old STOP must not undo it.
    youth.outreach_opted_out_at = None
    session.commit()
    for _copy in range(3):
        again = await client.post(WEBHOOK, json=STOP | {"remaining_credit": 7}, headers=AUTH)
        assert again.status_code == 200 and again.json() == {"status": "duplicate"}
    session.refresh(youth)
    assert youth.outreach_opted_out_at is None
    assert _opt_out_audits(session, youth) == 1
    # A new STOP, later, is a new event: it counts.
    later = await client.post(WEBHOOK, json=STOP | {"ts_event": 1764752400}, headers=AUTH)
    assert later.json() == {"status": "ok"}
    session.refresh(youth)
    assert youth.outreach_opted_out_at is not None


async def test_a_replayed_receipt_is_recorded_once(
    webhook_app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    youth = create_youth(session, phone=YOUTH_PHONE)
    message = _sent_sms(session, youth, "9001", YOUTH_PHONE)
    receipt = {"event": "delivered", "messageId": 9001, "ts_event": 1764666000}
    answers = [(await client.post(WEBHOOK, json=receipt, headers=AUTH)).json() for _ in range(4)]
    assert answers == [{"status": "ok"}] + [{"status": "duplicate"}] * 3
    history = session.scalars(
        select(OutboxStatusEvent.status).where(OutboxStatusEvent.outbox_message_id == message.id)
    ).all()
    assert history == [OutboxStatus.QUEUED, OutboxStatus.DELIVERED]


async def test_a_stop_applies_to_the_sender_never_to_another_number_in_the_payload(
    webhook_app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    sender = create_youth(session, phone=YOUTH_PHONE)
    victim = create_youth(session, phone=VICTIM_PHONE)
    session.commit()
    # Every other field that could name a number names the victim.
    payload = STOP | {"to": "33639980043", "phone_number": "33639980043", "msisdn": "33639980043"}
    assert (await client.post(WEBHOOK, json=payload, headers=AUTH)).json() == {"status": "ok"}
    # Without a sender, the victim's number elsewhere in the payload is not taken instead.
    no_sender = {key: value for key, value in payload.items() if key != "from"}
    no_sender["ts_event"] = 1764666001
    assert (await client.post(WEBHOOK, json=no_sender, headers=AUTH)).json() == {
        "status": "ignored"
    }
    session.refresh(sender)
    session.refresh(victim)
    assert sender.outreach_opted_out_at is not None
    assert victim.outreach_opted_out_at is None
    assert _opt_out_audits(session, victim) == 0


async def test_a_reply_to_our_sms_opts_out_the_number_it_went_to_and_only_that_one(
    webhook_app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    youth = create_youth(session, phone=YOUTH_PHONE)
    victim = create_youth(session, phone=VICTIM_PHONE)
    _sent_sms(session, youth, "9100", YOUTH_PHONE)
    # A "reply" to our SMS to the youth that claims to come from the victim: contradicted.
    forged = {"event": "reply", "messageId": 9100, "from": "33639980043", "reply": "STOP"}
    assert (await client.post(WEBHOOK, json=forged, headers=AUTH)).json() == {"status": "ignored"}
    session.refresh(victim)
    session.refresh(youth)
    assert victim.outreach_opted_out_at is None and youth.outreach_opted_out_at is None
    # Brevo's reply to our SMS, naming it by messageId (the victim's number as `to`).
    reply = {"msg_status": "replied", "messageId": 9100, "to": "33639980043", "reply": "Stop"}
    assert (await client.post(WEBHOOK, json=reply, headers=AUTH)).json() == {"status": "ok"}
    session.refresh(victim)
    session.refresh(youth)
    assert youth.outreach_opted_out_at is not None
    assert victim.outreach_opted_out_at is None


async def test_the_youth_sees_the_stop_on_their_profile(
    webhook_app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    youth = create_youth(session, phone=YOUTH_PHONE)
    session.commit()
    await client.post(WEBHOOK, json=STOP, headers=AUTH)
    sign_in_as(client, webhook_app, session, youth=youth)
    page = (await client.get("/mon-espace/profil")).text
    assert re.search(r'name="pas_de_relance" value="oui" checked', page)


# --- 30 identical STOPs at once, on PostgreSQL ----------------------------------------------

SCHEMA = "webhook_races"
PARALLEL = 30


@pytest.fixture(scope="module")
def race_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RacePlatform]:
    url = postgres_schema_url(SCHEMA, needed_for="webhook races on PostgreSQL")
    with race_platform(
        url, tmp_path_factory.mktemp("webhook-races"), sms_webhook_token=TOKEN
    ) as platform:
        yield platform


def test_thirty_identical_stops_at_once_opt_out_once(
    race_server: RacePlatform,
) -> None:
    url, factory = race_server.url, race_server.factory
    with factory.begin() as session:
        youth = create_youth(session)
        youth_id, phone = youth.id, youth.phone or ""
    stop = {"event": "reply", "from": phone.lstrip("+"), "reply": "STOP", "ts_event": 1764666000}

    def deliver(_index: int) -> str:
        with httpx.Client(base_url=url, timeout=60) as client:
            response = client.post(WEBHOOK, json=stop, headers=AUTH)
            assert response.status_code == 200, response.text
            return str(response.json()["status"])

    answers = at_once(PARALLEL, deliver)
    assert sorted(answers) == ["duplicate"] * (PARALLEL - 1) + ["ok"]
    with factory() as session:
        youth = session.get_one(Youth, youth_id)
        assert youth.outreach_opted_out_at is not None
        assert _opt_out_audits(session, youth) == 1
        assert _provider_events(session) == 1


def test_thirty_different_stops_at_once_opt_out_once(
    race_server: RacePlatform,
) -> None:
    """Not replays: 30 distinct events (STOP, ARRET… sent within a second). Each is taken,
    the opt-out and its audit entry happen once."""
    url, factory = race_server.url, race_server.factory
    with factory.begin() as session:
        youth = create_youth(session)
        youth_id, phone = youth.id, youth.phone or ""
    words = ["STOP", "ARRET", "Stop", "stop sms"]

    def deliver(index: int) -> str:
        stop = {
            "event": "reply",
            "from": phone.lstrip("+"),
            "reply": words[index % len(words)],
            "ts_event": 1764666000 + index,
        }
        with httpx.Client(base_url=url, timeout=60) as client:
            response = client.post(WEBHOOK, json=stop, headers=AUTH)
            assert response.status_code == 200, response.text
            return str(response.json()["status"])

    assert at_once(PARALLEL, deliver) == ["ok"] * PARALLEL
    with factory() as session:
        youth = session.get_one(Youth, youth_id)
        assert youth.outreach_opted_out_at is not None
        assert _opt_out_audits(session, youth) == 1
