from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from itertools import pairwise
from pathlib import Path

import httpx
import pyotp
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests.models import Aid, AidRequest, RequestStatus
from paris_avenir.appointments.models import Appointment
from paris_avenir.demo import DEMO_STAFF_PASSWORD, DEMO_TOTP_SECRET, load_demo_data
from paris_avenir.kit.phone import is_fiction_number
from paris_avenir.models import Base
from paris_avenir.staff.models import CaseloadAssignment, StaffRole, StaffUser
from paris_avenir.youths.models import Youth
from tests.factories import TEST_FERNET_KEY
from tests.helpers import post_form

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def row_counts(session: Session) -> dict[str, int]:
    return {
        table.name: session.scalar(select(func.count()).select_from(table)) or 0
        for table in Base.metadata.sorted_tables
    }


def age_on(birth_date: date, day: date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def test_demo_data_covers_what_the_platform_shows(session: Session) -> None:
    summary = load_demo_data(session, now=NOW)
    assert summary.youths == 30

    roles = list(session.scalars(select(StaffUser.role)))
    assert sorted(roles) == sorted(
        [StaffRole.ADMIN, StaffRole.SUPERVISOR, StaffRole.PSYCHOLOGIST] + [StaffRole.REFERENT] * 3
    )
    youths = list(session.scalars(select(Youth)))
    assert {age_on(youth.birth_date, NOW.date()) for youth in youths} == set(range(18, 26))
    assert all(youth.phone and is_fiction_number(youth.phone) for youth in youths)
    assert all(youth.email and youth.email.endswith("@example.org") for youth in youths)
    assert {"ar", "fa_AF", "ps", "en"} <= {youth.language for youth in youths}
    assert sum(youth.former_unaccompanied_minor for youth in youths) >= 5
    quiet_days = [(NOW - youth.last_activity_at).days for youth in youths if youth.last_activity_at]
    assert sum(30 <= days <= 120 for days in quiet_days) >= 5
    assert set(session.scalars(select(AidRequest.status))) == set(RequestStatus)
    upcoming = session.scalar(
        select(func.count()).select_from(Appointment).where(Appointment.starts_at > NOW)
    )
    assert upcoming is not None and upcoming >= 5
    assert session.scalar(select(func.count()).select_from(CaseloadAssignment)) == 30
    assert session.scalar(select(func.count()).select_from(Aid)) == 9


def test_demo_is_idempotent(session: Session) -> None:
    load_demo_data(session, now=NOW)
    before = row_counts(session)
    second = load_demo_data(session, now=NOW)
    assert second.total == 0
    assert row_counts(session) == before


async def test_demo_staff_sign_in_with_the_demo_credentials(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    load_demo_data(session, now=NOW, cipher=app.state.cipher)
    session.commit()
    response = await post_form(
        client,
        "/pro/connexion",
        {
            "email": "referent.diallo@example.org",
            "password": DEMO_STAFF_PASSWORD,
            "totp": pyotp.TOTP(DEMO_TOTP_SECRET).now(),
        },
    )
    assert response.status_code == 303
    page = (await client.get("/pro")).text
    caseload = page[page.index('<table class="table">') :]
    assert caseload.count("/pro/jeunes/") == 10  # a third of the 30 demo youths
    # A fresh demo shows the work queue at work: Kadiatou asked for help this morning.
    queue = page[page.index('id="titre-a-faire"') : page.index('<table class="table">')]
    assert "Kadiatou Konaté" in queue and "A répondu « J’ai besoin d’aide »" in queue


def test_demo_refuses_to_run_in_prod(tmp_path: Path) -> None:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("PARIS_AVENIR_")
    }
    environment.update(
        {
            "PARIS_AVENIR_ENV": "prod",
            "PARIS_AVENIR_SECRET_KEY": "s" * 40,
            "PARIS_AVENIR_ENCRYPTION_KEYS": TEST_FERNET_KEY,
            "PARIS_AVENIR_DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        }
    )
    completed = subprocess.run(
        [sys.executable, "-m", "paris_avenir.cli", "demo"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert "refusées en prod" in completed.stderr


def test_demo_appointments_have_their_reminders_and_requests_their_events(
    session: Session,
) -> None:
    from paris_avenir.aid_requests.models import AidRequestEvent
    from paris_avenir.messaging.models import OutboxMessage, OutboxStatus

    load_demo_data(session, now=NOW)
    reminders = list(
        session.scalars(
            select(OutboxMessage).where(OutboxMessage.template == "appointment_reminder")
        )
    )
    booked = {appointment.youth_id for appointment in session.scalars(select(Appointment))}
    # Every youth with an appointment has its reminders waiting, as a booking queues them.
    assert {message.youth_id for message in reminders} == booked
    assert all(message.status is OutboxStatus.QUEUED for message in reminders)
    assert all(message.next_attempt_at and message.next_attempt_at > NOW for message in reminders)
    # Each request's events lead, step by step, to its status.
    for request in session.scalars(select(AidRequest)):
        events = list(
            session.scalars(
                select(AidRequestEvent)
                .where(AidRequestEvent.aid_request_id == request.id)
                .order_by(AidRequestEvent.occurred_at)
            )
        )
        assert events[0].from_status is None and events[-1].to_status is request.status
        assert all(later.from_status is earlier.to_status for earlier, later in pairwise(events))
