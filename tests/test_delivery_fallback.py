"""Fallback driven by delivery (issue 18, part 3): an SMS that is not delivered within the
admin's delay, or bounces, is followed by the email (and the reverse) exactly once; when
the second channel fails too, the number is flagged and the référent gets a task
"Numéro à vérifier". Against the fake Brevo API and webhook bodies of tests/brevo, and a
real SMTP server that refuses the address."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import jsonschema  # type: ignore[import-untyped]
import pytest
import time_machine
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.audit.models import AuditEvent
from paris_avenir.messaging import fallback, outbox
from paris_avenir.messaging.channels import Channels
from paris_avenir.messaging.channels.email_smtp import SmtpEmailSender
from paris_avenir.messaging.channels.sms_brevo import BrevoSmsSender
from paris_avenir.messaging.models import DeliveryFallback, OutboxMessage, OutboxStatus
from paris_avenir.outreach import delivery
from paris_avenir.outreach import policy as outreach_policy
from paris_avenir.staff.models import StaffRole, StaffTask, StaffUser, TaskKind, Team
from paris_avenir.youths.models import Channel, Youth
from tests.conftest import postgres_schema_url
from tests.factories import assign, create_outbox_message, create_staff, create_youth, request_code
from tests.helpers import at_once, post_form, sign_in_as
from tests.servers import BrevoSmsApi, SmtpServer, brevo_webhook_schema, free_port

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # a Wednesday, 11:00 in Paris
PHONE = "+33639980042"
WEBHOOK = "/webhooks/sms/brevo"
TOKEN = "hook-secret"
BASE_URL = "http://testserver"


@pytest.fixture(autouse=True)
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def webhook_app(app: FastAPI) -> FastAPI:
    app.state.settings = app.state.settings.model_copy(
        update={"sms_webhook_token": TOKEN, "base_url": BASE_URL}
    )
    return app


class _RefusingHandler:
    """An SMTP server whose mailboxes do not exist: a permanent failure (550)."""

    async def handle_RCPT(
        self, _server: Any, _session: Any, _envelope: Any, _address: str, _options: Any
    ) -> str:
        return "550 5.1.1 Mailbox unknown"


@pytest.fixture
def refusing_smtp() -> Iterator[str]:
    port = free_port()
    controller = Controller(_RefusingHandler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}"
    finally:
        controller.stop()


def channels(sms_api: BrevoSmsApi, smtp_url: str) -> Channels:
    return Channels(
        sms=BrevoSmsSender(api_url=sms_api.url, api_key=BrevoSmsApi.API_KEY, sender="ParisAvenir"),
        email=SmtpEmailSender(smtp_url, sender="Paris avenir <pa@example.org>"),
    )


def brevo_event(message: OutboxMessage, status: str, at: datetime) -> dict[str, Any]:
    """A delivery receipt as Brevo's webhook posts it (tests/brevo/sms-webhook.json)."""
    assert message.provider_message_id is not None
    event = {
        "id": 26570,
        "to": message.recipient.lstrip("+"),
        "sms_count": 1,
        "credits_used": 1.0,
        "messageId": int(message.provider_message_id),
        "remaining_credit": 1000.0,
        "msg_status": status,
        "date": at.astimezone(ZoneInfo("Europe/Paris")).strftime("%Y-%m-%d %H:%M:%S"),
        "type": "transactional",
        "reference": f"ref{message.provider_message_id}",
        "ts_event": int(at.timestamp()),
    }
    jsonschema.Draft202012Validator(brevo_webhook_schema()).validate(event)
    return event


@pytest.fixture
def referent(session: Session) -> StaffUser:
    team = Team(name=f"Équipe {time.monotonic_ns()}")
    session.add(team)
    session.flush()
    return create_staff(session, full_name="Awa Diallo", team_id=team.id)


def followed_youth(session: Session, referent: StaffUser, **values: Any) -> Youth:
    defaults: dict[str, Any] = {
        "phone": PHONE,
        "birth_date": date(2004, 6, 1),
        "activated_at": NOW - timedelta(days=400),
    }
    youth = create_youth(session, **(defaults | values))
    assign(session, youth, referent, started_at=NOW - timedelta(days=300))
    return youth


def sent(
    session: Session,
    youth: Youth,
    *,
    template: str = "outreach_inactivite",
    channel: Channel = Channel.SMS,
    at: datetime = NOW,
    status: OutboxStatus = OutboxStatus.SENT,
) -> OutboxMessage:
    """A message the outbox queued and sent at `at` (the provider gave it an id)."""
    message = create_outbox_message(
        session, youth, template=template, channel=channel, now=at - timedelta(minutes=1)
    )
    message.status = status
    message.sent_at = at
    message.provider_message_id = str(int(time.monotonic_ns() % 10**9))
    session.commit()
    return message


def run(session: Session, now: datetime, *, receipts: bool = True) -> delivery.FallbackReport:
    report = delivery.run(session, base_url=BASE_URL, receipts=receipts, now=now)
    session.commit()
    return report


def fallbacks(session: Session, youth: Youth) -> list[OutboxMessage]:
    return list(
        session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.youth_id == youth.id,
                OutboxMessage.idempotency_key.startswith(fallback.KEY_PREFIX),
            )
        )
    )


def number_checks(session: Session, youth: Youth) -> list[StaffTask]:
    return list(
        session.scalars(
            select(StaffTask).where(
                StaffTask.youth_id == youth.id, StaffTask.kind == TaskKind.NUMBER_TO_CHECK
            )
        )
    )


def test_an_sms_without_a_receipt_is_followed_by_the_email_after_24_hours_once(
    session: Session, referent: StaffUser
) -> None:
    youth = followed_youth(session, referent)
    sms = sent(session, youth)
    delivered_to = followed_youth(session, referent, phone="+33639980043")
    delivered = sent(session, delivered_to)
    outbox.apply_receipt(session, str(delivered.provider_message_id), OutboxStatus.DELIVERED)
    session.commit()

    assert run(session, NOW + timedelta(hours=23, minutes=59)).queued == 0
    assert fallbacks(session, youth) == []

    assert run(session, NOW + timedelta(hours=24)).queued == 1
    [email] = fallbacks(session, youth)
    assert email.channel is Channel.EMAIL and email.recipient == youth.email
    assert email.idempotency_key == f"fallback:{sms.id}"
    assert email.template == sms.template  # an outreach email: it keeps its stop link
    assert email.status is OutboxStatus.QUEUED
    assert email.next_attempt_at == NOW + timedelta(hours=24)  # 11:00 on Thursday: at once
    assert email.subject == "Un message de Paris avenir pour vous"
    assert "Nous vous avons envoyé un SMS, mais il ne vous est pas arrivé" in email.body_text
    assert f"{BASE_URL}/mon-espace" in email.body_text

    # Never twice, and never for the SMS that was delivered.
    assert run(session, NOW + timedelta(hours=30)).queued == 0
    assert len(fallbacks(session, youth)) == 1
    assert fallbacks(session, delivered_to) == []
    # The email was only a fallback: nobody is flagged, no task yet.
    session.refresh(youth)
    assert youth.phone_unreachable_at is None and number_checks(session, youth) == []


def test_without_delivery_receipts_only_a_failure_counts(
    session: Session, referent: StaffUser
) -> None:
    youth = followed_youth(session, referent)
    sent(session, youth)
    assert run(session, NOW + timedelta(days=3), receipts=False).queued == 0
    assert fallbacks(session, youth) == []


def test_an_sms_sent_through_a_provider_without_receipts_is_not_called_undelivered(
    session: Session, referent: StaffUser
) -> None:
    # After a failover to Primotexto (no delivery webhook), its SMS stay "sent": their
    # silence is no failure, while Brevo's still counts.
    through_primotexto = followed_youth(session, referent)
    sent(session, through_primotexto).sms_provider = "primotexto"
    through_brevo = followed_youth(session, referent, phone="+33639980044")
    sent(session, through_brevo).sms_provider = "brevo"
    session.commit()
    assert run(session, NOW + timedelta(days=2)).queued == 1
    assert fallbacks(session, through_primotexto) == []
    assert len(fallbacks(session, through_brevo)) == 1


def test_the_admins_delay_is_the_one_used_and_checked(
    session: Session, referent: StaffUser
) -> None:
    youth = followed_youth(session, referent)
    sent(session, youth)
    values = {name: str(value) for name, value in outreach_policy.defaults().items()}
    for wrong in ("0", "169", "douze"):
        with pytest.raises(outreach_policy.PolicyError) as refused:
            outreach_policy.save(session, values | {"fallback_delay_hours": wrong}, by_id=None)
        assert "« Un SMS non reçu après … heures est suivi d’un e-mail »" in str(refused.value)
    outreach_policy.save(session, values | {"fallback_delay_hours": "6"}, by_id=None)
    session.commit()
    assert run(session, NOW + timedelta(hours=5)).queued == 0
    assert run(session, NOW + timedelta(hours=6)).queued == 1


async def test_the_admin_page_offers_the_delay_with_a_french_error(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    admin = create_staff(session, StaffRole.ADMIN)
    sign_in_as(client, app, session, staff=admin)
    page = await client.get("/pro/admin/relances")
    assert "Un SMS non reçu après … heures est suivi d’un e-mail" in page.text
    assert 'name="fallback_delay_hours"' in page.text and 'value="24"' in page.text
    values = {name: str(value) for name, value in outreach_policy.defaults().items()}
    refused = await post_form(client, "/pro/admin/relances", values | {"fallback_delay_hours": "0"})
    assert refused.status_code == 422
    assert "écrivez un nombre d’heures entre 1 et 168" in refused.text
    saved = await post_form(client, "/pro/admin/relances", values | {"fallback_delay_hours": "12"})
    assert saved.status_code == 303
    session.expire_all()
    assert outreach_policy.load(session).fallback_delay == timedelta(hours=12)


async def test_a_hard_bounce_sends_the_email_at_once_then_its_failure_opens_the_task(
    webhook_app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    session_factory: sessionmaker[Session],
    referent: StaffUser,
    sms_api: BrevoSmsApi,
    refusing_smtp: str,
) -> None:
    youth = followed_youth(session, referent)
    notice = create_outbox_message(
        session, youth, template="new_message", key="new-message:essai", now=NOW
    )
    session.commit()
    # Sent through the fake Brevo API, which gives it its messageId.
    report = outbox.dispatch_due(session_factory, channels(sms_api, refusing_smtp), now=NOW)
    assert report.sent == [notice.id]
    session.refresh(notice)

    bounce = brevo_event(notice, "hard_bounce", NOW + timedelta(minutes=2))
    answer = await client.post(WEBHOOK, json=bounce, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    session.expire_all()
    [email] = fallbacks(session, youth)  # at once: no pass has run
    assert email.channel is Channel.EMAIL and email.recipient == youth.email
    assert f"{BASE_URL}/mon-espace/messages" in email.body_text
    assert session.get_one(Youth, youth.id).phone_unreachable_at is not None
    # The same receipt again (Brevo retries): nothing more.
    again = await client.post(WEBHOOK, json=bounce, headers={"Authorization": f"Bearer {TOKEN}"})
    assert again.json()["status"] == "duplicate"
    assert len(fallbacks(session, youth)) == 1

    # The email is refused for good by the mail server (550).
    sent_now = outbox.dispatch_due(
        session_factory, channels(sms_api, refusing_smtp), now=NOW + timedelta(minutes=5)
    )
    assert sent_now.failed == [email.id]
    report_pass = run(session, NOW + timedelta(minutes=10))
    assert len(report_pass.tasks) == 1
    [task] = number_checks(session, youth)
    assert task.assignee_id == referent.id and task.done_at is None
    about = task.detail["about"]
    assert "SMS du 02/12/2026 : échec" in about
    assert "E-mail du 02/12/2026 : échec (adresse refusée)." in about
    assert "se termine par 42" in about and PHONE not in about and "0639980042" not in about
    session.refresh(youth)
    assert youth.phone_unreachable_at is not None and youth.email_unreachable_at is not None
    # Later passes: still one task.
    assert run(session, NOW + timedelta(days=1)).tasks == []
    assert len(number_checks(session, youth)) == 1

    # The référent reads it in "À faire": what failed and the masked number.
    sign_in_as(client, webhook_app, session, staff=referent)
    page = (await client.get("/pro/a-faire")).text
    assert "Numéro à vérifier" in page
    assert "E-mail du 02/12/2026 : échec (adresse refusée)." in page
    assert "se termine par 42" in page and "0042" not in page.replace("se termine par 42", "")
    # Closed with the existing outcomes.
    closed = await post_form(client, f"/pro/a-faire/{task.id}", {"resultat": "joint"})
    assert closed.status_code == 303
    session.expire_all()
    assert session.get_one(StaffTask, task.id).done_at is not None


async def test_a_late_delivered_receipt_cancels_the_fallback_still_waiting_for_the_morning(
    webhook_app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    session_factory: sessionmaker[Session],
    referent: StaffUser,
    sms_api: BrevoSmsApi,
    smtp_server: SmtpServer,
) -> None:
    evening = datetime(2026, 12, 2, 20, 0, tzinfo=UTC)  # 21:00 in Paris
    youth = followed_youth(session, referent)
    notice = create_outbox_message(
        session, youth, template="new_message", key="new-message:tard", now=evening
    )
    other = followed_youth(session, referent, phone="+33639980044")
    other_notice = create_outbox_message(
        session, other, template="new_message", key="new-message:autre", now=evening
    )
    session.commit()
    notice.respects_quiet_hours = other_notice.respects_quiet_hours = False  # a référent's
    session.commit()
    sending = channels(sms_api, smtp_server.url)
    report = outbox.dispatch_due(session_factory, sending, now=evening)
    assert sorted(report.sent) == sorted([notice.id, other_notice.id])
    # No receipt 24 h later, in quiet hours: both emails wait for 09:00.
    assert run(session, evening + timedelta(hours=24)).queued == 2
    [email] = fallbacks(session, youth)
    [other_email] = fallbacks(session, other)
    assert email.next_attempt_at == datetime(2026, 12, 4, 8, 0, tzinfo=UTC)

    # At 23:00 the SMS's receipt comes at last: delivered.
    session.refresh(notice)
    late = brevo_event(notice, "delivered", evening + timedelta(hours=26))
    answer = await client.post(WEBHOOK, json=late, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    session.expire_all()
    assert session.get_one(OutboxMessage, notice.id).status is OutboxStatus.DELIVERED
    assert session.get_one(OutboxMessage, email.id).status is OutboxStatus.CANCELLED
    assert session.get_one(OutboxMessage, other_email.id).status is OutboxStatus.QUEUED

    # In the morning only the other youth's email leaves; no task for anyone.
    morning = outbox.dispatch_due(
        session_factory, sending, now=datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
    )
    assert morning.sent == [other_email.id]
    assert [message["To"] for message in smtp_server.inbox] == [other.email]
    assert run(session, datetime(2026, 12, 5, 9, 0, tzinfo=UTC)).tasks == []


async def test_another_referent_cannot_see_or_close_the_task(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser
) -> None:
    youth = followed_youth(session, referent, email=None)
    sms = sent(session, youth, status=OutboxStatus.FAILED)
    run(session, NOW + timedelta(minutes=1))
    [task] = number_checks(session, youth)
    assert "Pas d’autre moyen de le joindre par message." in task.detail["about"]
    colleague = create_staff(session, team_id=referent.team_id)
    session.commit()
    sign_in_as(client, app, session, staff=colleague)
    assert "Numéro à vérifier" not in (await client.get("/pro/a-faire")).text
    refused = await post_form(client, f"/pro/a-faire/{task.id}", {"resultat": "joint"})
    missing = await post_form(
        client, "/pro/a-faire/00000000-0000-0000-0000-000000000000", {"resultat": "joint"}
    )
    assert refused.status_code == missing.status_code == 404
    assert refused.text == missing.text
    session.expire_all()
    assert session.get_one(StaffTask, task.id).done_at is None
    denied = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "access_denied", AuditEvent.object_id == task.id
        )
    ).all()
    assert [event.actor_staff_id for event in denied] == [colleague.id]
    assert sms.id is not None


def test_sign_in_and_contact_codes_never_fall_back(session: Session, referent: StaffUser) -> None:
    youth = followed_youth(session, referent)
    code = request_code(
        session, secret_key="s" * 40, raw_destination=PHONE, ip_address="127.0.0.1", now=NOW
    )
    assert code.outbox_message is not None
    code.outbox_message.status = OutboxStatus.FAILED
    others = [
        sent(session, youth, template=template, status=status)
        for template in ("sign_in_code", "contact_code", "contact_changed")
        for status in (OutboxStatus.SENT, OutboxStatus.FAILED)
    ]
    session.commit()
    report = run(session, NOW + timedelta(days=2))
    assert report.queued == 0 and report.tasks == []
    assert fallbacks(session, youth) == [] and number_checks(session, youth) == []
    assert len(others) == 6


def test_a_bounced_email_is_followed_by_an_sms_in_the_morning_then_the_task(
    session: Session, referent: StaffUser
) -> None:
    youth = followed_youth(session, referent, language="en")
    evening = datetime(2026, 12, 2, 20, 30, tzinfo=UTC)  # 21:30 in Paris: quiet hours
    email = sent(
        session, youth, template="appointment_confirmation", channel=Channel.EMAIL, at=evening
    )
    email.status = OutboxStatus.FAILED
    session.commit()
    run(session, evening + timedelta(minutes=5))
    [sms] = fallbacks(session, youth)
    assert sms.channel is Channel.SMS and sms.recipient == PHONE
    assert sms.next_attempt_at == datetime(2026, 12, 3, 8, 0, tzinfo=UTC)  # 09:00 in Paris
    assert sms.respects_quiet_hours
    assert "Paris avenir" in sms.body_text and f"{BASE_URL}/mon-espace/rendez-vous" in sms.body_text
    assert sms.body_text.startswith("Paris avenir: our email did not reach you.")  # English
    # Sent in the morning; no receipt 24 h later: the second failure.
    sms.status, sms.sent_at = OutboxStatus.SENT, datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    session.commit()
    assert run(session, datetime(2026, 12, 4, 7, 59, tzinfo=UTC)).tasks == []
    assert len(run(session, datetime(2026, 12, 4, 8, 0, tzinfo=UTC)).tasks) == 1
    [task] = number_checks(session, youth)
    assert "E-mail du 02/12/2026 : échec (adresse refusée)." in task.detail["about"]
    assert "SMS du 03/12/2026 : pas reçu (aucun accusé de réception)." in task.detail["about"]
    session.refresh(youth)
    assert youth.phone_unreachable_at is not None  # asked to confirm at the next sign-in


def test_one_open_task_per_youth(session: Session, referent: StaffUser) -> None:
    youth = followed_youth(session, referent, email=None)
    sent(session, youth, status=OutboxStatus.FAILED)
    sent(session, youth, template="request_update", status=OutboxStatus.FAILED)
    run(session, NOW + timedelta(minutes=1))
    assert len(number_checks(session, youth)) == 1


def test_nothing_follows_what_the_youth_has_fixed_or_seen(
    session: Session, referent: StaffUser
) -> None:
    changed = followed_youth(session, referent)
    sent(session, changed)
    changed.phone = "+33639980077"  # a new number since: the old one does not matter
    came = followed_youth(session, referent, phone="+33639980078")
    sent(session, came)
    came.last_activity_at = NOW + timedelta(hours=2)  # signed in since
    past = followed_youth(session, referent, phone="+33639980079")
    reminder = sent(session, past, template="appointment_reminder")
    reminder.expires_at = NOW + timedelta(hours=2)  # the appointment has started
    session.commit()
    report = run(session, NOW + timedelta(days=1))
    assert report.queued == 0 and report.tasks == []
    assert session.scalar(select(func.count()).select_from(DeliveryFallback)) == 3
    assert run(session, NOW + timedelta(days=2)).queued == 0  # taken once, never again


# --- Races on PostgreSQL ------------------------------------------------------------------

PARALLEL = 36


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sessionmaker[Session]]:
    from paris_avenir.db import create_database_engine, make_session_factory
    from paris_avenir.migrate import upgrade_to_head

    url = postgres_schema_url("delivery_fallback_races", needed_for="races on PostgreSQL")
    engine = create_database_engine(url, pool_size=PARALLEL + 4, max_overflow=0)
    upgrade_to_head(engine)
    yield make_session_factory(engine)
    engine.dispose()


def test_36_passes_at_once_queue_one_fallback_and_open_one_task(
    postgres: sessionmaker[Session],
) -> None:
    with postgres.begin() as session:
        team = Team(name=f"Course {time.monotonic_ns()}")
        session.add(team)
        session.flush()
        referent = create_staff(session, team_id=team.id)
        youth = create_youth(session, activated_at=NOW - timedelta(days=100))
        assign(session, youth, referent)
        sms = create_outbox_message(session, youth, template="new_message", now=NOW)
        sms.status, sms.sent_at, sms.provider_message_id = OutboxStatus.SENT, NOW, "race-1"
        youth_id, sms_id = youth.id, sms.id

    def one_pass(_index: int, at: datetime) -> int:
        with postgres.begin() as session:
            return delivery.run(session, base_url=BASE_URL, receipts=True, now=at).queued

    later = NOW + timedelta(hours=25)
    assert sum(at_once(PARALLEL, lambda index: one_pass(index, later))) == 1
    with postgres.begin() as session:
        emails = session.scalars(
            select(OutboxMessage).where(OutboxMessage.idempotency_key == f"fallback:{sms_id}")
        ).all()
        assert len(emails) == 1
        assert (
            session.scalar(
                select(func.count())
                .select_from(DeliveryFallback)
                .where(DeliveryFallback.original_id == sms_id)
            )
            == 1
        )
        emails[0].status = OutboxStatus.FAILED  # the mail server refused it

    def second(_index: int) -> int:
        with postgres.begin() as session:
            found = delivery.run(session, base_url=BASE_URL, receipts=True, now=later)
            return len(found.tasks)

    assert sum(at_once(PARALLEL, second)) == 1
    with postgres.begin() as session:
        opened = session.scalars(
            select(StaffTask).where(
                StaffTask.youth_id == youth_id, StaffTask.kind == TaskKind.NUMBER_TO_CHECK
            )
        ).all()
        assert len(opened) == 1


def test_the_scheduler_counts_receipts_only_when_the_webhook_is_set_up(
    session: Session, session_factory: sessionmaker[Session], settings: Any, referent: StaffUser
) -> None:
    from paris_avenir.scheduler import delivery_fallback

    youth = followed_youth(session, referent)
    sent(session, youth, at=NOW - timedelta(hours=25))
    delivery_fallback(session_factory, settings)  # no webhook token: no receipt ever comes
    session.expire_all()
    assert fallbacks(session, youth) == []
    delivery_fallback(session_factory, settings.model_copy(update={"sms_webhook_token": TOKEN}))
    session.expire_all()
    assert [message.channel for message in fallbacks(session, youth)] == [Channel.EMAIL]
