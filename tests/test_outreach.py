"""The non-recours watch: the escalation steps, the cap, the stops, the check-in, the credit."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import false, select
from sqlalchemy.orm import Session

from paris_avenir.kit.quiet_hours import DEFAULT as QUIET_HOURS
from paris_avenir.messaging import notifications
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.outreach import checkin, engine
from paris_avenir.outreach.models import (
    OutreachAttempt,
    OutreachReason,
    OutreachResponse,
)
from paris_avenir.staff.models import StaffTask, StaffUser, TaskKind
from paris_avenir.youths.models import Channel, Youth
from tests.factories import (
    assign,
    create_aid_request,
    create_outreach_attempt,
    create_staff,
    create_youth,
)
from tests.helpers import post_form, run_cli

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # a Wednesday, 11:00 in Paris
SECRET = "s" * 40


def cycle(session: Session, now: datetime = NOW, dry_run: bool = False) -> engine.CycleReport:
    return engine.run_cycle(
        session, base_url="http://x", secret_key=SECRET, now=now, dry_run=dry_run
    )


@pytest.fixture
def referent(session: Session) -> StaffUser:
    return create_staff(session)


def quiet_youth(session: Session, referent: StaffUser, days: int, **values: object) -> Youth:
    defaults: dict[str, object] = {
        "last_activity_at": NOW - timedelta(days=days),
        "activated_at": NOW - timedelta(days=400),
        "birth_date": date(2004, 6, 1),
    }
    youth = create_youth(session, **{**defaults, **values})
    assign(session, youth, referent)
    return youth


def attempts(session: Session, youth: Youth) -> list[tuple[OutreachReason, int, Channel | None]]:
    return [
        (row.reason, row.step, row.channel)
        for row in session.scalars(
            select(OutreachAttempt)
            .where(OutreachAttempt.youth_id == youth.id)
            .order_by(OutreachAttempt.attempted_at)
        )
    ]


def test_day_30_sms_day_37_email_day_45_a_call(session: Session, referent: StaffUser) -> None:
    youth = quiet_youth(session, referent, days=30)
    start = NOW
    for day in range(0, 20):
        cycle(session, start + timedelta(days=day))
    assert attempts(session, youth) == [
        (OutreachReason.INACTIVITY, 1, Channel.SMS),
        (OutreachReason.INACTIVITY, 2, Channel.EMAIL),
        (OutreachReason.INACTIVITY, 3, None),
    ]
    task = session.scalars(select(StaffTask)).one()
    assert (task.kind, task.assignee_id) == (TaskKind.PHONE_YOUTH, referent.id)
    # One SMS and one email, both the inactivity message; the third step is a call.
    messages = session.scalars(select(OutboxMessage)).all()
    assert sorted((message.channel, message.template) for message in messages) == [
        (Channel.EMAIL, "outreach_inactivite"),
        (Channel.SMS, "outreach_inactivite"),
    ]
    for message in session.scalars(select(OutboxMessage)):
        assert message.next_attempt_at is not None and not QUIET_HOURS.is_quiet(
            message.next_attempt_at
        )


def test_the_steps_start_again_60_days_later(session: Session, referent: StaffUser) -> None:
    youth = quiet_youth(session, referent, days=30)
    for day in range(0, 70):
        cycle(session, NOW + timedelta(days=day))
    assert [step for _reason, step, _channel in attempts(session, youth)] == [1, 2, 3, 1, 2]


def test_never_twice_the_same_contact(session: Session, referent: StaffUser) -> None:
    youth = quiet_youth(session, referent, days=31)
    for _ in range(3):
        cycle(session)
    assert len(attempts(session, youth)) == 1
    assert len(session.scalars(select(OutboxMessage)).all()) == 1


def test_the_unique_attempt_key_stops_a_repeat_the_cap_would_let_through(
    session: Session, referent: StaffUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two schedulers, or a cap set to zero by the admin, must still never send a step twice:
    the last guard is the (youth, reason, step, period) key of the attempt."""
    youth = quiet_youth(session, referent, days=31)
    cycle(session)
    monkeypatch.setattr(engine, "_recently_contacted", lambda *_args: false())
    cycle(session, NOW + timedelta(hours=1))
    cycle(session, NOW + timedelta(hours=2))
    assert attempts(session, youth) == [(OutreachReason.INACTIVITY, 1, Channel.SMS)]
    assert len(session.scalars(select(OutboxMessage)).all()) == 1


@pytest.mark.parametrize(
    "values",
    [
        {"outreach_opted_out_at": NOW - timedelta(days=1)},
        {"outreach_paused_until": NOW + timedelta(days=10)},
        {"birth_date": date(2001, 11, 1)},  # 25 already
        {"deletion_requested_at": NOW - timedelta(days=1)},
    ],
)
def test_opted_out_paused_25_or_leaving_means_no_contact(
    session: Session, referent: StaffUser, values: dict[str, object]
) -> None:
    youth = quiet_youth(session, referent, days=40, **values)
    cycle(session)
    assert attempts(session, youth) == []


def test_an_unreachable_youth_becomes_a_task(session: Session, referent: StaffUser) -> None:
    youth = quiet_youth(
        session, referent, days=31, phone_unreachable_at=NOW, email_unreachable_at=NOW
    )
    cycle(session)
    assert attempts(session, youth) == [(OutreachReason.INACTIVITY, 1, None)]
    assert session.scalars(select(StaffTask.kind)).one() is TaskKind.UNREACHABLE


def test_the_frequency_cap_holds_back_a_second_message(
    session: Session, referent: StaffUser
) -> None:
    youth = quiet_youth(session, referent, days=38)
    create_outreach_attempt(
        session,
        youth,
        reason=OutreachReason.DOCUMENTS_AWAITED,
        period_key="x",
        channel=Channel.SMS,
        at=NOW - timedelta(days=2),
    )
    cycle(session)
    assert [reason for reason, _step, _channel in attempts(session, youth)] == [
        OutreachReason.DOCUMENTS_AWAITED
    ]


def test_an_active_youth_is_left_alone_and_a_dry_run_writes_nothing(
    session: Session, referent: StaffUser
) -> None:
    active = quiet_youth(session, referent, days=3)
    quiet = quiet_youth(session, referent, days=31)
    report = cycle(session, dry_run=True)
    decided = {(contact.youth_id, contact.reason) for contact in report.contacts}
    # The active youth only gets the periodic "Comment ça va ?", never an inactivity step.
    assert decided == {(quiet.id, OutreachReason.INACTIVITY), (active.id, OutreachReason.CHECK_IN)}
    assert attempts(session, quiet) == [] and attempts(session, active) == []


async def test_the_check_in_is_answered_in_one_tap_without_a_password(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser
) -> None:
    youth = quiet_youth(session, referent, days=5)
    youth.activated_at = NOW - timedelta(days=95)
    session.commit()
    secret = app.state.settings.secret_key
    engine.run_cycle(session, base_url="http://testserver", secret_key=secret, now=NOW)
    session.commit()
    attempt = session.scalars(select(OutreachAttempt)).one()
    assert attempt.reason is OutreachReason.CHECK_IN
    message = session.scalars(select(OutboxMessage)).one()
    link = re.search(r"http://testserver(/point/\S+)", message.body_text)
    assert link
    page = await client.get(link.group(1))
    assert "Tout va bien" in page.text and "J’ai besoin d’aide" in page.text
    answered = await post_form(client, link.group(1), {"reponse": "aide"})
    # The youth reads who was told and by when they will be called.
    assert "Quelqu’un va vous appeler" in answered.text
    assert f"Nous avons prévenu {referent.full_name}, votre référent." in answered.text
    again = await post_form(client, link.group(1), {"reponse": "bien"})
    assert "Vous avez déjà répondu" in again.text
    session.expire_all()
    assert session.get_one(OutreachAttempt, attempt.id).response is OutreachResponse.NEEDS_HELP
    assert session.scalars(select(StaffTask.kind)).one() is TaskKind.NEEDS_HELP_ALERT
    forged = await client.get("/point/pas-un-jeton")
    assert forged.status_code == 410


def test_a_check_in_link_expires(session: Session, referent: StaffUser) -> None:
    import time_machine

    youth = quiet_youth(session, referent, days=5)
    attempt = create_outreach_attempt(
        session, youth, reason=OutreachReason.CHECK_IN, step=1, period_key="1", at=NOW
    )
    with time_machine.travel(NOW, tick=False):
        url = checkin.link(attempt.id, secret_key=SECRET, base_url="http://x")
    token = url.rsplit("/", 1)[1]
    with time_machine.travel(NOW + timedelta(days=13), tick=False):
        assert checkin.attempt_for(session, token, secret_key=SECRET) is not None
    with time_machine.travel(NOW + timedelta(days=15), tick=False):
        assert checkin.attempt_for(session, token, secret_key=SECRET) is None


def test_a_response_within_7_days_is_credited_to_the_contact(
    session: Session, referent: StaffUser
) -> None:
    youth = quiet_youth(session, referent, days=31)
    cycle(session)
    credited = engine.record_response(
        session, youth.id, OutreachResponse.SIGN_IN, now=NOW + timedelta(days=3)
    )
    assert credited is not None and credited.response is OutreachResponse.SIGN_IN
    late = quiet_youth(session, referent, days=31)
    cycle(session)
    assert (
        engine.record_response(
            session, late.id, OutreachResponse.SIGN_IN, now=NOW + timedelta(days=9)
        )
        is None
    )


def test_outreach_run_prints_who_would_be_contacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from paris_avenir.db import create_database_engine, make_session_factory
    from paris_avenir.migrate import upgrade_to_head

    database = f"sqlite:///{tmp_path / 'outreach.sqlite3'}"
    db_engine = create_database_engine(database)
    upgrade_to_head(db_engine)
    with make_session_factory(db_engine).begin() as session:
        staff = create_staff(session)
        quiet_youth(session, staff, days=31, first_name="Zabiullah", last_name="Safi")
    db_engine.dispose()
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("PARIS_AVENIR_")
    }
    environment.update(
        {
            "PARIS_AVENIR_DATABASE_URL": database,
            "PARIS_AVENIR_SMS_FILE": str(tmp_path / "sms.jsonl"),
        }
    )
    run = [sys.executable, "-m", "paris_avenir.cli", "outreach", "run", "--now", NOW.isoformat()]
    dry = subprocess.run(
        [*run, "--dry-run"], env=environment, capture_output=True, text=True, timeout=60, check=True
    )
    assert "serait contacté : Silencieux depuis longtemps, 1re relance, SMS" in dry.stdout
    assert "Zabiullah" not in dry.stdout  # an ASE reference, never a name
    assert not (tmp_path / "sms.jsonl").exists()
    done = run_cli(
        monkeypatch,
        capsys,
        {key: value for key, value in environment.items() if key.startswith("PARIS_AVENIR_")},
        *run[3:],
    )
    assert (
        done.returncode == 0
        and " — contacté : " in done.stdout
        and "Messages envoyés : 1" in done.stdout
    )
    assert (tmp_path / "sms.jsonl").read_text().count("\n") == 1


def test_the_other_triggers_each_speak_once(session: Session, referent: StaffUser) -> None:
    from paris_avenir.aid_requests.models import AidCode, AidRequestEvent, RequestStatus
    from paris_avenir.appointments.models import AppointmentStatus
    from tests.factories import create_appointment

    waiting = quiet_youth(session, referent, days=2)
    request = create_aid_request(
        session, waiting, aid_code=AidCode.NAVIGO, status=RequestStatus.MISSING_DOCUMENTS
    )
    session.flush()
    session.add(
        AidRequestEvent(
            aid_request_id=request.id,
            from_status=RequestStatus.UNDER_REVIEW,
            to_status=RequestStatus.MISSING_DOCUMENTS,
            occurred_at=NOW - timedelta(days=8),
        )
    )
    absent = quiet_youth(session, referent, days=2)
    create_appointment(
        session, absent, referent, NOW - timedelta(days=1), status=AppointmentStatus.MISSED
    )
    nearly_21 = quiet_youth(session, referent, days=2, birth_date=date(2005, 12, 20))
    nearly_25 = quiet_youth(session, referent, days=2, birth_date=date(2002, 1, 15))
    renewing = quiet_youth(session, referent, days=2)
    create_aid_request(
        session,
        renewing,
        aid_code=AidCode.ALLOCATION,
        status=RequestStatus.PAID,
        renewal_due_on=NOW + timedelta(days=10),
    )
    session.flush()
    cycle(session)
    cycle(session, NOW + timedelta(hours=2))
    reasons = {
        youth.id: [reason for reason, _step, _channel in attempts(session, youth)]
        for youth in (waiting, absent, nearly_21, nearly_25, renewing)
    }
    assert reasons == {
        waiting.id: [OutreachReason.DOCUMENTS_AWAITED],
        absent.id: [OutreachReason.MISSED_APPOINTMENT],
        nearly_21.id: [OutreachReason.BIRTHDAY_21],
        nearly_25.id: [OutreachReason.BIRTHDAY_25],
        renewing.id: [OutreachReason.ALLOCATION_RENEWAL],
    }


def test_a_cycle_stopped_midway_keeps_its_finished_batches_and_the_next_carries_on(
    session: Session, referent: StaffUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    youths = [quiet_youth(session, referent, days=31) for _ in range(5)]
    monkeypatch.setattr(engine, "BATCH_SIZE", 2)
    queue = notifications.notify_many
    calls = []

    def crash_on_the_second_batch(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the scheduler's process stops")
        return queue(*args, **kwargs)

    monkeypatch.setattr(notifications, "notify_many", crash_on_the_second_batch)
    with pytest.raises(RuntimeError):
        cycle(session)
    session.rollback()
    assert sum(len(attempts(session, youth)) for youth in youths) == 2  # the first batch
    monkeypatch.setattr(notifications, "notify_many", queue)
    report = cycle(session, NOW + timedelta(minutes=30))
    assert len(report.contacts) == report.contact_count == 3
    assert all(
        attempts(session, youth) == [(OutreachReason.INACTIVITY, 1, Channel.SMS)]
        for youth in youths
    )
    assert len(session.scalars(select(OutboxMessage)).all()) == 5


def test_a_report_lists_its_first_contacts_and_counts_them_all(
    session: Session, referent: StaffUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paris_avenir.cli import describe_cycle

    youths = [quiet_youth(session, referent, days=31, ase_ref=f"ASE-{n}") for n in range(5)]
    quiet_youth(session, referent, days=31 + 15, ase_ref="ASE-CALL")  # the call step
    monkeypatch.setattr(engine, "SAMPLE_SIZE", 2)
    dry = cycle(session, dry_run=True)
    lines = describe_cycle(dry, dry_run=True)
    assert len([line for line in lines if "serait contacté" in line]) == 2
    assert "… et 4 autre(s) contact(s), non listé(s) ici ; par étape :" in lines
    assert "5 — Silencieux depuis longtemps, 1re relance, SMS" in lines
    assert lines[-1].startswith("6 contact(s), dont 1 tâche(s) pour le référent ;")
    real = cycle(session)
    assert (real.contact_count, len(real.contacts), real.unlisted) == (6, 2, 4)
    assert real.counts == dry.counts
    assert all(
        attempts(session, youth) == [(OutreachReason.INACTIVITY, 1, Channel.SMS)]
        for youth in youths
    )
