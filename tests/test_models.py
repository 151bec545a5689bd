"""Rules the schema itself guarantees, checked on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from paris_avenir.appointments.models import AppointmentStatus
from paris_avenir.outreach.models import OutreachAttempt, OutreachReason
from paris_avenir.youths.models import Channel, Youth
from tests.factories import (
    assign,
    create_appointment,
    create_outreach_attempt,
    create_staff,
    create_youth,
)

PARIS = ZoneInfo("Europe/Paris")


def test_instants_come_back_aware_and_equal(session: Session) -> None:
    # 02:30 Paris time on the night summer time ends: an instant SQLite would garble naively.
    instant = datetime(2026, 10, 25, 2, 30, tzinfo=PARIS)
    youth = create_youth(session, last_activity_at=instant)
    session.expire_all()
    reloaded = session.get(Youth, youth.id)
    assert reloaded is not None and reloaded.last_activity_at is not None
    assert reloaded.last_activity_at.tzinfo is not None
    # Compared as timestamps: Python never calls an ambiguous (folded) instant equal across
    # zones.
    assert reloaded.last_activity_at.timestamp() == instant.timestamp()
    assert reloaded.last_activity_at == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert reloaded.last_activity_at.utcoffset() == timedelta(0)


def test_naive_instants_are_refused(session: Session) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        create_youth(session, last_activity_at=datetime(2026, 1, 1, 12, 0))  # noqa: DTZ001


def test_a_staff_slot_cannot_be_booked_twice(session: Session) -> None:
    referent = create_staff(session)
    first, second = create_youth(session), create_youth(session)
    starts_at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    create_appointment(session, first, referent, starts_at)
    with pytest.raises(IntegrityError), session.begin_nested():
        create_appointment(session, second, referent, starts_at)


def test_a_cancelled_slot_can_be_booked_again(session: Session) -> None:
    referent = create_staff(session)
    first, second = create_youth(session), create_youth(session)
    starts_at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    create_appointment(session, first, referent, starts_at, status=AppointmentStatus.CANCELLED)
    rebooked = create_appointment(session, second, referent, starts_at)
    assert rebooked.status is AppointmentStatus.BOOKED


def test_a_youth_has_one_current_referent_and_keeps_history(session: Session) -> None:
    youth = create_youth(session)
    former, current = create_staff(session), create_staff(session)
    assign(session, youth, former, ended_at=datetime.now(UTC))
    assign(session, youth, current)
    with pytest.raises(IntegrityError), session.begin_nested():
        assign(session, youth, former)


def test_an_outreach_step_happens_once_per_period(session: Session) -> None:
    youth = create_youth(session)
    values: dict[str, Any] = {
        "reason": OutreachReason.INACTIVITY,
        "step": 1,
        "period_key": "2026-11-01",
        "channel": Channel.SMS,
    }
    create_outreach_attempt(session, youth, at=datetime.now(UTC), **values)
    with pytest.raises(IntegrityError), session.begin_nested():
        create_outreach_attempt(session, youth, at=datetime.now(UTC), **values)
    assert len(session.scalars(select(OutreachAttempt)).all()) == 1


def test_unknown_enum_values_are_refused_by_the_database(session: Session) -> None:
    create_youth(session)
    # Raw SQL, past the ORM's own validation: the CHECK constraint itself must refuse it.
    with pytest.raises(IntegrityError), session.begin_nested():
        session.execute(text("UPDATE youth SET preferred_channel = 'pigeon'"))
