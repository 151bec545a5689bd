"""`outreach run --dry-run` lists exactly what a real run at the same instant does: every
contact for every reason, every task handed over, every escalation, day after day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests.models import AidCode, AidRequestEvent, RequestStatus
from paris_avenir.appointments.models import AppointmentStatus
from paris_avenir.audit.models import AuditEvent
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.outreach import engine
from paris_avenir.outreach.models import OutreachAttempt, OutreachReason
from paris_avenir.staff.models import StaffRole, StaffTask, Team
from paris_avenir.youths.models import Youth
from tests.factories import (
    assign,
    create_aid_request,
    create_appointment,
    create_outreach_attempt,
    create_staff,
    create_youth,
)

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # a Wednesday, 11:00 in Paris
CYCLE_REASONS = {
    OutreachReason.INACTIVITY,
    OutreachReason.CHECK_IN,
    OutreachReason.DOCUMENTS_AWAITED,
    OutreachReason.MISSED_APPOINTMENT,
    OutreachReason.BIRTHDAY_21,
    OutreachReason.BIRTHDAY_25,
    OutreachReason.ALLOCATION_RENEWAL,
}


def _rows(session: Session) -> tuple[object, ...]:
    """What a run could change: the watch's rows, the tasks and who holds them, the audit."""
    count = func.count()
    return (
        session.scalar(select(count).select_from(OutreachAttempt)),
        session.scalar(select(count).select_from(OutboxMessage)),
        session.scalar(select(count).select_from(AuditEvent)),
        tuple(
            session.execute(
                select(StaffTask.id, StaffTask.assignee_id, StaffTask.escalated_at).order_by(
                    StaffTask.id
                )
            ).all()
        ),
    )


def _a_youth_for_every_reason(session: Session) -> None:
    team = Team(name="Équipe à sec")
    session.add(team)
    session.flush()
    referent = create_staff(session, team_id=team.id)
    create_staff(session, StaffRole.SUPERVISOR, team_id=team.id)

    def youth(**values: object) -> Youth:
        defaults: dict[str, object] = {
            "birth_date": date(2004, 6, 1),
            "activated_at": NOW - timedelta(days=400),
            "last_activity_at": NOW - timedelta(days=3),
        }
        made = create_youth(session, **{**defaults, **values})
        assign(session, made, referent)
        return made

    for quiet in (30, 37, 45, 52, 90):  # every step of the inactivity watch, and again
        youth(last_activity_at=NOW - timedelta(days=quiet))
    youth(
        last_activity_at=NOW - timedelta(days=30),
        phone_unreachable_at=NOW,
        email_unreachable_at=NOW,
    )
    youth(activated_at=NOW - timedelta(days=95))  # "Comment ça va ?"
    # Quiet and turning 21: the inactivity SMS caps the birthday message, in both modes.
    youth(last_activity_at=NOW - timedelta(days=30), birth_date=date(2006, 1, 10))
    youth(birth_date=date(2006, 1, 20))
    youth(birth_date=date(2002, 2, 20))
    waiting = youth()
    request = create_aid_request(
        session,
        waiting,
        aid_code=AidCode.NAVIGO,
        status=RequestStatus.MISSING_DOCUMENTS,
        form_data={},
        submitted_at=NOW - timedelta(days=40),
    )
    session.flush()
    session.add(
        AidRequestEvent(
            aid_request_id=request.id,
            to_status=RequestStatus.MISSING_DOCUMENTS,
            occurred_at=NOW - timedelta(days=8),
            actor_staff_id=referent.id,
        )
    )
    create_aid_request(
        session,
        youth(),
        aid_code=AidCode.LOGEMENT,
        status=RequestStatus.UNDER_REVIEW,
        form_data={},
        submitted_at=NOW - timedelta(days=35),
    )
    renewing = youth()
    create_aid_request(
        session,
        renewing,
        aid_code=AidCode.ALLOCATION,
        status=RequestStatus.PAID,
        form_data={},
        submitted_at=NOW - timedelta(days=170),
        renewal_due_on=NOW + timedelta(days=20),
    )
    missed = youth()
    create_appointment(
        session, missed, referent, NOW - timedelta(days=2), status=AppointmentStatus.MISSED
    )
    youth(ase_exit_date=date(2026, 6, 12))  # the 6-month interview is due, not booked
    # A trigger already made: neither run does it again.
    done = youth(birth_date=date(2006, 1, 25))
    create_outreach_attempt(
        session,
        done,
        reason=OutreachReason.BIRTHDAY_21,
        step=1,
        period_key="2027",
        channel=None,
        at=NOW - timedelta(days=20),
    )


def test_a_dry_run_and_a_real_run_decide_the_same_for_every_reason(session: Session) -> None:
    _a_youth_for_every_reason(session)
    seen: set[OutreachReason] = set()
    handed_over = 0
    escalated = 0
    for day in range(0, 12):
        now = NOW + timedelta(days=day, minutes=7 * day)
        before = _rows(session)
        dry = engine.run_cycle(
            session, base_url="http://x", secret_key="k" * 40, now=now, dry_run=True
        )
        assert _rows(session) == before, "a dry run writes nothing"
        real = engine.run_cycle(session, base_url="http://x", secret_key="k" * 40, now=now)
        assert dry.contacts == real.contacts and dry.counts == real.counts, day
        assert dry.tasks == real.tasks, day
        assert dry.escalations == real.escalations, day
        seen |= {contact.reason for contact in real.contacts}
        handed_over += len(real.tasks)
        escalated += len(real.escalations)
        session.flush()
    assert seen == CYCLE_REASONS
    assert handed_over >= 3 and escalated >= 1  # the comparison covered tasks and moves too
