"""Two-way SMS: a youth's SMS reply reaches their conversation, marked "reçu par SMS", and
counts as their activity; a number shared by several youths, or nobody's, goes to the
supervisors' queue (never into a file), from which a supervisor of the right team attaches
it or discards it. Reply events are built from Brevo's documented webhook body only
(tests/brevo/sms-webhook.json). Both databases; the race on PostgreSQL."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import jsonschema  # type: ignore[import-untyped]
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from paris_avenir.audit.models import AuditEvent
from paris_avenir.messaging import outbox
from paris_avenir.messaging import service as messaging
from paris_avenir.messaging.models import (
    InboundSms,
    InboundSmsStatus,
    Message,
    MessageThread,
    OutboxMessage,
    OutboxStatus,
)
from paris_avenir.staff.models import StaffRole, StaffUser, Team
from paris_avenir.youths.models import Channel, Youth
from tests.conftest import FROZEN_AT, postgres_schema_url
from tests.factories import assign, create_staff, create_youth
from tests.helpers import at_once, post_form, sign_in_as
from tests.servers import brevo_reply_event, brevo_webhook_schema, race_platform

WEBHOOK = "/webhooks/sms/brevo"
TOKEN = "hook-secret-" + "i" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}
E164 = "+33639980071"
TS = int(FROZEN_AT.timestamp()) - 120  # sent two minutes ago


@pytest.fixture
def webhook_app(app: FastAPI) -> FastAPI:
    app.state.settings = app.state.settings.model_copy(update={"sms_webhook_token": TOKEN})
    return app


def _our_sms(session: Session, youth: Youth, provider_id: int, phone: str = E164) -> None:
    """The SMS the youth answers: sent to their number, Brevo's messageId known."""
    message = outbox.enqueue(
        session,
        channel=Channel.SMS,
        recipient=phone,
        template="new_message",
        body_text="Paris avenir : un nouveau message de votre référent.",
        idempotency_key=f"inbound-test:{provider_id}",
        youth_id=youth.id,
        now=FROZEN_AT,
    )
    message.status = OutboxStatus.SENT
    message.provider_message_id = str(provider_id)
    session.commit()


def _team(session: Session, name: str) -> tuple[StaffUser, StaffUser]:
    team = Team(name=name)
    session.add(team)
    session.flush()
    referent = create_staff(session, team_id=team.id)
    supervisor = create_staff(session, StaffRole.SUPERVISOR, team_id=team.id)
    return referent, supervisor


def _thread_messages(session: Session, youth: Youth) -> list[Message]:
    return list(
        session.scalars(
            select(Message)
            .join(MessageThread, MessageThread.id == Message.thread_id)
            .where(MessageThread.youth_id == youth.id)
        )
    )


def _denials(session: Session, staff: StaffUser) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "access_denied", AuditEvent.actor_staff_id == staff.id)
        )
        or 0
    )


async def _post(client: httpx.AsyncClient, event: object) -> httpx.Response:
    return await client.post(WEBHOOK, json=event, headers=AUTH)


# --- The payload -------------------------------------------------------------------------


def test_reply_events_carry_only_the_fields_brevos_documentation_names() -> None:
    event = brevo_reply_event(message_id=1, to=E164, text="Oui", ts_event=TS)
    assert set(event) <= set(brevo_webhook_schema()["properties"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**event, "sender": "33639980071"}, brevo_webhook_schema())


# --- One youth's number: their conversation ---------------------------------------------------


async def test_a_reply_lands_in_the_youths_conversation_marked_and_counts_as_activity(
    webhook_app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    youth = create_youth(session, phone=E164, last_activity_at=None)
    referent, _supervisor = _team(session, "Est")
    assign(session, youth, referent)
    _our_sms(session, youth, 7001)
    event = brevo_reply_event(message_id=7001, to=E164, text="Oui je viens demain", ts_event=TS)

    response = await _post(client, event)

    assert response.json() == {"status": "ok"}
    session.expire_all()
    [message] = _thread_messages(session, youth)
    assert (message.body, message.from_youth, message.received_by_sms) == (
        "Oui je viens demain",
        True,
        True,
    )
    assert message.read_at is None  # unread for the référent, like any message of the youth
    assert session.get_one(Youth, youth.id).last_activity_at == message.sent_at
    assert int(message.sent_at.timestamp()) == TS
    assert session.scalar(select(func.count()).select_from(InboundSms)) == 0
    # The same event again (Brevo retrying): nothing more.
    assert (await _post(client, event)).json() == {"status": "duplicate"}
    assert len(_thread_messages(session, youth)) == 1

    sign_in_as(client, webhook_app, session, staff=referent)
    page = await client.get(f"/pro/jeunes/{youth.id}")
    assert "Oui je viens demain" in page.text and "reçu par SMS" in page.text
    session.expire_all()
    assert session.get_one(Message, message.id).read_at is not None

    sign_in_as(client, webhook_app, session, youth=youth)
    thread = messaging.general_thread(session, youth.id)
    own = await client.get(f"/mon-espace/messages/{thread.id}")
    assert "Oui je viens demain" in own.text and "par SMS" in own.text


async def test_the_referents_answer_reaches_the_youth_by_sms_as_a_link(
    webhook_app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    youth = create_youth(session, phone=E164, preferred_channel=Channel.SMS)
    referent, _supervisor = _team(session, "Ouest")
    assign(session, youth, referent)
    session.commit()
    sign_in_as(client, webhook_app, session, staff=referent)

    response = await post_form(
        client, f"/pro/jeunes/{youth.id}/messages", {"message": "Rendez-vous jeudi à 10 h"}
    )

    assert response.status_code == 303
    sms = session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.youth_id == youth.id, OutboxMessage.template == "new_message"
        )
    ).one()
    assert (sms.channel, sms.recipient) == (Channel.SMS, E164)
    assert "/mon-espace/messages" in sms.body_text
    assert "jeudi" not in sms.body_text  # a link to the conversation, never its text


async def test_stop_and_its_variants_still_opt_out_and_add_no_message(
    webhook_app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    youth = create_youth(session, phone=E164)
    _our_sms(session, youth, 7002)
    event = brevo_reply_event(message_id=7002, to=E164, text="Arrêt svp", ts_event=TS)

    assert (await _post(client, event)).json() == {"status": "ok"}

    session.expire_all()
    assert session.get_one(Youth, youth.id).outreach_opted_out_at is not None
    assert _thread_messages(session, youth) == []
    assert session.scalar(select(func.count()).select_from(InboundSms)) == 0


async def test_no_number_and_no_text_in_the_logs(
    webhook_app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    caplog: pytest.LogCaptureFixture,
) -> None:
    create_youth(session, phone=E164)
    create_youth(session, phone=E164)
    session.commit()
    caplog.set_level(logging.DEBUG)
    text = "Mon adresse est 12 rue Secrète"
    await _post(client, {"event": "reply", "from": "33639980071", "reply": text, "ts_event": TS})
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "reply, queued" in logged
    assert "Secrète" not in logged and "639980071" not in logged and "0071" not in logged


# --- Shared or unknown number: the supervisors' queue ---------------------------------------


async def test_a_shared_number_goes_to_the_supervisors_queue_and_is_attached_there(
    webhook_app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    referent, supervisor = _team(session, "Nord")
    sister = create_youth(session, phone=E164, first_name="Awa")
    brother = create_youth(session, phone=E164, first_name="Moussa")
    assign(session, sister, referent)
    assign(session, brother, referent)
    _our_sms(session, sister, 7003)
    event = brevo_reply_event(message_id=7003, to=E164, text="C'est Moussa, ok", ts_event=TS)

    assert (await _post(client, event)).json() == {"status": "ok"}

    session.expire_all()
    assert _thread_messages(session, sister) == [] and _thread_messages(session, brother) == []
    item = session.scalars(select(InboundSms)).one()
    assert item.status is InboundSmsStatus.WAITING and item.sender_last_digits == "71"

    sign_in_as(client, webhook_app, session, staff=supervisor)
    team_page = await client.get("/pro/equipe")
    assert "1 SMS à rattacher" in team_page.text
    queue = await client.get("/pro/equipe/sms")
    assert "C&#39;est Moussa, ok" in queue.text or "C'est Moussa, ok" in queue.text
    assert "Awa" in queue.text and "Moussa" in queue.text and "•• •• •• •• 71" in queue.text
    assert "639980071" not in queue.text

    answer = await post_form(
        client, f"/pro/equipe/sms/{item.id}/rattacher", {"jeune": str(brother.id)}
    )

    assert answer.status_code == 303
    session.expire_all()
    [message] = _thread_messages(session, brother)
    assert message.body == "C'est Moussa, ok" and message.received_by_sms and message.from_youth
    assert _thread_messages(session, sister) == []
    assert session.get_one(Youth, brother.id).last_activity_at == message.sent_at
    resolved = session.get_one(InboundSms, item.id)
    assert resolved.status is InboundSmsStatus.ATTACHED and resolved.body == ""
    assert resolved.message_id == message.id
    assert (
        session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "inbound_sms.attach", AuditEvent.youth_id == brother.id)
        )
        == 1
    )
    assert "Aucun SMS à rattacher" in (await client.get("/pro/equipe/sms")).text
    # Attached once: a second click finds it done.
    again = await post_form(
        client, f"/pro/equipe/sms/{item.id}/rattacher", {"jeune": str(brother.id)}
    )
    assert again.status_code == 404
    assert len(_thread_messages(session, brother)) == 1


async def test_an_unknown_number_shows_its_text_and_last_two_digits_and_can_be_discarded(
    webhook_app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    _referent, supervisor = _team(session, "Centre")
    somebody = create_youth(session, phone="+33639980072")
    session.commit()
    event = {"event": "reply", "from": "33639980099", "reply": "Qui est-ce ?", "ts_event": TS}

    assert (await _post(client, event)).json() == {"status": "ok"}

    session.expire_all()
    item = session.scalars(select(InboundSms)).one()
    assert item.candidate_ids == [] and item.sender_last_digits == "99"
    assert _thread_messages(session, somebody) == []
    sign_in_as(client, webhook_app, session, staff=supervisor)
    queue = await client.get("/pro/equipe/sms")
    assert "Qui est-ce ?" in queue.text and "•• •• •• •• 99" in queue.text
    assert "numéro inconnu" in queue.text and "Rattacher" not in queue.text

    answer = await post_form(client, f"/pro/equipe/sms/{item.id}/ecarter")

    assert answer.status_code == 303
    session.expire_all()
    discarded = session.get_one(InboundSms, item.id)
    assert discarded.status is InboundSmsStatus.DISCARDED and discarded.body == ""
    assert "Qui est-ce ?" not in (await client.get("/pro/equipe/sms")).text


async def test_outside_the_scope_the_queue_shows_nothing_and_attaching_is_a_404(
    webhook_app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    referent, supervisor = _team(session, "Sud")
    other_referent, other_supervisor = _team(session, "Ailleurs")
    first = create_youth(session, phone=E164)
    second = create_youth(session, phone=E164)
    elsewhere = create_youth(session, phone="+33639980073")
    assign(session, first, referent)
    assign(session, second, referent)
    assign(session, elsewhere, other_referent)
    session.commit()
    event = {"event": "reply", "from": "33639980071", "reply": "Texte privé", "ts_event": TS}
    await _post(client, event)
    item = session.scalars(select(InboundSms)).one()
    url = f"/pro/equipe/sms/{item.id}/rattacher"

    # A supervisor of another team: not in their queue, and a 404 (audited) if tried.
    sign_in_as(client, webhook_app, session, staff=other_supervisor)
    assert "Texte privé" not in (await client.get("/pro/equipe/sms")).text
    before = _denials(session, other_supervisor)
    refused = await post_form(client, url, {"jeune": str(first.id)})
    assert refused.status_code == 404
    assert _denials(session, other_supervisor) == before + 1

    # The right supervisor, but a youth who is not a candidate (even one of their team).
    own = create_youth(session, phone="+33639980074")
    assign(session, own, referent)
    session.commit()
    sign_in_as(client, webhook_app, session, staff=supervisor)
    before = _denials(session, supervisor)
    assert (await post_form(client, url, {"jeune": str(own.id)})).status_code == 404
    assert (await post_form(client, url, {"jeune": str(elsewhere.id)})).status_code == 404
    assert _denials(session, supervisor) == before + 2

    # A référent: not their page at all.
    sign_in_as(client, webhook_app, session, staff=referent)
    assert (await post_form(client, url, {"jeune": str(first.id)})).status_code == 403
    assert (await client.get("/pro/equipe/sms")).status_code == 403

    session.expire_all()
    for youth in (first, second, own, elsewhere):
        assert _thread_messages(session, youth) == []
    assert session.get_one(InboundSms, item.id).status is InboundSmsStatus.WAITING


async def test_attaching_without_choosing_says_so_and_keeps_the_sms(
    webhook_app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    referent, supervisor = _team(session, "Est-2")
    for _ in range(2):
        assign(session, create_youth(session, phone=E164), referent)
    session.commit()
    await _post(
        client, {"event": "reply", "from": "33639980071", "reply": "Bonjour", "ts_event": TS}
    )
    item = session.scalars(select(InboundSms)).one()
    sign_in_as(client, webhook_app, session, staff=supervisor)
    answer = await post_form(client, f"/pro/equipe/sms/{item.id}/rattacher")
    assert answer.status_code == 422
    assert "Choisissez le jeune" in answer.text and "Bonjour" in answer.text


# --- The race ------------------------------------------------------------------------------

PARALLEL = 36


def test_thirty_six_copies_of_one_reply_at_once_make_one_message(tmp_path: Path) -> None:
    url = postgres_schema_url("sms_inbound_race", needed_for="the SMS reply race on PostgreSQL")
    with race_platform(url, tmp_path, sms_webhook_token=TOKEN) as platform:
        with platform.factory.begin() as session:
            youth = create_youth(session, phone=E164)
            _our_sms(session, youth, 7100)
            youth_id = youth.id
        event = brevo_reply_event(message_id=7100, to=E164, text="J'arrive", ts_event=TS)

        def deliver(_index: int) -> str:
            with httpx.Client(base_url=platform.url, timeout=60) as client:
                response = client.post(WEBHOOK, json=event, headers=AUTH)
                assert response.status_code == 200, response.text
                return str(response.json()["status"])

        answers = sorted(at_once(PARALLEL, deliver))

        assert answers == ["duplicate"] * (PARALLEL - 1) + ["ok"]
        with platform.factory() as session:
            youth = session.get_one(Youth, youth_id)
            assert [message.body for message in _thread_messages(session, youth)] == ["J'arrive"]
            assert session.scalar(select(func.count()).select_from(InboundSms)) == 0
