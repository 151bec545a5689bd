from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.appointments import service as appointments
from paris_avenir.kit.quiet_hours import DEFAULT as QUIET_HOURS
from paris_avenir.kit.quiet_hours import QuietHours
from paris_avenir.messaging import notifications, outbox
from paris_avenir.messaging.channels import Channels
from paris_avenir.messaging.channels.email_smtp import SmtpEmailSender
from paris_avenir.messaging.channels.sms_file import FileSmsSender
from paris_avenir.messaging.models import OutboxMessage, OutboxStatus
from paris_avenir.outreach import engine, policy
from paris_avenir.staff.models import StaffRole
from paris_avenir.youths.models import Channel
from tests import factories
from tests.factories import assign, create_appointment, create_staff, create_youth
from tests.helpers import post_form, sign_in_as

PARIS = ZoneInfo("Europe/Paris")


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[arg-type,misc]


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (paris(2026, 11, 25, 14, 0), paris(2026, 11, 25, 14, 0)),  # Wednesday afternoon: now
        (paris(2026, 11, 25, 20, 0), paris(2026, 11, 26, 9, 0)),  # 20:00 sharp: tomorrow 9:00
        (paris(2026, 11, 26, 7, 30), paris(2026, 11, 26, 9, 0)),  # early morning: 9:00
        (paris(2026, 11, 28, 21, 0), paris(2026, 11, 30, 9, 0)),  # Saturday night: Monday
        (paris(2026, 11, 29, 12, 0), paris(2026, 11, 30, 9, 0)),  # Sunday noon: Monday
        # The nights summer time starts and ends: still 9:00 on the wall clock.
        (paris(2026, 3, 28, 23, 0), paris(2026, 3, 30, 9, 0)),
        (paris(2026, 10, 24, 22, 0), paris(2026, 10, 26, 9, 0)),
        (paris(2026, 10, 26, 1, 30), paris(2026, 10, 26, 9, 0)),
    ],
)
def test_messages_wait_for_the_next_opening(moment: datetime, expected: datetime) -> None:
    result = QUIET_HOURS.next_sending_time(moment.astimezone(UTC))
    assert result == expected
    assert result.astimezone(PARIS).hour == 9 or result == moment
    assert not QUIET_HOURS.is_quiet(result)


# --- The admin's window, held when queuing and again when sending ---------------------------


def test_the_window_is_the_admins_and_opens_before_it_closes() -> None:
    ten_to_six = QuietHours(quiet_from=18, quiet_until=10)
    assert ten_to_six.is_quiet(paris(2026, 12, 2, 9, 30))
    assert not ten_to_six.is_quiet(paris(2026, 12, 2, 10, 0))
    assert ten_to_six.is_quiet(paris(2026, 12, 2, 18, 0))
    assert ten_to_six.next_sending_time(paris(2026, 12, 5, 18, 0)) == paris(2026, 12, 7, 10, 0)
    assert ten_to_six.latest_sending_time_before(paris(2026, 12, 7, 8, 0)) == paris(
        2026, 12, 5, 17, 30
    )
    with pytest.raises(ValueError):
        QuietHours(quiet_from=9, quiet_until=20)


async def _admin_sets_ten_to_six(app: FastAPI, client: httpx.AsyncClient, session: Session) -> None:
    admin = create_staff(session, StaffRole.ADMIN)
    session.commit()
    sign_in_as(client, app, session, staff=admin)
    form = {name: str(value) for name, value in policy.defaults().items()}
    form.update(quiet_hours_start="18", quiet_hours_end="10")
    assert (await post_form(client, "/pro/admin/relances", form)).status_code == 303
    client.cookies.clear()
    assert policy.load(session).quiet_hours == QuietHours(quiet_from=18, quiet_until=10)


def _channels(tmp_path: Path) -> Channels:
    return Channels(
        sms=FileSmsSender(tmp_path / "sms.jsonl"),
        email=SmtpEmailSender("smtp://127.0.0.1:9", sender="Paris avenir <pa@example.org>"),
    )


def _sent_templates(tmp_path: Path) -> list[str]:
    import json

    path = tmp_path / "sms.jsonl"
    return (
        [json.loads(line)["tag"] for line in path.read_text().splitlines()] if path.exists() else []
    )


async def test_an_admins_ten_to_six_holds_everything_but_codes_at_half_past_nine(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    await _admin_sets_ten_to_six(app, client, session)
    half_past_nine = paris(2026, 12, 2, 9, 30).astimezone(UTC)  # a Wednesday
    referent = create_staff(session)
    quiet = create_youth(
        session,
        birth_date=date(2004, 6, 1),
        activated_at=half_past_nine - timedelta(days=400),
        last_activity_at=half_past_nine - timedelta(days=30),
    )
    assign(session, quiet, referent)
    engine.run_cycle(session, base_url="http://x", secret_key="k" * 40, now=half_past_nine)
    outreach = session.scalars(select(OutboxMessage)).one()
    assert outreach.next_attempt_at == paris(2026, 12, 2, 10, 0)  # held when queued
    # A message queued by an older release, or a retry, already due before the window:
    outreach.next_attempt_at = half_past_nine - timedelta(hours=1)
    signing_in = create_youth(session)
    factories.request_code(
        session,
        secret_key="k" * 40,
        raw_destination=str(signing_in.phone),
        ip_address="127.0.0.1",
        now=half_past_nine,
    )
    session.commit()
    report = outbox.dispatch_due(session_factory, _channels(tmp_path), now=half_past_nine)
    assert _sent_templates(tmp_path) == ["sign_in_code"]  # held again when sent
    assert len(report.sent) == 1
    outbox.dispatch_due(session_factory, _channels(tmp_path), now=paris(2026, 12, 2, 10, 0))
    assert _sent_templates(tmp_path) == ["sign_in_code", "outreach_inactivite"]


async def test_a_dispatcher_down_from_saturday_evening_sends_nothing_before_monday_ten(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    await _admin_sets_ten_to_six(app, client, session)
    referent = create_staff(session)
    saturday = paris(2026, 12, 5, 17, 40).astimezone(UTC)
    youth = create_youth(
        session,
        birth_date=date(2004, 6, 1),
        activated_at=saturday - timedelta(days=400),
        last_activity_at=saturday - timedelta(days=30),
    )
    assign(session, youth, referent)
    # Queued on Saturday before 18:00, never sent: the dispatcher stops at 18:00.
    engine.run_cycle(session, base_url="http://x", secret_key="k" * 40, now=saturday)
    notice = notifications.Notice(
        template="request_update",
        key="news",
        sms="Du nouveau sur votre demande.",
        subject="Du nouveau",
        text="Du nouveau.",
    )
    notifications.notify(session, youth, notice, now=saturday + timedelta(minutes=5))
    monday_half_past_ten = create_appointment(
        session, youth, referent, paris(2026, 12, 7, 10, 30).astimezone(UTC)
    )
    monday_nine = create_appointment(
        session, youth, referent, paris(2026, 12, 7, 9, 0).astimezone(UTC)
    )
    for appointment in (monday_half_past_ten, monday_nine):
        appointments.schedule_reminders(
            session, youth, appointment, base_url="http://x", now=saturday - timedelta(days=3)
        )
    session.commit()
    assert {message.template for message in session.scalars(select(OutboxMessage))} == {
        "outreach_inactivite",
        "request_update",
        "appointment_reminder",
    }
    for moment in (
        paris(2026, 12, 6, 10, 0),  # the dispatcher starts again on Sunday morning
        paris(2026, 12, 6, 17, 59),
        paris(2026, 12, 7, 9, 59),
    ):
        outbox.dispatch_due(session_factory, _channels(tmp_path), now=moment.astimezone(UTC))
        assert _sent_templates(tmp_path) == [], moment
    outbox.dispatch_due(session_factory, _channels(tmp_path), now=paris(2026, 12, 7, 10, 0))
    session.expire_all()
    sent = sorted(_sent_templates(tmp_path))
    # The 10:30 appointment's last reminder still helps; the 9:00 one has started, and each
    # first reminder was superseded by the second: they expire rather than go late.
    assert sent == ["appointment_reminder", "outreach_inactivite", "request_update"]
    reminders = session.scalars(
        select(OutboxMessage).where(OutboxMessage.template == "appointment_reminder")
    ).all()
    assert sorted(reminder.status.value for reminder in reminders) == [
        OutboxStatus.CANCELLED.value,
        OutboxStatus.CANCELLED.value,
        OutboxStatus.CANCELLED.value,
        OutboxStatus.SENT.value,
    ]


async def test_a_message_claimed_in_quiet_hours_goes_back_to_wait_or_expires(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    await _admin_sets_ten_to_six(app, client, session)
    youth = create_youth(session)
    night = paris(2026, 12, 2, 21, 0).astimezone(UTC)
    waiting, too_late = (
        outbox.enqueue(
            session,
            channel=Channel.SMS,
            recipient=str(youth.phone),
            template=template,
            body_text="Paris avenir.",
            idempotency_key=template,
            youth_id=youth.id,
            now=night - timedelta(hours=1),
            expires_at=expires,
        )
        for template, expires in (
            ("request_update", None),
            ("appointment_reminder", paris(2026, 12, 3, 9, 30).astimezone(UTC)),
        )
    )
    session.commit()
    for message in (waiting, too_late):
        outbox.send_one(session_factory, message.id, _channels(tmp_path), now=night)
    session.expire_all()
    held = session.get_one(OutboxMessage, waiting.id)
    assert (held.status, held.next_attempt_at, held.attempt_count) == (
        OutboxStatus.QUEUED,
        paris(2026, 12, 3, 10, 0),
        0,  # holding is not a sending attempt
    )
    assert session.get_one(OutboxMessage, too_late.id).status is OutboxStatus.CANCELLED
    assert _sent_templates(tmp_path) == []
