"""120 days of the watch for 360 youths with varied behaviour, one cycle a day under a
frozen clock: every contact is what the policy prescribes, none in quiet hours, none after an
opt-out, during a pause or after the 25th birthday, none twice, never two messages within 5
days. And the hand-over to people: every call task and every unreachable youth lands with
the référent who follows that youth at that moment (the supervisor while that référent is
away), every task left open past its due date reaches the supervisor after the policy's
delay, a call closed "joint·e" silences the watch for the period, and a missed psychologist
session the youth did not share leaves nothing staff can see."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

from cryptography.fernet import Fernet, MultiFernet
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from paris_avenir.appointments.models import Appointment, AppointmentKind, AppointmentStatus
from paris_avenir.kit.quiet_hours import DEFAULT as QUIET_HOURS
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.outreach import engine
from paris_avenir.outreach.models import OutreachAttempt, OutreachReason, OutreachResponse
from paris_avenir.staff import reassignment, tasks
from paris_avenir.staff.models import (
    CaseloadAssignment,
    StaffRole,
    StaffTask,
    StaffUser,
    TaskKind,
    Team,
)
from paris_avenir.youths.models import Channel, Youth
from tests.factories import TEST_FERNET_KEY, create_staff

START = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)  # 10:00 in Paris, every day of the run
DAYS = 120
YOUTHS = 360  # 40 of each behaviour: every rule is met hundreds of times
BEHAVIOURS = (
    "silent",
    "responder",
    "opts_out",
    "paused",
    "turns_25",
    "unreachable",
    "sms_only",
    "active",
    "called",
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
REASSIGNED_ON, ABSENT_FROM, ABSENT_UNTIL = 40, 60, 75
ESCALATION_DELAY = timedelta(days=3)  # the policy's default


@dataclass
class Plan:
    behaviour: str
    quiet_at_start: int
    referent: int  # index into the team's référents
    moves_to: int | None = None  # reassigned on REASSIGNED_ON
    private_session_missed: bool = False


def day_of(instant: datetime) -> int:
    return (instant - START).days


def follower_on(plan: Plan, day: int) -> int:
    if plan.moves_to is not None and day >= REASSIGNED_ON:
        return plan.moves_to
    return plan.referent


def test_120_days_of_outreach_for_360_youths(session: Session) -> None:
    team = Team(name="Équipe de la simulation")
    session.add(team)
    session.flush()
    referents = [create_staff(session, team_id=team.id) for _ in range(3)]
    supervisor = create_staff(session, StaffRole.SUPERVISOR, team_id=team.id)
    psychologist = create_staff(session, StaffRole.PSYCHOLOGIST)
    cipher = MultiFernet([Fernet(TEST_FERNET_KEY)])
    plans: dict[uuid.UUID, Plan] = {}
    rows = []
    for number in range(YOUTHS):
        behaviour = BEHAVIOURS[number % len(BEHAVIOURS)]
        quiet = number % 30
        youth_id = uuid.uuid4()
        plans[youth_id] = Plan(
            behaviour,
            quiet,
            referent=number % 3,
            moves_to=(number % 3 + 1) % 3 if number % 10 == 4 else None,
            private_session_missed=number % 7 == 3,
        )
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
                "youth_id": youth_id,
                "referent_id": referents[plan.referent].id,
                "started_at": START - timedelta(days=30),
            }
            for youth_id, plan in plans.items()
        ],
    )
    # A psychologist session missed on day 3, never shared with the référent.
    session.execute(
        insert(Appointment),
        [
            {
                "id": uuid.uuid4(),
                "youth_id": youth_id,
                "staff_id": psychologist.id,
                "kind": AppointmentKind.PSYCHOLOGIST,
                "place": "bureau",
                "starts_at": START + timedelta(days=3, minutes=index),
                "ends_at": START + timedelta(days=3, minutes=index + 45),
                "status": AppointmentStatus.MISSED,
                "shared_with_referent": False,
            }
            for index, youth_id in enumerate(
                youth_id for youth_id, plan in plans.items() if plan.private_session_missed
            )
        ],
    )
    session.flush()
    youths = {youth.id: youth for youth in session.scalars(select(Youth))}
    responses: dict[uuid.UUID, list[int]] = defaultdict(list)
    called_on: dict[uuid.UUID, list[int]] = defaultdict(list)
    # Who each task went to when it opened, and to whom it was escalated, day by day.
    opened_with: dict[uuid.UUID, uuid.UUID | None] = {}
    holder_when_late: dict[uuid.UUID, uuid.UUID | None] = {}

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
            if day == REASSIGNED_ON and plan.moves_to is not None:
                reassignment.reassign(
                    session,
                    youth_id,
                    to_referent_id=referents[plan.moves_to].id,
                    by=supervisor,
                    now=now,
                )
        if day == ABSENT_FROM:
            tasks.set_absence(
                session,
                referents[0],
                until=(START + timedelta(days=ABSENT_UNTIL - 1)).date(),
                by=supervisor,
                now=now,
            )
        session.flush()
        engine.run_cycle(session, base_url="http://x", secret_key="k" * 40, now=now)
        session.flush()
        for task in session.scalars(select(StaffTask).where(StaffTask.opened_at == now)):
            opened_with[task.id] = task.assignee_id
        for task in session.scalars(
            # The first daily cycle at or after the due date plus the delay.
            select(StaffTask).where(
                StaffTask.due_at <= now - ESCALATION_DELAY,
                StaffTask.due_at > now - ESCALATION_DELAY - timedelta(days=1),
                StaffTask.done_at.is_(None),
            )
        ):
            holder_when_late[task.id] = task.assignee_id
        if day in (REASSIGNED_ON, ABSENT_UNTIL, DAYS - 1):
            # An open task is held by the youth's référent now, or the supervisor: never by
            # someone who no longer follows the youth.
            for task in session.scalars(select(StaffTask).where(StaffTask.done_at.is_(None))):
                follower = referents[follower_on(plans[task.youth_id], day)]
                assert task.assignee_id in {follower.id, supervisor.id}, (task.kind, day)
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
        # For "called" youths, the person who holds the call task reaches them the next day.
        for task in session.scalars(
            select(StaffTask).where(
                StaffTask.opened_at == now - timedelta(days=1),
                StaffTask.kind == TaskKind.PHONE_YOUTH,
                StaffTask.done_at.is_(None),
            )
        ):
            if plans[task.youth_id].behaviour == "called":
                holder = session.get_one(StaffUser, task.assignee_id)
                tasks.close_task(session, cipher, task, by=holder, outcome="joint", now=now)
                called_on[task.youth_id].append(day)

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
        if plan.behaviour == "called":
            # Reached by a person: nothing at all for the 29 days that follow.
            for call_day in called_on[youth_id]:
                assert not any(call_day < day < call_day + 30 for day in days), (plan, days)
        # Health data stays with the psychologist: no trace of the missed private session.
        if plan.private_session_missed:
            assert all(a.reason is not OutreachReason.MISSED_APPOINTMENT for a in made)
    assert sum(len(called) for called in called_on.values()) >= 20

    every_task = session.scalars(select(StaffTask)).all()
    hand_overs = [
        task for task in every_task if task.kind in {TaskKind.PHONE_YOUTH, TaskKind.UNREACHABLE}
    ]
    assert len(hand_overs) > 200
    for task in hand_overs:
        day = day_of(task.opened_at)
        follower = referents[follower_on(plans[task.youth_id], day)]
        away = follower.id == referents[0].id and ABSENT_FROM <= day < ABSENT_UNTIL
        assert opened_with[task.id] == (supervisor.id if away else follower.id), (
            plans[task.youth_id],
            day,
        )
    # Every task still open at its due date plus the policy's delay is the supervisor's that
    # day: escalated by the watch at that very cycle, or handed over earlier (an absence).
    assert len(holder_when_late) > 100
    assert set(holder_when_late.values()) == {supervisor.id}
    for task in every_task:
        if task.escalated_at is not None:
            late_by = task.escalated_at - (task.due_at + ESCALATION_DELAY)
            assert timedelta(0) <= late_by < timedelta(days=1), task.kind  # that day's cycle
    assert sum(task.escalated_at is not None for task in every_task) > 100
    # No task, and no attempt staff can see, comes from a private psychologist session.
    assert not [task for task in every_task if task.kind is TaskKind.MISSED_APPOINTMENT]
