"""Every kind of email the platform sends, captured by a real SMTP server (aiosmtpd) that
does not offer 8BITMIME, and read back with Python's email parser: the headers mail systems
look at, a text/html alternative, only 7-bit data on the wire; and the one-click
unsubscribe of outreach emails (RFC 8058) with a plain POST."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import time_machine
from aiosmtpd.controller import Controller
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.aid_requests import instruction
from paris_avenir.aid_requests.models import AidCode, RequestStatus
from paris_avenir.appointments import service as appointments
from paris_avenir.auth import codes
from paris_avenir.backoffice import importer
from paris_avenir.config import Settings
from paris_avenir.kit.dates import add_months
from paris_avenir.messaging import notices, notifications, outbox, unsubscribe
from paris_avenir.messaging.channels import Channels
from paris_avenir.messaging.channels.email_smtp import SmtpEmailSender
from paris_avenir.messaging.channels.sms_file import FileSmsSender
from paris_avenir.messaging.models import OutboxMessage, OutboxStatus
from paris_avenir.outreach import engine
from paris_avenir.outreach import notices as outreach_notices
from paris_avenir.outreach.models import OutreachReason
from paris_avenir.staff import tasks
from paris_avenir.staff.models import StaffRole, TaskKind
from paris_avenir.youths.activity import Activity, record_activity
from paris_avenir.youths.models import Channel, Youth
from tests.factories import (
    assign,
    create_aid_request,
    create_appointment,
    create_outreach_attempt,
    create_staff,
    create_youth,
)
from tests.servers import free_port

PARIS = ZoneInfo("Europe/Paris")
# A Wednesday, 10:00 in Paris: inside the sending window.
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
BASE_URL = "https://paris-avenir.example.org"
SECRET = "test-secret-key-" + "x" * 32


# --- An SMTP server that offers no 8BITMIME -------------------------------------------------


@dataclass
class Received:
    raw: bytes
    message: EmailMessage


@dataclass
class _SevenBitHandler:
    inbox: list[Received] = field(default_factory=list)
    offered: list[str] = field(default_factory=list)

    async def handle_EHLO(
        self, _server: Any, session: Any, _envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        kept = [line for line in responses if "8BITMIME" not in line and "SMTPUTF8" not in line]
        self.offered = kept
        return kept

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        raw = bytes(envelope.original_content or envelope.content)
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.inbox.append(Received(raw, parsed))
        return "250 Message accepted for delivery"


@pytest.fixture
def seven_bit_smtp() -> Iterator[tuple[str, _SevenBitHandler]]:
    handler = _SevenBitHandler()
    port = free_port()
    # decode_data=True: the server does not announce 8BITMIME (RFC 6152).
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=True)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", handler
    finally:
        controller.stop()


def _channels(tmp_path: Path, smtp_url: str) -> Channels:
    return Channels(
        sms=FileSmsSender(tmp_path / "sms.jsonl"),
        email=SmtpEmailSender(
            smtp_url,
            sender="Paris avenir <ne-pas-repondre@paris.fr>",
            domain="paris-avenir.example.org",
        ),
        base_url=BASE_URL,
        secret_key=SECRET,
    )


# --- Every kind of email, queued by the code that queues it in the product ------------------


def _email_youth(session: Session, **overrides: Any) -> Youth:
    values: dict[str, Any] = {"preferred_channel": Channel.EMAIL, "first_name": "Zoé"}
    values.update(overrides)
    return create_youth(session, **values)


def _sign_in_code(session: Session) -> None:
    youth = _email_youth(session)
    assert youth.email
    codes.queue_code(
        session,
        youth=youth,
        channel=Channel.EMAIL,
        recipient=youth.email,
        code="482913",
        template="sign_in_code",
        key="sign-in-code:test",
        now=NOW,
    )


def _contact_code(session: Session) -> None:
    youth = _email_youth(session)
    codes.queue_code(
        session,
        youth=youth,
        channel=Channel.EMAIL,
        recipient="nouvelle.adresse@example.org",
        code="482913",
        template="contact_code",
        key="contact-code:test",
        now=NOW,
    )


def _new_message(session: Session) -> None:
    notice = notices.new_message(
        thread_id=uuid.uuid4(), first_unread_id=uuid.uuid4(), base_url=BASE_URL
    )
    notifications.notify(session, _email_youth(session), notice, now=NOW)


def _contact_changed(session: Session) -> None:
    notifications.notify_previous_contact(
        session,
        _email_youth(session),
        changed=Channel.EMAIL,
        channel=Channel.EMAIL,
        recipient="ancienne.adresse@example.org",
        key="contact-changed:test",
        now=NOW,
    )


def _appointment(session: Session, youth: Youth) -> Any:
    referent = create_staff(session)
    assign(session, youth, referent)
    return create_appointment(
        session, youth, referent, NOW + timedelta(days=3), address="5 rue de l’Église"
    )


def _appointment_confirmation(session: Session) -> None:
    youth = _email_youth(session)
    appointments._confirm(session, youth, _appointment(session, youth), base_url=BASE_URL, now=NOW)


def _appointment_cancellation(session: Session) -> None:
    youth = _email_youth(session)
    appointments.cancel(session, _appointment(session, youth), youth, now=NOW, base_url=BASE_URL)


def _appointment_reminder(session: Session) -> None:
    youth = _email_youth(session)
    appointment = _appointment(session, youth)
    assert appointments.schedule_reminders(session, youth, appointment, base_url=BASE_URL, now=NOW)


def _follow_up_interview(session: Session) -> None:
    today = NOW.astimezone(PARIS).date()
    youth = _email_youth(session, ase_exit_date=add_months(today, -6) + timedelta(days=10))
    assign(session, youth, create_staff(session))
    assert appointments.propose_follow_up_interviews(session, base_url=BASE_URL, now=NOW)


def _request_update(session: Session) -> None:
    youth = _email_youth(session)
    request = create_aid_request(
        session, youth, aid_code=AidCode.NAVIGO, status=RequestStatus.GRANTED
    )
    session.flush()
    instruction._tell_youth(session, request, uuid.uuid4(), BASE_URL, NOW)


def _invitation(session: Session) -> None:
    assert importer._invite(session, _email_youth(session), base_url=BASE_URL, now=NOW)


def _urgent_alert(session: Session) -> None:
    youth = _email_youth(session)
    assign(session, youth, create_staff(session))
    tasks.open_task(
        session,
        youth_id=youth.id,
        kind=TaskKind.NEEDS_HELP_ALERT,
        key="urgent:test",
        now=NOW,
        base_url=BASE_URL,
    )


def _unassigned_alert(session: Session) -> None:
    create_staff(session, StaffRole.ADMIN)
    youth = _email_youth(session)  # no référent, no team: nobody to take the alert
    tasks.open_task(
        session,
        youth_id=youth.id,
        kind=TaskKind.NEEDS_HELP_ALERT,
        key="unassigned:test",
        now=NOW,
        base_url=BASE_URL,
    )


def _outreach(reason: OutreachReason) -> Callable[[Session], None]:
    def queue(session: Session) -> None:
        youth = _email_youth(session)
        attempt = create_outreach_attempt(
            session,
            youth,
            reason=reason,
            step=engine.STEP_EMAIL,
            period_key="test",
            channel=Channel.EMAIL,
            at=NOW,
        )
        link = f"{BASE_URL}/point/abc" if reason is OutreachReason.CHECK_IN else None
        notice = outreach_notices.for_attempt(youth, attempt, base_url=BASE_URL, link=link)
        assert notifications.notify(session, youth, notice, now=NOW) is not None

    return queue


OUTREACH_REASONS = [
    reason
    for reason in OutreachReason
    if reason is OutreachReason.INACTIVITY
    or reason is OutreachReason.CHECK_IN
    or reason in engine.TRIGGER_TEXTS
]
KINDS: dict[str, Callable[[Session], None]] = {
    "sign_in_code": _sign_in_code,
    "contact_code": _contact_code,
    "new_message": _new_message,
    "contact_changed": _contact_changed,
    "appointment_confirmation": _appointment_confirmation,
    "appointment_cancellation": _appointment_cancellation,
    "appointment_reminder": _appointment_reminder,
    "follow_up_interview": _follow_up_interview,
    "request_update": _request_update,
    "invitation": _invitation,
    "task_urgent_alert": _urgent_alert,
    "task_unassigned_alert": _unassigned_alert,
    **{f"outreach_{reason.value}": _outreach(reason) for reason in OUTREACH_REASONS},
}


def _send_all(
    session: Session, session_factory: sessionmaker[Session], channels: Channels, now: datetime
) -> outbox.DispatchReport:
    session.commit()
    return outbox.dispatch_due(session_factory, channels, now=now)


def _html_part(message: EmailMessage) -> EmailMessage:
    part = message.get_body(preferencelist=("html",))
    assert part is not None and part.get_content_type() == "text/html"
    return part  # type: ignore[return-value]


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")  # CRLF: the SMTP line ends


def test_every_kind_of_email_is_listed() -> None:
    """The kinds above are every email template the code queues: a new one must be added."""
    root = Path(__file__).resolve().parent.parent / "paris_avenir"
    found = set()
    for source in root.rglob("*.py"):
        found |= set(re.findall(r'template="([a-z_]+)"', source.read_text()))
    found |= {f"outreach_{reason.value}" for reason in OUTREACH_REASONS}
    found -= {"test"}
    assert found <= set(KINDS), found - set(KINDS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_email_is_one_mail_systems_trust(
    kind: str,
    session: Session,
    session_factory: sessionmaker[Session],
    seven_bit_smtp: tuple[str, _SevenBitHandler],
    tmp_path: Path,
) -> None:
    smtp_url, server = seven_bit_smtp
    KINDS[kind](session)
    queued = session.scalars(
        select(OutboxMessage).where(OutboxMessage.channel == Channel.EMAIL)
    ).all()
    assert {message.template for message in queued} == {kind}
    # Each when it is due (a reminder: before its appointment).
    moments = sorted({message.next_attempt_at or NOW for message in queued})
    channels = _channels(tmp_path, smtp_url)
    sent = [len(_send_all(session, session_factory, channels, moment).sent) for moment in moments]
    assert sum(sent) == len(queued) >= 1
    assert len(server.inbox) == len(queued)
    assert not any("8BITMIME" in line for line in server.offered)

    for received in server.inbox:
        message = received.message
        # Nothing 8-bit on the wire, since the server did not offer 8BITMIME.
        assert max(received.raw) < 128
        date = parsedate_to_datetime(str(message["Date"]))
        assert date.tzinfo is not None and date in moments
        assert message["Auto-Submitted"] == "auto-generated"
        assert str(message["Message-ID"]).endswith("@paris-avenir.example.org>")
        assert message["Subject"]  # decoded from RFC 2047 by the parser
        text = _text(message)
        html_part = _html_part(message)
        assert html_part.get_content_charset() == "utf-8"
        assert message.get_body(preferencelist=("plain",)).get_content_charset() == "utf-8"  # type: ignore[union-attr]
        html = str(html_part.get_content())
        assert '<html lang="fr" dir="ltr">' in html
        # The links of the text are links in the HTML.
        for link in re.findall(r"https?://\S+[^\s.,;:]", text):
            assert f'href="{link}"' in html
        if unsubscribe.is_outreach(kind):
            url = str(message["List-Unsubscribe"]).strip("<>")
            assert url.startswith(f"{BASE_URL}/desabonnement/")
            assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            assert f"Ne plus recevoir ces messages : {url}" in text
            assert f'href="{url}"' in html and "Ne plus recevoir ces messages</a>" in html
        else:
            assert message["List-Unsubscribe"] is None
            assert "Ne plus recevoir" not in text
    if kind in {"appointment_confirmation", "appointment_cancellation"}:
        calendar = next(
            part
            for part in server.inbox[0].message.iter_attachments()
            if part.get_content_type() == "text/calendar"
        )
        ics = str(calendar.get_content())
        method = re.search(r"^METHOD:(\S+)", ics, re.MULTILINE)
        assert method is not None
        assert calendar.get_param("method") == method.group(1)
        assert calendar.get_content_charset() == "utf-8"
        assert "BEGIN:VEVENT" in ics


def test_an_email_in_arabic_is_right_to_left_and_arrives_intact(
    session: Session,
    session_factory: sessionmaker[Session],
    seven_bit_smtp: tuple[str, _SevenBitHandler],
    tmp_path: Path,
) -> None:
    smtp_url, server = seven_bit_smtp
    youth = _email_youth(session, language="ar")
    notice = notices.new_message(
        thread_id=uuid.uuid4(), first_unread_id=uuid.uuid4(), base_url=BASE_URL
    )
    notifications.notify(session, youth, notice, now=NOW)
    queued = session.scalars(select(OutboxMessage)).one()
    _send_all(session, session_factory, _channels(tmp_path, smtp_url), NOW)
    (received,) = server.inbox
    assert max(received.raw) < 128
    assert received.message["Subject"] == queued.subject
    assert _text(received.message).strip() == queued.body_text.strip()
    html = str(_html_part(received.message).get_content())
    assert '<html lang="ar" dir="rtl">' in html
    assert f'href="{BASE_URL}/mon-espace/messages"' in html


# --- Quiet hours are for what we initiate ---------------------------------------------------


def test_a_booking_confirmation_leaves_at_once_in_quiet_hours_an_outreach_email_waits(
    session: Session,
    session_factory: sessionmaker[Session],
    seven_bit_smtp: tuple[str, _SevenBitHandler],
    tmp_path: Path,
) -> None:
    smtp_url, server = seven_bit_smtp
    night = datetime(2026, 12, 2, 22, 30, tzinfo=PARIS)  # Wednesday 22:30
    youth = _email_youth(session)
    appointments._confirm(
        session, youth, _appointment(session, youth), base_url=BASE_URL, now=night
    )
    notice = notifications.Notice(
        template="outreach_inactivite",
        key="outreach:night",
        sms="-",
        subject="Paris avenir : on pense à vous",
        text="Bonjour",
    )
    notifications.notify(session, youth, notice, now=night)
    # Read before sending: the outbox erases a message's texts once it has left.
    confirmation_subject = session.scalars(
        select(OutboxMessage.subject).where(OutboxMessage.template == "appointment_confirmation")
    ).one()
    assert confirmation_subject
    channels = _channels(tmp_path, smtp_url)
    _send_all(session, session_factory, channels, night)
    assert [received.message["Subject"] for received in server.inbox] == [confirmation_subject]
    _send_all(session, session_factory, channels, datetime(2026, 12, 3, 9, 0, tzinfo=PARIS))
    assert len(server.inbox) == 2


# --- The one-click unsubscribe --------------------------------------------------------------


def _outreach_youth(session: Session) -> Youth:
    # Quiet for 30 days: the SMS step is due now, the email step in 7 days.
    youth = _email_youth(session, activated_at=NOW - timedelta(days=200))
    record_activity(session, youth, Activity.DEMO, NOW - timedelta(days=30))
    session.commit()
    return youth


async def test_a_plain_post_stops_outreach_emails_and_sms_still_go(
    app: Any,
    settings: Settings,
    session: Session,
    session_factory: sessionmaker[Session],
    seven_bit_smtp: tuple[str, _SevenBitHandler],
    tmp_path: Path,
) -> None:
    smtp_url, server = seven_bit_smtp
    youth = _outreach_youth(session)
    channels = Channels(
        sms=FileSmsSender(tmp_path / "sms.jsonl"),
        email=SmtpEmailSender(smtp_url, sender="pa@paris.fr", domain="testserver"),
        base_url="http://testserver",
        secret_key=settings.secret_key,
    )
    notice = notifications.Notice(
        template="outreach_inactivite",
        key="outreach:first",
        sms="-",
        subject="Paris avenir : on pense à vous",
        text="Bonjour",
    )
    notifications.notify(session, youth, notice, now=NOW)
    _send_all(session, session_factory, channels, NOW)
    (received,) = server.inbox
    url = str(received.message["List-Unsubscribe"]).strip("<>")
    path = httpx.URL(url).path

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        # A mail scanner following the link opts nobody out: a page with a button.
        page = await http.get(path)
        assert page.status_code == 200
        assert "Ne plus recevoir ces e-mails" in page.text
        session.refresh(youth)
        assert youth.outreach_email_opted_out_at is None
        # What a mail provider sends (RFC 8058): no cookie, no CSRF token.
        http.cookies.clear()
        answer = await http.post(
            path,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert answer.status_code == 200
    assert "C’est fait" in answer.text
    session.refresh(youth)
    assert youth.outreach_email_opted_out_at is not None
    assert youth.outreach_opted_out_at is None  # only the emails

    # The next cycles: the email step sends no email; an SMS still goes.
    sms_file = tmp_path / "sms.jsonl"
    sms_before = sms_file.read_text().count("\n") if sms_file.exists() else 0
    for days in (0, 7):
        engine.run_cycle(
            session,
            base_url="http://testserver",
            secret_key=settings.secret_key,
            now=NOW + timedelta(days=days),
        )
        session.commit()
        _send_all(session, session_factory, channels, NOW + timedelta(days=days, minutes=1))
    assert len(server.inbox) == 1
    emails = session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.youth_id == youth.id, OutboxMessage.channel == Channel.EMAIL
        )
    ).all()
    assert len(emails) == 1
    sms = session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.youth_id == youth.id,
            OutboxMessage.channel == Channel.SMS,
            OutboxMessage.status == OutboxStatus.SENT,
        )
    ).all()
    assert len(sms) == 2  # the SMS step, and the email step as an SMS
    assert sms_file.read_text().count("\n") == sms_before + 2


@pytest.mark.parametrize("damage", ["forged", "expired", "garbage"])
async def test_a_forged_or_expired_link_is_refused_with_a_french_page(
    damage: str, app: Any, settings: Settings, session: Session
) -> None:
    youth = _email_youth(session)
    session.commit()
    if damage == "forged":
        url = unsubscribe.link(youth.id, secret_key="another-key-" + "y" * 32, base_url="")
    elif damage == "expired":
        with time_machine.travel(NOW - unsubscribe.LIFETIME - timedelta(days=1), tick=False):
            url = unsubscribe.link(youth.id, secret_key=settings.secret_key, base_url="")
    else:
        url = "/desabonnement/pas-un-jeton"
    transport = httpx.ASGITransport(app=app)
    with time_machine.travel(NOW, tick=False):
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            answer = await http.post(url, content=b"List-Unsubscribe=One-Click")
            page = await http.get(url)
    for response in (answer, page):
        assert response.status_code == 410
        assert "Ce lien ne marche plus" in response.text
        assert 'lang="fr"' in response.text
    session.refresh(youth)
    assert youth.outreach_email_opted_out_at is None


async def test_the_csrf_exemption_is_for_that_route_only(app: Any) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        other = await http.post("/desabonnement/abc/autre", content=b"List-Unsubscribe=One-Click")
        profile = await http.post("/mon-espace/profil", content=b"pas_de_relance_email=oui")
    assert other.status_code in {403, 404, 405}
    assert profile.status_code == 403


# --- 30 one-click POSTs at once (a provider retrying), on PostgreSQL --------------------------

RACE_SCHEMA = "email_unsubscribe_races"
PARALLEL = 30


def test_thirty_one_click_posts_at_once_opt_out_once(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from paris_avenir.app import create_app
    from paris_avenir.audit.models import AuditEvent
    from paris_avenir.db import create_database_engine, make_session_factory
    from paris_avenir.migrate import upgrade_to_head
    from tests.conftest import postgres_schema_url
    from tests.servers import PlatformServer

    engine_ = create_database_engine(
        postgres_schema_url(RACE_SCHEMA, needed_for="races on PostgreSQL"),
        pool_size=20,
        max_overflow=20,
    )
    upgrade_to_head(engine_)
    settings = Settings(
        env="dev",
        secret_key=SECRET,
        sms_file=tmp_path / "sms.jsonl",
        upload_dir=tmp_path / "uploads",
        smtp_url="smtp://127.0.0.1:9",
    )
    factory = make_session_factory(engine_)
    with factory.begin() as session:
        youth_id = _email_youth(session).id
    platform = PlatformServer(create_app(settings, engine=engine_))
    platform.start()
    try:
        path = unsubscribe.link(youth_id, secret_key=SECRET, base_url="")
        barrier = threading.Barrier(PARALLEL)

        def post(_index: int) -> int:
            with httpx.Client(base_url=platform.url, timeout=30) as http:
                barrier.wait()
                answer = http.post(
                    path,
                    content=b"List-Unsubscribe=One-Click",
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
                return answer.status_code

        started = time.monotonic()
        with ThreadPoolExecutor(PARALLEL) as pool:
            statuses = list(pool.map(post, range(PARALLEL)))
        elapsed = time.monotonic() - started
        assert statuses == [200] * PARALLEL, statuses
        assert elapsed < 30
        with factory() as session:
            assert session.get_one(Youth, youth_id).outreach_email_opted_out_at is not None
            recorded = session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(
                    AuditEvent.youth_id == youth_id,
                    AuditEvent.action == "youth.outreach_email_opt_out",
                )
            )
        assert recorded == 1
    finally:
        platform.stop()
        engine_.dispose()


async def test_the_referent_sees_that_outreach_emails_are_stopped(
    app: Any, client: httpx.AsyncClient, session: Session
) -> None:
    from tests.helpers import sign_in_as

    referent = create_staff(session)
    youth = _email_youth(session)
    assign(session, youth, referent)
    session.commit()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        path = unsubscribe.link(youth.id, secret_key=app.state.settings.secret_key, base_url="")
        assert (await http.post(path, content=b"List-Unsubscribe=One-Click")).status_code == 200
    sign_in_as(client, app, session, staff=referent)
    page = await client.get(f"/pro/jeunes/{youth.id}")
    assert page.status_code == 200
    assert "actives (plus par e-mail depuis le" in page.text
