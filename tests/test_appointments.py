"""Appointments: free slots, booking that never double-books, cut-offs, reminders in time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.appointments import ics, service
from paris_avenir.appointments.models import (
    Appointment,
    AppointmentKind,
    AppointmentPlace,
    AppointmentStatus,
    AvailabilityException,
    WeeklyAvailability,
)
from paris_avenir.appointments.slots import free_slots
from paris_avenir.db import create_database_engine
from paris_avenir.kit.holidays import easter_sunday, is_public_holiday
from paris_avenir.kit.quiet_hours import DEFAULT as QUIET_HOURS
from paris_avenir.messaging.models import OutboxMessage, OutboxStatus
from paris_avenir.migrate import upgrade_to_head
from paris_avenir.staff.models import StaffRole, StaffUser
from paris_avenir.youths.models import Channel, Youth
from tests.conftest import postgres_schema_url
from tests.factories import assign, create_staff, create_youth

PARIS = ZoneInfo("Europe/Paris")
# A Wednesday morning in Paris.
NOW = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)  # Wednesday, 7:00 in Paris


def paris(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS).astimezone(UTC)


def open_mornings(
    session: Session, staff: StaffUser, kind: AppointmentKind = AppointmentKind.REFERENT
) -> None:
    for weekday in range(5):
        session.add(
            WeeklyAvailability(
                staff_id=staff.id,
                kind=kind,
                place=AppointmentPlace.OFFICE,
                address="5 rue de l'Exemple, 75013 Paris",
                weekday=weekday,
                start_time=time(9, 0),
                end_time=time(11, 0),
                slot_minutes=30,
            )
        )
    session.flush()


@pytest.fixture
def referent(session: Session) -> StaffUser:
    referent = create_staff(session, StaffRole.REFERENT)
    open_mornings(session, referent)
    return referent


@pytest.fixture
def youth(session: Session, referent: StaffUser) -> Youth:
    youth = create_youth(session, phone="+33639980090", email="rdv@example.org")
    assign(session, youth, referent)
    session.commit()
    return youth


def test_french_public_holidays() -> None:
    assert easter_sunday(2026) == date(2026, 4, 5) and easter_sunday(2027) == date(2027, 3, 28)
    assert is_public_holiday(date(2026, 5, 14))  # Ascension 2026
    assert is_public_holiday(date(2026, 12, 25)) and not is_public_holiday(date(2026, 12, 24))


def test_slots_follow_openings_in_paris_time_and_skip_holidays_and_leave(
    session: Session, referent: StaffUser
) -> None:
    session.add(
        AvailabilityException(
            staff_id=referent.id,
            starts_at=paris(2026, 12, 3, 0),
            ends_at=paris(2026, 12, 4, 0),
            reason="Formation",
        )
    )
    session.flush()
    slots = free_slots(
        session,
        staff_ids=[referent.id],
        kind=AppointmentKind.REFERENT,
        now=NOW,
        window=timedelta(days=30),
        limit=500,
    )
    starts = [slot.starts_at.astimezone(PARIS) for slot in slots]
    assert starts[0] == datetime(2026, 12, 2, 9, 0, tzinfo=PARIS)
    assert {start.time() for start in starts} == {time(9), time(9, 30), time(10), time(10, 30)}
    assert all(start.weekday() < 5 for start in starts)
    assert not any(start.date() == date(2026, 12, 3) for start in starts)  # on leave
    assert not any(start.date() == date(2026, 12, 25) for start in starts)  # Christmas


def test_booking_takes_the_slot_and_the_database_refuses_a_second_one(
    session: Session, youth: Youth, referent: StaffUser
) -> None:
    slot = service.slots_for(session, youth, AppointmentKind.REFERENT, now=NOW)[0]
    appointment = service.book(
        session, youth, AppointmentKind.REFERENT, slot.key, base_url="http://x", now=NOW
    )
    assert appointment.starts_at == slot.starts_at
    other = create_youth(session)
    assign(session, other, referent)
    with pytest.raises(service.SlotTaken) as taken:
        service.book(
            session, other, AppointmentKind.REFERENT, slot.key, base_url="http://x", now=NOW
        )
    assert "plus libre" in str(taken.value) and taken.value.alternatives
    assert slot.key not in {alternative.key for alternative in taken.value.alternatives}


def test_confirmation_carries_an_ics_in_paris_time(session: Session, youth: Youth) -> None:
    youth.preferred_channel = Channel.EMAIL
    slot = service.slots_for(session, youth, AppointmentKind.REFERENT, now=NOW)[0]
    appointment = service.book(
        session, youth, AppointmentKind.REFERENT, slot.key, base_url="http://x", now=NOW
    )
    confirmation = session.scalars(
        select(OutboxMessage).where(OutboxMessage.template == "appointment_confirmation")
    ).one()
    assert confirmation.attachment_filename == "rendez-vous.ics"
    assert confirmation.attachment_body is not None
    event = icalendar.Calendar.from_ical(confirmation.attachment_body).walk("VEVENT")[0]
    assert event.decoded("dtstart").astimezone(PARIS) == appointment.starts_at.astimezone(PARIS)
    assert event.decoded("dtstart").astimezone(PARIS).hour == 9
    assert "jeudi 3 décembre à 09:00" in confirmation.body_text


@pytest.mark.parametrize(
    ("starts", "expected"),
    [
        # 48 h before Friday 10:00 is Wednesday 10:00: sent then; 2 h before is 8:00, quiet: the
        # evening before at 19:30.
        (paris(2026, 12, 4, 10), [paris(2026, 12, 2, 10), paris(2026, 12, 3, 19, 30)]),
        # Monday 9:30: 48 h before is Saturday 9:30; 2 h before is Monday 7:30 → Saturday 19:30.
        (paris(2026, 12, 7, 9, 30), [paris(2026, 12, 5, 9, 30), paris(2026, 12, 5, 19, 30)]),
        # Across the change to summer time (29 March 2026): wall-clock times stay right.
        # 48 h before Tuesday 31 March 10:00 is Sunday 10:00 → Saturday 19:30 (still winter
        # time); 2 h before is 8:00 → Monday 19:30 (summer time).
        (paris(2026, 3, 31, 10), [paris(2026, 3, 28, 19, 30), paris(2026, 3, 30, 19, 30)]),
        # Across the change to winter time (25 October 2026).
        (paris(2026, 10, 27, 14), [paris(2026, 10, 24, 19, 30), paris(2026, 10, 27, 12)]),
    ],
)
def test_reminders_come_early_never_in_quiet_hours_never_late(
    session: Session, youth: Youth, starts: datetime, expected: list[datetime]
) -> None:
    now = starts - timedelta(days=10)
    appointment = Appointment(
        youth_id=youth.id,
        staff_id=create_staff(session).id,
        kind=AppointmentKind.REFERENT,
        place=AppointmentPlace.OFFICE,
        starts_at=starts,
        ends_at=starts + timedelta(minutes=30),
    )
    session.add(appointment)
    session.flush()
    assert (
        service.schedule_reminders(session, youth, appointment, base_url="http://x", now=now) == 2
    )
    reminders = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.template == "appointment_reminder")
        .order_by(OutboxMessage.next_attempt_at)
    ).all()
    assert [reminder.next_attempt_at for reminder in reminders] == expected
    for reminder in reminders:
        assert reminder.next_attempt_at is not None and not QUIET_HOURS.is_quiet(
            reminder.next_attempt_at
        )
    # Each reminder is useless once the next one is due; the last one once it has started.
    assert [reminder.expires_at for reminder in reminders] == [expected[1], starts]


def test_a_reminder_due_after_the_start_is_never_sent(
    session: Session, session_factory: sessionmaker[Session], youth: Youth, tmp_path: object
) -> None:
    from pathlib import Path

    from paris_avenir.messaging import outbox
    from paris_avenir.messaging.channels import Channels
    from paris_avenir.messaging.channels.email_smtp import SmtpEmailSender
    from paris_avenir.messaging.channels.sms_file import FileSmsSender

    starts = paris(2026, 12, 4, 10)
    appointment = Appointment(
        youth_id=youth.id,
        staff_id=create_staff(session).id,
        kind=AppointmentKind.REFERENT,
        place=AppointmentPlace.OFFICE,
        starts_at=starts,
        ends_at=starts + timedelta(minutes=30),
    )
    session.add(appointment)
    session.flush()
    service.schedule_reminders(
        session, youth, appointment, base_url="http://x", now=starts - timedelta(days=5)
    )
    session.commit()
    sms_file = Path(str(tmp_path)) / "sms.jsonl"
    channels = Channels(
        sms=FileSmsSender(sms_file), email=SmtpEmailSender("smtp://127.0.0.1:9", sender="x")
    )
    report = outbox.dispatch_due(session_factory, channels, now=starts + timedelta(minutes=5))
    assert report.sent == [] and not sms_file.exists()
    statuses = set(
        session.scalars(
            select(OutboxMessage.status).where(OutboxMessage.template == "appointment_reminder")
        )
    )
    assert statuses == {OutboxStatus.CANCELLED}


def test_cancel_and_move_respect_their_cut_offs(session: Session, youth: Youth) -> None:
    slots = service.slots_for(session, youth, AppointmentKind.REFERENT, now=NOW)
    appointment = service.book(
        session, youth, AppointmentKind.REFERENT, slots[5].key, base_url="http://x", now=NOW
    )
    late = appointment.starts_at - timedelta(hours=3)
    with pytest.raises(service.AppointmentError, match="trop tard pour annuler"):
        service.cancel(session, appointment, youth, now=late)
    with pytest.raises(service.AppointmentError, match="trop tard pour déplacer"):
        service.move(
            session,
            appointment,
            youth,
            slots[6].key,
            base_url="http://x",
            now=appointment.starts_at - timedelta(hours=20),
        )
    moved = service.move(session, appointment, youth, slots[6].key, base_url="http://x", now=NOW)
    assert (
        appointment.status is AppointmentStatus.CANCELLED
        and moved.status is AppointmentStatus.BOOKED
    )
    old_reminders = session.scalars(
        select(OutboxMessage.status).where(
            OutboxMessage.idempotency_key.like(f"appointment-reminder:{appointment.id}:%")
        )
    ).all()
    assert old_reminders and set(old_reminders) == {OutboxStatus.CANCELLED}
    service.cancel(session, moved, youth, now=NOW)
    assert moved.status in {AppointmentStatus.CANCELLED}


def test_the_ics_feed_of_a_cancelled_appointment_says_so(session: Session, youth: Youth) -> None:
    slot = service.slots_for(session, youth, AppointmentKind.REFERENT, now=NOW)[10]
    appointment = service.book(
        session, youth, AppointmentKind.REFERENT, slot.key, base_url="http://x", now=NOW
    )
    service.cancel(session, appointment, youth, now=NOW)
    event = icalendar.Calendar.from_ical(ics.calendar_of([appointment], summary="RDV")).walk(
        "VEVENT"
    )[0]
    assert str(event["status"]) == "CANCELLED"


@pytest.fixture(scope="module")
def postgres_engine() -> Iterator[Engine]:
    """The race is PostgreSQL's: this test runs there only (required in CI)."""
    engine = create_database_engine(
        postgres_schema_url("race_tests", needed_for="the booking race")
    )
    upgrade_to_head(engine)
    yield engine
    engine.dispose()


def test_two_youths_booking_the_same_slot_at_once_exactly_one_wins(postgres_engine: Engine) -> None:
    """50 rounds: two threads, two connections, a barrier, the same slot."""
    engine = postgres_engine
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with factory.begin() as setup:
        referent = create_staff(setup, StaffRole.REFERENT)
        open_mornings(setup, referent)
        first, second = create_youth(setup), create_youth(setup)
        assign(setup, first, referent)
        assign(setup, second, referent)
        ids = (first.id, second.id, referent.id)
        # 50 rounds between the same two youths: the limit of upcoming appointments per
        # youth (tests/test_booking_limits.py) is not what this race is about.

        from paris_avenir.outreach import policy

        current = {key: str(value) for key, value in policy.current_values(setup).items()}
        policy.save(setup, current | {"open_referent_bookings": "100"}, by_id=None, now=NOW)
    try:
        for round_number in range(50):
            with factory() as reader:
                youth = reader.get_one(Youth, ids[0])
                slot_key = service.slots_for(reader, youth, AppointmentKind.REFERENT, now=NOW)[
                    0
                ].key
            barrier = threading.Barrier(2)
            outcomes: list[str] = []

            def attempt(
                youth_id: object,
                barrier: threading.Barrier = barrier,
                slot_key: str = slot_key,
                outcomes: list[str] = outcomes,
            ) -> None:
                with factory() as attempt_session:
                    youth = attempt_session.get_one(Youth, youth_id)
                    barrier.wait()
                    try:
                        service.book(
                            attempt_session,
                            youth,
                            AppointmentKind.REFERENT,
                            slot_key,
                            base_url="http://x",
                            now=NOW,
                        )
                        attempt_session.commit()
                        outcomes.append("won")
                    except service.SlotTaken:
                        attempt_session.rollback()
                        outcomes.append("lost")

            threads = [threading.Thread(target=attempt, args=(youth_id,)) for youth_id in ids[:2]]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            assert sorted(outcomes) == ["lost", "won"], f"round {round_number}: {outcomes}"
        with factory() as checker:
            booked = checker.scalars(
                select(Appointment).where(Appointment.staff_id == ids[2])
            ).all()
            assert len(booked) == 50 and len({row.starts_at for row in booked}) == 50
    finally:
        with factory.begin() as cleanup:
            from sqlalchemy import delete

            from paris_avenir.staff.models import CaseloadAssignment

            cleanup.execute(delete(OutboxMessage).where(OutboxMessage.youth_id.in_(ids[:2])))
            cleanup.execute(delete(Appointment).where(Appointment.staff_id == ids[2]))
            cleanup.execute(
                delete(CaseloadAssignment).where(CaseloadAssignment.referent_id == ids[2])
            )
            cleanup.execute(delete(WeeklyAvailability).where(WeeklyAvailability.staff_id == ids[2]))
            cleanup.execute(delete(Youth).where(Youth.id.in_(ids[:2])))
            cleanup.execute(delete(StaffUser).where(StaffUser.id == ids[2]))


def test_cut_offs_and_reminder_hours_follow_the_admins_policy(
    session: Session, youth: Youth
) -> None:

    from paris_avenir.outreach import policy

    values = {key: str(value) for key, value in policy.defaults().items()}
    values.update(cancel_cutoff_hours="1", reminder_first_hours="24")
    policy.save(session, values, by_id=None)
    slot = service.slots_for(session, youth, AppointmentKind.REFERENT, now=NOW)[12]
    appointment = service.book(
        session, youth, AppointmentKind.REFERENT, slot.key, base_url="http://x", now=NOW
    )
    first_reminder = min(
        session.scalars(
            select(OutboxMessage.next_attempt_at).where(
                OutboxMessage.template == "appointment_reminder"
            )
        ),
        key=lambda value: value or appointment.starts_at,
    )
    assert first_reminder is not None
    assert appointment.starts_at - first_reminder <= timedelta(
        hours=24 + 14
    )  # a day before, or the evening before
    service.cancel(session, appointment, youth, now=appointment.starts_at - timedelta(hours=2))
    assert appointment.status in {AppointmentStatus.CANCELLED}
