"""120 days of the watch for 1,000 youths with varied behaviour, one cycle a day under a
frozen clock: every contact is what the policy prescribes, none in quiet hours, none after an
opt-out, during a pause or after the 25th birthday, none twice, never two messages within 5 days."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from paris_avenir.kit.quiet_hours import DEFAULT as QUIET_HOURS
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.outreach import engine
from paris_avenir.outreach.models import OutreachAttempt, OutreachReason, OutreachResponse
from paris_avenir.staff.models import CaseloadAssignment
from paris_avenir.youths.models import Channel, Youth
from tests.factories import create_staff

START = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)  # 10:00 in Paris, every day of the run
DAYS = 120
YOUTHS = 1000
BEHAVIOURS = (
    "silent",
    "responder",
    "opts_out",
    "paused",
    "turns_25",
    "unreachable",
    "sms_only",
    "active",
)
# Quiet days of the policy's inactivity steps: (day, step, channel).
SILENT_STEPS = (
    (30, 1, Channel.SMS),
    (37, 2, Channel.EMAIL),
    (45, 3, None),
    (90, 1, Channel.SMS),
    (97, 2, Channel.EMAIL),
    (105, 3, None),
)


@dataclass
class Plan:
    behaviour: str
    quiet_at_start: int


def day_of(instant: datetime) -> int:
    return (instant - START).days


def test_120_days_of_outreach_for_1000_youths(session: Session) -> None:
    referent = create_staff(session)
    plans: dict[uuid.UUID, Plan] = {}
    rows = []
    for number in range(YOUTHS):
        behaviour = BEHAVIOURS[number % len(BEHAVIOURS)]
        quiet = number % 30
        youth_id = uuid.uuid4()
        plans[youth_id] = Plan(behaviour, quiet)
        birth = date(2004, 6, 1)
        if behaviour == "turns_25":
            birth = (
                (START + timedelta(days=70))
                .date()
                .replace(year=(START + timedelta(days=70)).year - 25)
            )
        rows.append(
            {
                "id": youth_id,
                "ase_ref": f"SIM-{number:05d}",
                "first_name": "Sim",
                "last_name": str(number),
                "birth_date": birth,
                "phone": f"+3363998{number:04d}",
                "email": None if behaviour == "sms_only" else f"sim{number}@example.org",
                "activated_at": START - timedelta(days=10),
                "last_activity_at": START - timedelta(days=quiet),
                "phone_unreachable_at": START if behaviour == "unreachable" else None,
                "email_unreachable_at": START if behaviour == "unreachable" else None,
            }
        )
    session.execute(insert(Youth), rows)
    session.execute(
        insert(CaseloadAssignment),
        [
            {
                "id": uuid.uuid4(),
                "youth_id": row["id"],
                "referent_id": referent.id,
                "started_at": START,
            }
            for row in rows
        ],
    )
    session.flush()
    youths = {youth.id: youth for youth in session.scalars(select(Youth))}
    responses: dict[uuid.UUID, list[int]] = defaultdict(list)

    for day in range(DAYS):
        now = START + timedelta(days=day)
        for youth_id, plan in plans.items():
            youth = youths[youth_id]
            if plan.behaviour == "opts_out" and day == 50:
                youth.outreach_opted_out_at = now
            if plan.behaviour == "paused" and day == 20:
                youth.outreach_paused_until = now + timedelta(days=40)
            if plan.behaviour == "active" and day % 10 == 0:
                youth.last_activity_at = now
        session.flush()
        engine.run_cycle(session, base_url="http://x", secret_key="k" * 40, now=now)
        session.flush()
        # Responders sign in three days after any message.
        for attempt in session.scalars(
            select(OutreachAttempt).where(
                OutreachAttempt.attempted_at == now - timedelta(days=3),
                OutreachAttempt.channel.is_not(None),
            )
        ):
            if plans[attempt.youth_id].behaviour == "responder":
                youths[attempt.youth_id].last_activity_at = now
                engine.record_response(session, attempt.youth_id, OutreachResponse.SIGN_IN, now=now)
                responses[attempt.youth_id].append(day)

    attempts = session.scalars(select(OutreachAttempt)).all()
    by_youth: dict[uuid.UUID, list[OutreachAttempt]] = defaultdict(list)
    for attempt in attempts:
        by_youth[attempt.youth_id].append(attempt)
    messages = session.scalars(select(OutboxMessage)).all()

    # None twice, none in quiet hours.
    assert len({message.idempotency_key for message in messages}) == len(messages)
    assert all(
        message.next_attempt_at is not None and not QUIET_HOURS.is_quiet(message.next_attempt_at)
        for message in messages
    )
    assert len(attempts) > YOUTHS  # the run really contacted people

    for youth_id, plan in plans.items():
        made = sorted(by_youth[youth_id], key=lambda attempt: attempt.attempted_at)
        days = [day_of(attempt.attempted_at) for attempt in made]
        with_channel = [
            day_of(attempt.attempted_at) for attempt in made if attempt.channel is not None
        ]
        assert all(later - earlier >= 5 for earlier, later in pairwise(with_channel)), plan
        if plan.behaviour == "silent":
            expected = [
                (quiet_day - plan.quiet_at_start, step, channel)
                for quiet_day, step, channel in SILENT_STEPS
                if 0 <= quiet_day - plan.quiet_at_start < DAYS
            ]
            assert [(day_of(a.attempted_at), a.step, a.channel) for a in made] == expected, plan
        if plan.behaviour == "sms_only":
            assert all(a.channel in {Channel.SMS, None} for a in made)
        if plan.behaviour == "unreachable":
            assert all(a.channel is None for a in made)
        if plan.behaviour == "opts_out":
            assert all(day < 50 for day in days), (plan, days)
        if plan.behaviour == "paused":
            assert not any(20 <= day < 60 for day in days), (plan, days)
        if plan.behaviour == "turns_25":
            assert all(day < 70 for day in days), (plan, days)
        if plan.behaviour == "active":
            assert all(a.reason is not OutreachReason.INACTIVITY for a in made)
        if plan.behaviour == "responder":
            for response_day in responses[youth_id]:
                assert not any(
                    response_day < day < response_day + 30 and a.reason is OutreachReason.INACTIVITY
                    for a, day in zip(made, days, strict=True)
                ), (plan, days)
