"""What people read of the work queue: "À faire" (urgent first, each line with the one thing
to do and what is needed to do it), the team's overdue tasks and loads, a youth file's task
history, and what a youth who asked for help reads. Changing a task is staff/tasks.py's job.

Every page is a fixed number of queries, whatever the number of tasks.
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache

from sqlalchemy import ColumnElement, Select, bindparam, case, func, select
from sqlalchemy.orm import Session, aliased

from paris_avenir.db import utcnow
from paris_avenir.kit.dates import PARIS, paris_day
from paris_avenir.kit.phone import mask
from paris_avenir.messaging.models import OutboxMessage, OutboxStatus
from paris_avenir.outreach.models import OutreachAttempt
from paris_avenir.staff.models import StaffTask, StaffUser, TaskKind
from paris_avenir.staff.scope import ScopeKey, scope_key
from paris_avenir.staff.tasks import (
    KINDS,
    kind_label,
    outcome_label,
    own_open_of,
    scoped_youth_ids,
    visible_to_of,
)
from paris_avenir.web.i18n import N_, gettext
from paris_avenir.youths.models import Channel, Youth

QUEUE_LIMIT = 200
CLOSE_STATS_WINDOW = timedelta(days=90)
OUTBOX_STATUS_WORDS: dict[OutboxStatus, str] = {
    OutboxStatus.QUEUED: N_("en attente d’envoi"),
    OutboxStatus.SENDING: N_("en cours d’envoi"),
    OutboxStatus.SENT: N_("envoyé, sans réponse"),
    OutboxStatus.DELIVERED: N_("reçu, sans réponse"),
    OutboxStatus.FAILED: N_("échec"),
    OutboxStatus.CANCELLED: N_("annulé"),
}
CHANNEL_WORDS = {Channel.SMS: N_("SMS"), Channel.EMAIL: N_("E-mail")}


# --- Reading the queue --------------------------------------------------------------------


@dataclass
class TaskLine:
    """One line of "À faire": who, why, since when, due when, the one thing to do and
    what is needed to do it."""

    task: StaffTask
    youth: Youth
    assignee_name: str | None
    label: str
    why: list[str]
    todo: str
    urgent: bool
    overdue: bool
    outcomes: list[tuple[str, str]]
    phone: str | None = None  # E.164, shown as a tel: link
    phone_flag: str | None = None
    channels: list[str] = field(default_factory=list)  # what was tried, what failed
    request_id: uuid.UUID | None = None
    active_since_opened: datetime | None = None
    offers_slots: bool = False  # the référent's free slots belong on this line


def _channel_facts(youth: Youth) -> list[str]:
    facts = []
    if youth.phone is None:
        facts.append(gettext("Pas de numéro de téléphone."))
    elif youth.phone_unreachable_at is not None:
        facts.append(
            gettext(
                "SMS : numéro injoignable depuis le %(date)s.",
                date=_day(youth.phone_unreachable_at),
            )
        )
    if youth.email is None:
        facts.append(gettext("Pas d’e-mail."))
    elif youth.email_unreachable_at is not None:
        facts.append(
            gettext(
                "E-mail : adresse en échec depuis le %(date)s.",
                date=_day(youth.email_unreachable_at),
            )
        )
    if youth.outreach_opted_out_at is not None:
        facts.append(gettext("S’est désinscrit des messages de suivi."))
    return facts


def _day(value: datetime | date) -> str:
    if isinstance(value, datetime):
        value = paris_day(value)
    return value.strftime("%d/%m/%Y")


def _why(task: StaffTask) -> list[str]:
    detail = task.detail or {}
    lines: list[str] = []
    if task.kind is TaskKind.PHONE_YOUTH and detail.get("quiet_days"):
        lines.append(gettext("Aucune activité depuis %(days)s jours.", days=detail["quiet_days"]))
    if detail.get("about"):
        lines.append(str(detail["about"]))
    if task.kind is TaskKind.MISSED_APPOINTMENT and detail.get("appointment_at"):
        when = datetime.fromisoformat(detail["appointment_at"]).astimezone(PARIS)
        lines.append(
            gettext(
                "%(appointment)s du %(date)s à %(time)s.",
                appointment=detail.get("appointment", gettext("Rendez-vous")),
                date=f"{when:%d/%m/%Y}",
                time=f"{when:%H:%M}",
            )
        )
    if detail.get("aid"):
        lines.append(f"{detail['aid']} ({detail.get('request', '')}).")
    if detail.get("documents"):
        added = ", ".join(str(item) for item in detail["documents"])
        lines.append(gettext("Ajouté : %(documents)s.", documents=added))
    if detail.get("submitted_on"):
        submitted = _day(date.fromisoformat(detail["submitted_on"]))
        lines.append(gettext("Déposée le %(date)s.", date=submitted))
    if detail.get("due_on"):
        due_on = _day(date.fromisoformat(detail["due_on"]))
        lines.append(gettext("Entretien dû le %(date)s.", date=due_on))
    if detail.get("birthday"):
        birthday = _day(date.fromisoformat(detail["birthday"]))
        lines.append(gettext("Anniversaire le %(date)s.", date=birthday))
    if detail.get("paper") and detail.get("expires_on"):
        expires_on = _day(date.fromisoformat(detail["expires_on"]))
        lines.append(
            gettext("%(paper)s : expire le %(date)s.", paper=detail["paper"], date=expires_on)
        )
    if detail.get("renewal_due_on"):
        due_on = _day(date.fromisoformat(detail["renewal_due_on"]))
        lines.append(gettext("Renouvellement dû le %(date)s.", date=due_on))
    if task.escalated_at is not None:
        lines.append(
            gettext("Passée au superviseur le %(date)s (en retard).", date=_day(task.escalated_at))
        )
    return lines


def _watch_messages(
    session: Session, tasks: Sequence[StaffTask]
) -> dict[uuid.UUID, list[tuple[OutreachAttempt, OutboxStatus | None]]]:
    """The watch's messages of each call task's quiet spell, with what became of them (one
    query for the whole page)."""
    periods = {
        (task.youth_id, str(task.detail["period"]))
        for task in tasks
        if task.kind is TaskKind.PHONE_YOUTH and (task.detail or {}).get("period")
    }
    if not periods:
        return {}
    found: dict[uuid.UUID, list[tuple[OutreachAttempt, OutboxStatus | None]]] = {}
    for attempt, status in session.execute(
        select(OutreachAttempt, OutboxMessage.status)
        .outerjoin(OutboxMessage, OutboxMessage.id == OutreachAttempt.outbox_message_id)
        .where(
            OutreachAttempt.youth_id.in_({youth_id for youth_id, _period in periods}),
            OutreachAttempt.period_key.in_({period for _youth_id, period in periods}),
            OutreachAttempt.channel.is_not(None),
        )
        .order_by(OutreachAttempt.attempted_at)
    ).all():
        if (attempt.youth_id, attempt.period_key) in periods:
            found.setdefault(attempt.youth_id, []).append((attempt, status))
    return found


def _lines(
    session: Session, now: datetime, *conditions: ColumnElement[bool], limit: int = QUEUE_LIMIT
) -> list[TaskLine]:
    """The tasks that meet the conditions, as people read them (_query's order), at most
    `limit` of them."""
    return _lines_of(session, now, _query(*conditions).limit(limit))


@lru_cache(maxsize=1024)
def _own_queue(key: ScopeKey, limit: int) -> Select[StaffTask, Youth, str]:
    """queue_for's statement, built once per scope and length (every dashboard runs it)."""
    return _query(own_open_of(key)).limit(limit)


def _lines_of(
    session: Session,
    now: datetime,
    statement: Select[StaffTask, Youth, str],
    values: dict[str, object] | None = None,
) -> list[TaskLine]:
    rows = session.execute(statement, values or {}).all()
    messages = _watch_messages(session, [task for task, _youth, _name in rows])
    lines = []
    for task, youth, assignee_name in rows:
        spec = KINDS[task.kind]
        tried = [
            gettext(
                "%(channel)s du %(date)s : %(status)s.",
                channel=gettext(CHANNEL_WORDS[attempt.channel]),
                date=_day(attempt.attempted_at),
                status=gettext(OUTBOX_STATUS_WORDS[status]) if status else gettext("pas envoyé"),
            )
            for attempt, status in messages.get(youth.id, [])
            if attempt.channel is not None
        ]
        if task.kind is TaskKind.PHONE_YOUTH and not tried:
            # Quiet before the watch reached them (or no channel worked): say so, rather
            # than let the référent believe messages went unanswered.
            tried.append(gettext("Aucun message de relance envoyé pendant cette période."))
        usable_phone = youth.phone if youth.phone and youth.phone_unreachable_at is None else None
        lines.append(
            TaskLine(
                task=task,
                youth=youth,
                assignee_name=assignee_name,
                label=gettext(spec.label),
                why=_why(task),
                todo=gettext(spec.todo),
                urgent=spec.urgent,
                overdue=task.due_at < now,
                outcomes=[(outcome.value, outcome_label(outcome)) for outcome in spec.outcomes],
                phone=usable_phone if spec.needs_phone else None,
                phone_flag=(
                    gettext("Numéro %(phone)s signalé injoignable.", phone=mask(youth.phone))
                    if spec.needs_phone and youth.phone and youth.phone_unreachable_at
                    else None
                ),
                channels=tried + (_channel_facts(youth) if spec.needs_phone else []),
                request_id=task.aid_request_id,
                active_since_opened=(
                    youth.last_activity_at
                    if youth.last_activity_at and youth.last_activity_at > task.opened_at
                    else None
                ),
                offers_slots=spec.offers_slots,
            )
        )
    return lines  # in the query's order: urgent first, then by due date


URGENT_KINDS = [kind for kind, spec in KINDS.items() if spec.urgent]
# Made once: a new alias per query costs more than the rest of building it (SQLAlchemy
# recomputes the alias's columns each time).
ASSIGNEE = aliased(StaffUser, name="assignee")
CLOSER = aliased(StaffUser, name="closer")


def _query(*conditions: ColumnElement[bool]) -> Select[StaffTask, Youth, str]:
    """Urgent first, then by due date (overdue ones are the earliest): ordered in SQL, so
    that the page's limit never drops an alert."""
    return (
        select(StaffTask, Youth, ASSIGNEE.full_name)
        .join(Youth, Youth.id == StaffTask.youth_id)
        .outerjoin(ASSIGNEE, ASSIGNEE.id == StaffTask.assignee_id)
        .where(*conditions)
        .order_by(
            case((StaffTask.kind.in_(URGENT_KINDS), 0), else_=1), StaffTask.due_at, StaffTask.id
        )
    )


def queue_for(
    session: Session,
    staff: StaffUser,
    *,
    now: datetime | None = None,
    limit: int = QUEUE_LIMIT,
) -> list[TaskLine]:
    """The staff member's open tasks, urgent first, then overdue, then due soon; in a fixed
    number of queries whatever their number. The dashboard asks for its first few only
    (each line decrypts its youth's contact details)."""
    now = now or utcnow()
    return _lines_of(session, now, _own_queue(scope_key(staff), limit))


def open_for_youth(
    session: Session, staff: StaffUser, youth_id: uuid.UUID, *, now: datetime | None = None
) -> list[TaskLine]:
    """The youth's open tasks the staff member may act on, for the youth file."""
    now = now or utcnow()
    return _lines_of(session, now, _youth_open_tasks(scope_key(staff)), {"youth_id": youth_id})


@lru_cache(maxsize=1024)
def _youth_open_tasks(key: ScopeKey) -> Select[StaffTask, Youth, str]:
    """open_for_youth's statement, built once per scope (every youth file runs it)."""
    return _query(
        visible_to_of(key),
        StaffTask.youth_id == bindparam("youth_id"),
        StaffTask.done_at.is_(None),
    ).limit(QUEUE_LIMIT)


def team_overdue(
    session: Session, supervisor: StaffUser, *, now: datetime | None = None
) -> list[TaskLine]:
    """Every open task of the team past its due date, whoever holds it."""
    now = now or utcnow()
    return _lines(
        session,
        now,
        StaffTask.youth_id.in_(scoped_youth_ids(supervisor)),
        StaffTask.done_at.is_(None),
        StaffTask.due_at < now,
    )


@dataclass(frozen=True)
class TaskLoad:
    open: int
    overdue: int
    median_hours_to_close: float | None


def team_task_loads(
    session: Session, staff_ids: Sequence[uuid.UUID], *, now: datetime | None = None
) -> dict[uuid.UUID, TaskLoad]:
    """Per person: open and overdue tasks now, and the median time to close over 90 days
    (by who closed them). Two queries."""
    now = now or utcnow()
    counts: dict[uuid.UUID, tuple[int, int]] = {}
    for assignee_id, opened, overdue in session.execute(
        select(
            StaffTask.assignee_id,
            func.count(),
            func.sum(case((StaffTask.due_at < now, 1), else_=0)),
        )
        .where(StaffTask.assignee_id.in_(list(staff_ids)), StaffTask.done_at.is_(None))
        .group_by(StaffTask.assignee_id)
    ):
        counts[assignee_id] = (int(opened), int(overdue or 0))
    durations: dict[uuid.UUID, list[float]] = {}
    for closed_by, opened_at, done_at in session.execute(
        select(StaffTask.closed_by_id, StaffTask.opened_at, StaffTask.done_at).where(
            StaffTask.closed_by_id.in_(list(staff_ids)),
            StaffTask.done_at >= now - CLOSE_STATS_WINDOW,
        )
    ):
        if closed_by is not None and done_at is not None:
            hours = (done_at - opened_at).total_seconds() / 3600
            durations.setdefault(closed_by, []).append(hours)
    loads = {}
    for staff_id in staff_ids:
        opened, overdue = counts.get(staff_id, (0, 0))
        closing = durations.get(staff_id)
        loads[staff_id] = TaskLoad(opened, overdue, statistics.median(closing) if closing else None)
    return loads


@dataclass(frozen=True)
class HistoryEntry:
    task: StaffTask
    label: str
    outcome: str | None
    closed_by: str | None
    assignee: str | None


_YOUTH_HISTORY = (
    select(StaffTask, CLOSER.full_name, ASSIGNEE.full_name)
    .outerjoin(CLOSER, CLOSER.id == StaffTask.closed_by_id)
    .outerjoin(ASSIGNEE, ASSIGNEE.id == StaffTask.assignee_id)
    .where(StaffTask.youth_id == bindparam("youth_id"))
    .order_by(StaffTask.opened_at.desc())
    .limit(bindparam("limit"))
)


def youth_history(session: Session, youth_id: uuid.UUID, *, limit: int = 30) -> list[HistoryEntry]:
    """The youth file's task history, newest first, open ones included (one query)."""
    rows = session.execute(_YOUTH_HISTORY, {"youth_id": youth_id, "limit": limit}).all()
    return [
        HistoryEntry(
            task,
            kind_label(task.kind),
            outcome_label(task.outcome) if task.outcome else None,
            closed_by,
            assignee_name,
        )
        for task, closed_by, assignee_name in rows
    ]
