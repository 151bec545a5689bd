"""The work queue: whatever the watch cannot do by message becomes a task for a person.

This module is the only place a task is built, assigned, closed or escalated. Every other
domain calls `open_task` (the outreach cycle, the check-in, a missed appointment, a deletion
request, documents received) and `close_done` when the work was done by other means (a
decision on the request, an interview booked).

- The assignee is resolved once, when the task opens: the youth's current référent; the
  team's supervisor when there is none or the référent is marked absent.
- A key makes every task unique (an outreach attempt, a request, a birthday year), so a
  retried job or two schedulers never open the same task twice.
- Closing records an outcome from a short list per kind and, optionally, a note in the
  encrypted journal; it is audited. "Joint·e" and "vu·e" count as the youth's activity, so
  the watch restarts from that day; "mauvais numéro" flags the phone; "pas de réponse"
  lets the watch's next step run.
- A task still open some days after its due date (the admin's policy) moves to the team's
  supervisor; reassigning a youth moves their open tasks; declaring an absence moves the
  absent person's open tasks.

What people read of the queue ("À faire", the team page, a youth file's history) is in
backoffice/task_queue.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache, partial
from typing import Any, TypedDict

from cryptography.fernet import MultiFernet
from sqlalchemy import ColumnElement, Select, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from paris_avenir.audit import service as audit
from paris_avenir.db import insert_many_ignoring_conflicts, utcnow
from paris_avenir.kit import quiet_hours
from paris_avenir.kit.dates import PARIS, paris_day
from paris_avenir.kit.holidays import is_public_holiday
from paris_avenir.messaging import fallback, outbox
from paris_avenir.staff import assignments, journal
from paris_avenir.staff.models import (
    CaseloadAssignment,
    StaffRole,
    StaffTask,
    StaffUser,
    TaskKind,
    TaskOutcome,
)
from paris_avenir.staff.scope import ScopeKey, one_in_scope, scope_key, youth_scope_of
from paris_avenir.web.i18n import N_, SOURCE_LOCALE, gettext, using_locale
from paris_avenir.youths.activity import Activity, record_activity, report_phone_wrong
from paris_avenir.youths.models import Channel, Youth

# Staff work on weekdays; an urgent task is due by the end of the working day.
WORKDAY_ENDS = time(18, 0)
URGENT_MINIMUM = timedelta(hours=2)  # less left today: due at the end of the next one

# Each kind offers a subset of one list, always in this order, so the form reads the same
# from one task to the next.
OUTCOME_ORDER = (
    TaskOutcome.REACHED,
    TaskOutcome.SEEN_AT_COUNTER,
    TaskOutcome.DONE,
    TaskOutcome.NO_ANSWER,
    TaskOutcome.WRONG_NUMBER,
    TaskOutcome.FORWARDED,
    TaskOutcome.NO_LONGER_NEEDED,
)
CALLS = tuple(outcome for outcome in OUTCOME_ORDER if outcome is not TaskOutcome.DONE)
MEETINGS = OUTCOME_ORDER
PAPERWORK = (TaskOutcome.DONE, TaskOutcome.FORWARDED, TaskOutcome.NO_LONGER_NEEDED)
# Outcomes that mean a person of the team was in touch with the youth.
CONTACT_OUTCOMES = frozenset({TaskOutcome.REACHED, TaskOutcome.SEEN_AT_COUNTER})
# On an urgent alert, these are tries: nobody has spoken to the youth, the alert stays open.
KEEP_URGENT_OPEN = frozenset({TaskOutcome.NO_ANSWER, TaskOutcome.WRONG_NUMBER})

OUTCOME_LABELS: dict[TaskOutcome, str] = {
    TaskOutcome.REACHED: N_("Joint·e"),
    TaskOutcome.NO_ANSWER: N_("Pas de réponse"),
    TaskOutcome.WRONG_NUMBER: N_("Mauvais numéro"),
    TaskOutcome.SEEN_AT_COUNTER: N_("Vu·e au guichet"),
    TaskOutcome.NO_LONGER_NEEDED: N_("Plus besoin"),
    TaskOutcome.FORWARDED: N_("Transmis"),
    TaskOutcome.DONE: N_("Fait"),
}


class TaskDetail(TypedDict, total=False):
    """What a task knows from when it opened (StaffTask.detail), shown with it: plain facts
    for the référent, never a phone number or an email."""

    period: str  # a call task: the quiet spell whose messages the line lists
    quiet_days: int
    about: str  # a sentence for the référent (why a youth cannot be reached)
    appointment: str  # a missed appointment: its kind in words, and when
    appointment_at: str  # ISO instant
    aid: str  # a request's aid, reference, documents added and filing date
    request: str
    documents: list[str]
    submitted_on: str  # ISO date
    due_on: str  # the 6-month interview's due date (ISO)
    birthday: str  # the 21st or 25th birthday (ISO date)
    paper: str  # a paper that expires: its kind in words, and the date (ISO)
    expires_on: str
    renewal_due_on: str  # the allocation's renewal date (ISO)


@dataclass(frozen=True)
class KindSpec:
    label: str
    todo: str  # the one thing to do, in words
    outcomes: tuple[TaskOutcome, ...]
    due_after: timedelta = timedelta(days=2)
    urgent: bool = False
    needs_phone: bool = True  # the number, as a tel: link, is what the task needs
    offers_slots: bool = False  # the call may end with an appointment: show free slots


KINDS: dict[TaskKind, KindSpec] = {
    TaskKind.NEEDS_HELP_ALERT: KindSpec(
        N_("A répondu « J’ai besoin d’aide »"),
        N_("Appelez le jeune aujourd’hui."),
        CALLS,
        urgent=True,
        offers_slots=True,
    ),
    TaskKind.PHONE_YOUTH: KindSpec(
        N_("Silencieux : appeler"),
        N_("Appelez le jeune : il ne donne plus de nouvelles."),
        CALLS,
        offers_slots=True,
    ),
    TaskKind.UNREACHABLE: KindSpec(
        N_("Injoignable par message"),
        N_(
            "Trouvez un autre moyen de le joindre (téléphone, guichet, partenaires), puis "
            "mettez à jour son numéro ou son e-mail avec lui."
        ),
        CALLS,
    ),
    TaskKind.NUMBER_TO_CHECK: KindSpec(
        N_("Numéro à vérifier"),
        N_(
            "Nos messages ne lui arrivent plus, ni par SMS ni par e-mail : joignez-le "
            "autrement (téléphone, guichet, partenaires) et vérifiez son numéro avec lui."
        ),
        CALLS,
    ),
    TaskKind.CALL_BACK: KindSpec(
        N_("Demande à être rappelé·e"),
        N_(
            "Rappelez le jeune : il ne peut pas venir à son rendez-vous et attend votre appel "
            "pour en fixer un autre."
        ),
        CALLS,
        offers_slots=True,
    ),
    TaskKind.MISSED_APPOINTMENT: KindSpec(
        N_("Rendez-vous manqué"),
        N_("Appelez le jeune et proposez-lui un nouveau rendez-vous."),
        CALLS,
        offers_slots=True,
    ),
    TaskKind.DELETION_REQUEST: KindSpec(
        N_("Demande de suppression du compte"),
        N_(
            "Vérifiez ce que la loi oblige à garder (aides versées, décisions), puis répondez "
            "au jeune."
        ),
        (
            TaskOutcome.REACHED,
            TaskOutcome.DONE,
            TaskOutcome.FORWARDED,
            TaskOutcome.NO_LONGER_NEEDED,
        ),
        due_after=timedelta(days=30),  # one month to answer (RGPD art. 12)
        needs_phone=False,
    ),
    TaskKind.DOCUMENTS_RECEIVED: KindSpec(
        N_("Documents reçus"),
        N_("Vérifiez les documents ajoutés et reprenez l’instruction de la demande."),
        PAPERWORK,
        due_after=timedelta(days=3),
        needs_phone=False,
    ),
    TaskKind.REQUEST_WAITING: KindSpec(
        N_("Demande en attente depuis plus de 30 jours"),
        N_("Décidez, ou dites au jeune ce qui bloque et quand il aura une réponse."),
        PAPERWORK,
        due_after=timedelta(days=5),
        needs_phone=False,
    ),
    TaskKind.FOLLOW_UP_INTERVIEW: KindSpec(
        N_("Entretien des 6 mois à fixer"),
        N_(
            "Appelez le jeune pour fixer l’entretien des 6 mois après sa sortie de l’ASE "
            "(CASF art. L222-5-2-1) : il n’a pas encore pris rendez-vous."
        ),
        MEETINGS,
        offers_slots=True,
    ),
    TaskKind.BIRTHDAY_21: KindSpec(
        N_("Bientôt 21 ans"),
        N_(
            "Préparez la suite avec le jeune : le Navigo gratuit et le contrat jeune majeur "
            "s’arrêtent à 21 ans."
        ),
        MEETINGS,
    ),
    TaskKind.BIRTHDAY_25: KindSpec(
        N_("Bientôt 25 ans : fin de Paris avenir"),
        N_(
            "Préparez le relais vers le droit commun (service social de secteur, Mission "
            "locale, CCAS) avant ses 25 ans."
        ),
        MEETINGS,
    ),
    TaskKind.PAPER_EXPIRING: KindSpec(
        N_("Papier qui expire dans un mois"),
        N_(
            "Vérifiez avec le jeune que le renouvellement est lancé (rendez-vous en préfecture "
            "ou en mairie, pièces réunies) ; proposez le guichet « démarches » si besoin."
        ),
        MEETINGS,
    ),
    TaskKind.ALLOCATION_RENEWAL: KindSpec(
        N_("Allocation à renouveler dans un mois"),
        N_(
            "Vérifiez avec le jeune que la demande de renouvellement est faite, avec ses "
            "justificatifs de ressources des 3 derniers mois."
        ),
        MEETINGS,
    ),
}


class TaskError(Exception):
    """A refusal for the staff member, in French, with the HTTP status it answers."""

    def __init__(self, message: str, status_code: int = 422) -> None:
        super().__init__(message)
        self.status_code = status_code


def outcome_label(outcome: TaskOutcome) -> str:
    return gettext(OUTCOME_LABELS[outcome])


def kind_label(kind: TaskKind) -> str:
    return gettext(KINDS[kind].label)


# --- When a task is due -------------------------------------------------------------------


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and not is_public_holiday(day)


def end_of_working_day(now: datetime) -> datetime:
    """18:00 today if it is a working day with two hours left, else the next working day."""
    local = now.astimezone(PARIS)
    end = datetime.combine(local.date(), WORKDAY_ENDS, tzinfo=PARIS)
    if is_working_day(local.date()) and end - local >= URGENT_MINIMUM:
        return end
    return end_of_next_working_day(now)


def end_of_next_working_day(now: datetime) -> datetime:
    """18:00 on the first working day after today."""
    day = paris_day(now) + timedelta(days=1)
    while not is_working_day(day):
        day += timedelta(days=1)
    return datetime.combine(day, WORKDAY_ENDS, tzinfo=PARIS)


def default_due(kind: TaskKind, now: datetime) -> datetime:
    spec = KINDS[kind]
    return end_of_working_day(now) if spec.urgent else now + spec.due_after


# --- Who does it --------------------------------------------------------------------------


def can_hold_tasks(person: StaffUser, now: datetime) -> bool:
    """An active référent who is not away."""
    return person.role is StaffRole.REFERENT and person.is_active and not person.is_absent(now)


def holder_for(
    referent: StaffUser | None,
    *,
    supervisor_of: Callable[[uuid.UUID | None], StaffUser | None],
    last_team_id: Callable[[], uuid.UUID | None],
    now: datetime,
) -> StaffUser | None:
    """The rule, once: the youth's current référent; the team's supervisor when there is
    none, or they are absent, disabled or no longer a référent (the team of the youth's last
    référent when they have none now). None when no one can be found: the cycle assigns the
    task as soon as someone can take it, and the admins are told of an urgent one."""
    if referent is not None and can_hold_tasks(referent, now):
        return referent
    return supervisor_of(referent.team_id if referent else last_team_id())


def assignee_for(session: Session, youth_id: uuid.UUID, now: datetime) -> StaffUser | None:
    """Who should hold a task of this youth now (holder_for, for one youth)."""
    return holder_for(
        assignments.current_referent(session, youth_id),
        supervisor_of=lambda team_id: assignments.team_supervisor(session, team_id, now=now),
        last_team_id=lambda: assignments.last_team_id(session, youth_id),
        now=now,
    )


# --- Opening ------------------------------------------------------------------------------


def open_task(
    session: Session,
    *,
    youth_id: uuid.UUID,
    kind: TaskKind,
    key: str,
    now: datetime | None = None,
    due_at: datetime | None = None,
    outreach_attempt_id: uuid.UUID | None = None,
    aid_request_id: uuid.UUID | None = None,
    appointment_id: uuid.UUID | None = None,
    detail: TaskDetail | None = None,
    base_url: str | None = None,
) -> StaffTask | None:
    """Opens the task once per key (None when it exists already). An urgent task emails
    its assignee at once (within the sending window): `base_url` is then required."""
    now = now or utcnow()
    if session.scalar(select(StaffTask.id).where(StaffTask.key == key)) is not None:
        return None
    assignee = assignee_for(session, youth_id, now)
    task = StaffTask(
        youth_id=youth_id,
        key=key,
        kind=kind,
        assignee_id=assignee.id if assignee else None,
        opened_at=now,
        due_at=due_at or default_due(kind, now),
        outreach_attempt_id=outreach_attempt_id,
        aid_request_id=aid_request_id,
        appointment_id=appointment_id,
        detail=dict(detail or {}),
    )
    try:
        with session.begin_nested():
            session.add(task)
            session.flush()
    except IntegrityError:
        return None  # opened at the same moment by another worker
    if KINDS[kind].urgent:
        assert base_url is not None, "an urgent task emails its assignee a link"
        _tell_of_urgent(session, task, assignee, base_url=base_url, now=now)
    return task


@dataclass(frozen=True)
class Opening:
    """A task to open with open_tasks(): open_task()'s arguments."""

    youth_id: uuid.UUID
    kind: TaskKind
    key: str
    due_at: datetime | None = None
    outreach_attempt_id: uuid.UUID | None = None
    aid_request_id: uuid.UUID | None = None
    detail: TaskDetail | None = None


def open_tasks(
    session: Session, openings: Iterable[Opening], *, now: datetime, base_url: str | None = None
) -> set[str]:
    """open_task() for a batch (the outreach cycle's): the référents found in one query,
    the tasks written in one INSERT; a key opened already is left out. The keys opened."""
    openings = list(openings)
    opened = {
        opening.key
        for opening in openings
        if KINDS[opening.kind].urgent  # emails its holder: one at a time
        and open_task(
            session,
            youth_id=opening.youth_id,
            kind=opening.kind,
            key=opening.key,
            now=now,
            due_at=opening.due_at,
            outreach_attempt_id=opening.outreach_attempt_id,
            aid_request_id=opening.aid_request_id,
            detail=opening.detail,
            base_url=base_url,
        )
    }
    openings = [opening for opening in openings if not KINDS[opening.kind].urgent]
    if not openings:
        return opened
    referents = assignments.current_referents(session, {opening.youth_id for opening in openings})
    supervisors: dict[uuid.UUID | None, StaffUser | None] = {}

    def supervisor_of(team_id: uuid.UUID | None) -> StaffUser | None:
        if team_id not in supervisors:
            supervisors[team_id] = assignments.team_supervisor(session, team_id, now=now)
        return supervisors[team_id]

    rows = []
    for opening in openings:
        assignee = holder_for(
            referents.get(opening.youth_id),
            supervisor_of=supervisor_of,
            last_team_id=partial(assignments.last_team_id, session, opening.youth_id),
            now=now,
        )
        rows.append(
            {
                "id": uuid.uuid4(),
                "youth_id": opening.youth_id,
                "key": opening.key,
                "kind": opening.kind,
                "assignee_id": assignee.id if assignee else None,
                "opened_at": now,
                "due_at": opening.due_at or default_due(opening.kind, now),
                "outreach_attempt_id": opening.outreach_attempt_id,
                "aid_request_id": opening.aid_request_id,
                "detail": dict(opening.detail or {}),
            }
        )
    return opened | set(insert_many_ignoring_conflicts(session, StaffTask, rows, "key"))


# --- A number to check (messaging/fallback.py) ---------------------------------------------

FAILURE_WORDS = {
    (Channel.SMS, True): N_("SMS du %(date)s : pas reçu (aucun accusé de réception)."),
    (Channel.SMS, False): N_("SMS du %(date)s : échec (numéro refusé par l’opérateur)."),
    (Channel.EMAIL, True): N_("E-mail du %(date)s : pas reçu."),
    (Channel.EMAIL, False): N_("E-mail du %(date)s : échec (adresse refusée)."),
}


def open_number_check(
    session: Session, failure: fallback.SecondFailure, *, now: datetime
) -> StaffTask | None:
    """A message and its fallback both failed (or the other channel could not be tried):
    the référent checks the number. One open at a time per youth (the youth's row is
    locked meanwhile, so two passes at once open one); the line says which channels failed
    and the number's last two digits, never the number."""
    session.execute(select(Youth.id).where(Youth.id == failure.youth_id).with_for_update())
    already = session.scalar(
        select(StaffTask.id).where(
            StaffTask.youth_id == failure.youth_id,
            StaffTask.kind == TaskKind.NUMBER_TO_CHECK,
            StaffTask.done_at.is_(None),
        )
    )
    if already is not None:
        return None
    phone = session.scalar(select(Youth.phone).where(Youth.id == failure.youth_id))
    with using_locale(SOURCE_LOCALE):
        facts = [
            gettext(FAILURE_WORDS[item.channel, item.undelivered], date=_paris_date(item.at))
            for item in failure.failures
        ]
        if len(failure.failures) == 1:
            facts.append(gettext("Pas d’autre moyen de le joindre par message."))
        facts.append(
            gettext("Numéro enregistré : se termine par %(digits)s.", digits=phone[-2:])
            if phone
            else gettext("Pas de numéro de téléphone.")
        )
    return open_task(
        session,
        youth_id=failure.youth_id,
        kind=TaskKind.NUMBER_TO_CHECK,
        key=f"numero-a-verifier:{failure.record_id}",
        now=now,
        detail={"about": " ".join(facts)},
    )


def number_proven(
    session: Session, youth_id: uuid.UUID, *, by_id: uuid.UUID | None = None, now: datetime
) -> int:
    """The youth's number works after all (a code sent to it came back, a new number was
    proven, or the team said so): their open « Numéro à vérifier » is done by itself, as
    "fait", audited. Returns how many were closed."""
    return close_done(
        session, kinds=[TaskKind.NUMBER_TO_CHECK], by_id=by_id, now=now, youth_id=youth_id
    )


def _paris_date(instant: datetime) -> str:
    return paris_day(instant).strftime("%d/%m/%Y")


def _youth_short_name(session: Session, youth_id: uuid.UUID) -> str:
    first, last = session.execute(
        select(Youth.first_name, Youth.last_name).where(Youth.id == youth_id)
    ).one()
    return f"{first} {last[:1]}."


def _email_staff(
    session: Session,
    to: StaffUser,
    *,
    template: str,
    subject: str,
    text: str,
    key: str,
    now: datetime,
) -> None:
    """An email to a member of the staff, once per key, first in the queue, within the
    sending window (only sign-in codes leave at night)."""
    outbox.enqueue(
        session,
        channel=Channel.EMAIL,
        recipient=to.email,
        template=template,
        subject=subject,
        body_text=text,
        idempotency_key=key,
        staff_id=to.id,
        urgent=True,
        now=now,
        not_before=quiet_hours.load(session).next_sending_time(now),
    )


def _email_urgent(
    session: Session,
    task: StaffTask,
    to: StaffUser,
    *,
    base_url: str,
    now: datetime,
    instead_of: StaffUser | None = None,
) -> None:
    """The email that says "someone needs you": the youth's first name and initial, the
    link to "À faire", nothing else (no number, no detail: mailboxes are read elsewhere)."""
    name = _youth_short_name(session, task.youth_id)
    link = f"{base_url.rstrip('/')}/pro/a-faire"
    parts = [
        gettext("Bonjour %(name)s,", name=to.full_name),
        gettext(
            "%(youth)s a répondu « J’ai besoin d’aide » au message « Comment ça va ? » de "
            "Paris avenir.",
            youth=name,
        ),
    ]
    if instead_of is not None:
        parts.append(
            gettext(
                "%(name)s est absent·e ou ne l’a pas traitée à temps : vous la recevez à sa place.",
                name=instead_of.full_name,
            )
        )
    parts += [
        gettext(
            "Appelez le jeune aujourd’hui. Son numéro et ce qu’il faut savoir sont dans "
            "« À faire » :"
        )
        + f"\n{link}",
        gettext("Ce message ne contient rien d’autre, pour protéger le jeune."),
    ]
    text = "\n\n".join(parts)
    _email_staff(
        session,
        to,
        template="task_urgent_alert",
        subject=gettext("Urgent : %(youth)s a besoin d’aide", youth=name),
        text=text,
        key=f"task-urgent:{task.id}:{to.id}",
        now=now,
    )


def _tell_of_urgent(
    session: Session,
    task: StaffTask,
    holder: StaffUser | None,
    *,
    base_url: str,
    now: datetime,
    instead_of: StaffUser | None = None,
) -> None:
    """An urgent task opened or changed hands: its holder is emailed, or, when nobody can
    hold it, the admins. Always in French: the task may open from a youth's page, in their
    language."""
    with using_locale(SOURCE_LOCALE):
        if holder is not None:
            _email_urgent(session, task, holder, base_url=base_url, now=now, instead_of=instead_of)
        else:
            _email_admins_unassigned(session, task, now=now)


def _email_admins_unassigned(session: Session, task: StaffTask, *, now: datetime) -> None:
    """Nobody can take an urgent alert: the youth's référent is away or gone and their team
    has no active supervisor. The admins fix the set-up (they see no youth file: the email
    names the référent or, without one, the ASE reference), and the cycle gives the alert
    to whoever can take it at once after that."""
    referent = assignments.current_referent(session, task.youth_id)
    if referent is not None:
        whose = gettext(
            "Le référent de ce jeune, %(name)s, est absent ou n’a plus de compte actif, et son "
            "équipe n’a pas de superviseur actif.",
            name=referent.full_name,
        )
    else:
        reference = session.scalar(select(Youth.ase_ref).where(Youth.id == task.youth_id))
        whose = gettext(
            "Le jeune de référence ASE %(reference)s n’a pas de référent, ni d’équipe avec un "
            "superviseur actif.",
            reference=reference,
        )
    text = "\n\n".join(
        [
            gettext("Une alerte urgente (« J’ai besoin d’aide ») n’a personne pour la traiter."),
            whose,
            gettext(
                "Rattachez un superviseur actif à l’équipe, ou le jeune à un référent : "
                "l’alerte lui sera confiée dans la demi-heure."
            ),
        ]
    )
    for admin in session.scalars(
        select(StaffUser).where(StaffUser.role == StaffRole.ADMIN, StaffUser.is_active.is_(True))
    ):
        _email_staff(
            session,
            admin,
            template="task_unassigned_alert",
            subject=gettext("Urgent : une alerte n’a personne pour la traiter"),
            text=text,
            key=f"task-unassigned:{task.id}:{admin.id}",
            now=now,
        )


# --- Who can act on a task ----------------------------------------------------------------


def visible_to(staff: StaffUser) -> ColumnElement[bool]:
    """Always within the staff member's scope (a task held for a youth one no longer
    follows shows nothing): a référent acts on the tasks assigned to them, a supervisor on
    every task of a youth of their team."""
    return visible_to_of(scope_key(staff))


@lru_cache(maxsize=1024)
def visible_to_of(key: ScopeKey) -> ColumnElement[bool]:
    """visible_to, by scope key (staff.scope.scope_key)."""
    role, staff_id, _team_id = key
    in_scope = StaffTask.youth_id.in_(scoped_youth_ids_of(key))
    if role is StaffRole.SUPERVISOR:
        return in_scope
    if role is StaffRole.REFERENT:
        return and_(StaffTask.assignee_id == staff_id, in_scope)
    return StaffTask.id.is_(None)


def scoped_youth_ids(staff: StaffUser) -> Select[uuid.UUID]:
    """The youths the staff member follows now (staff.scope's rule), for an IN clause."""
    return scoped_youth_ids_of(scope_key(staff))


def scoped_youth_ids_of(key: ScopeKey) -> Select[uuid.UUID]:
    """scoped_youth_ids, by scope key (staff.scope.scope_key)."""
    return select(Youth.id).where(youth_scope_of(key))


def task_for_staff(
    session: Session, staff: StaffUser, task_id: str, *, ip_address: str | None
) -> StaffTask:
    """The task if the staff member may act on it; otherwise a 404 identical to a missing
    id, with an access_denied audit entry (scope.deny)."""
    return one_in_scope(
        session,
        staff,
        task_id,
        lambda parsed: select(StaffTask).where(StaffTask.id == parsed, visible_to(staff)),
        object_type="staff_task",
        ip_address=ip_address,
    )


# --- Counting -----------------------------------------------------------------------------


def open_count(session: Session, staff: StaffUser) -> int:
    """For the menu: the same tasks as "À faire", counted in one query."""
    return int(session.scalar(_open_count_statement(scope_key(staff))) or 0)


@lru_cache(maxsize=1024)
def _open_count_statement(key: ScopeKey) -> Select[int]:
    # Built once per scope: every staff page shows the count.
    return select(func.count()).select_from(StaffTask).where(own_open_of(key))


@lru_cache(maxsize=1024)
def own_open_of(key: ScopeKey) -> ColumnElement[bool]:
    """The staff member's open tasks, within their scope, by scope key
    (staff.scope.scope_key)."""
    _role, staff_id, _team_id = key
    return and_(
        StaffTask.assignee_id == staff_id,
        StaffTask.done_at.is_(None),
        StaffTask.youth_id.in_(scoped_youth_ids_of(key)),
    )


def forget_details(session: Session, youth_id: uuid.UUID) -> None:
    """An anonymised file (retention.files): its tasks keep their kind, dates and outcome
    for the statistics, and lose their details (a birthday, documents received)."""
    session.execute(
        update(StaffTask)
        .where(StaffTask.youth_id == youth_id)
        .values(detail={})
        .execution_options(synchronize_session=False)
    )


def overdue_counts(session: Session, now: datetime) -> dict[TaskKind, int]:
    """Open tasks past their due date, by kind, every team's (for /metrics): every kind,
    0 when none is late."""
    rows = session.execute(
        select(StaffTask.kind, func.count())
        .where(StaffTask.done_at.is_(None), StaffTask.due_at < now)
        .group_by(StaffTask.kind)
    )
    found = {kind: int(count) for kind, count in rows}
    return {kind: found.get(kind, 0) for kind in TaskKind}


def last_staff_contact_clause(youth_id_column: Any, since: datetime) -> ColumnElement[bool]:
    """True for youths a person of the team reached since `since` (a task closed "joint·e"
    or "vu·e"): the watch counts that contact like a message in its frequency cap."""
    return (
        select(StaffTask.id)
        .where(
            StaffTask.youth_id == youth_id_column,
            StaffTask.outcome.in_(list(CONTACT_OUTCOMES)),
            StaffTask.done_at > since,
        )
        .exists()
    )


# --- Closing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Closed:
    task: StaffTask
    kept_open: bool  # an urgent alert stays open after a try that reached nobody


def close_task(
    session: Session,
    cipher: MultiFernet,
    task: StaffTask,
    *,
    by: StaffUser,
    outcome: str,
    note: str = "",
    now: datetime | None = None,
    ip_address: str | None = None,
) -> Closed:
    """Records the outcome once (a second close, even at the same instant, is refused) and
    its consequences for the youth and the watch."""
    now = now or utcnow()
    spec = KINDS[task.kind]
    try:
        chosen = TaskOutcome(outcome)
    except ValueError:
        chosen = None
    if chosen is None or chosen not in spec.outcomes:
        raise TaskError(gettext("Choisissez ce qui s’est passé dans la liste."))
    note = note.strip()
    if len(note) > 4000:
        raise TaskError(gettext("La note est trop longue (4 000 caractères au plus)."))
    if task.done_at is not None:
        raise TaskError(gettext("Cette tâche est déjà terminée."), status_code=409)
    if spec.urgent and chosen in KEEP_URGENT_OPEN:
        closing = _Closing(task, by, chosen, note, now, ip_address)
        return Closed(_record_unreached(session, cipher, closing), True)
    # One close wins, even when two people press the button at the same moment.
    closed = session.execute(
        update(StaffTask)
        .where(StaffTask.id == task.id, StaffTask.done_at.is_(None))
        .values(done_at=now, outcome=chosen, closed_by_id=by.id)
        .execution_options(synchronize_session=False)
    )
    if closed.rowcount != 1:  # type: ignore[attr-defined]
        raise TaskError(gettext("Cette tâche est déjà terminée."), status_code=409)
    session.refresh(task)
    closing = _Closing(task, by, chosen, note, now, ip_address)
    if note:
        task.note_id = _journal_outcome(session, cipher, closing)
    _apply_outcome(session, task, chosen, now)
    _audit_outcome(session, "task.closed", closing)
    return Closed(task, False)


@dataclass(frozen=True)
class _Closing:
    """What the journal and the audit log are told of an outcome: the task, who recorded
    what, their note, when and from where."""

    task: StaffTask
    by: StaffUser
    outcome: TaskOutcome
    note: str
    now: datetime
    ip_address: str | None


def _journal_outcome(session: Session, cipher: MultiFernet, closing: _Closing) -> uuid.UUID:
    """Writes "label — outcome : note" in the youth's journal (the note may be empty)."""
    task, note = closing.task, closing.note
    label = f"{kind_label(task.kind)} — {outcome_label(closing.outcome)}"
    line = label + (f" : {note}" if note else "")
    return journal.add_note(
        session, cipher, youth_id=task.youth_id, author=closing.by, text=line, now=closing.now
    ).id


def _audit_outcome(session: Session, event: str, closing: _Closing) -> None:
    task = closing.task
    audit.record(
        session,
        event,
        actor_staff_id=closing.by.id,
        youth_id=task.youth_id,
        object_type="staff_task",
        object_id=task.id,
        ip_address=closing.ip_address,
        detail={"kind": task.kind.value, "outcome": closing.outcome.value},
        now=closing.now,
    )


def _record_unreached(session: Session, cipher: MultiFernet, closing: _Closing) -> StaffTask:
    """Someone asked for help and nobody has spoken to them yet: the alert stays open, due
    at the end of the next working day, and the try goes in the journal (a wrong number is
    also flagged)."""
    task, outcome, now = closing.task, closing.outcome, closing.now
    session.execute(
        update(StaffTask)
        .where(StaffTask.id == task.id, StaffTask.done_at.is_(None))
        .values(due_at=end_of_next_working_day(now))
        .execution_options(synchronize_session=False)
    )
    session.refresh(task)
    _journal_outcome(session, cipher, closing)
    if outcome is TaskOutcome.WRONG_NUMBER:
        _apply_outcome(session, task, outcome, now)
    _audit_outcome(session, "task.call_unanswered", closing)
    return task


def _apply_outcome(session: Session, task: StaffTask, outcome: TaskOutcome, now: datetime) -> None:
    youth = session.get_one(Youth, task.youth_id)
    if outcome in CONTACT_OUTCOMES:
        # A person was in touch: the watch restarts from today and stays silent (automation
        # yields to people), and the contact is credited to the watch's step, if any.
        record_activity(
            session,
            youth,
            Activity.STAFF_CONTACT,
            now,
            outreach_attempt_id=task.outreach_attempt_id,
        )
    elif outcome is TaskOutcome.WRONG_NUMBER:
        report_phone_wrong(session, youth, now)


def close_done(
    session: Session,
    *,
    kinds: Iterable[TaskKind],
    by_id: uuid.UUID | None,
    now: datetime,
    youth_id: uuid.UUID | None = None,
    aid_request_id: uuid.UUID | None = None,
    keys: Iterable[str] | None = None,
) -> int:
    """Closes, as "fait", the open tasks the work was done for by other means: a decision
    taken on the request, an interview booked, a newer paper added (`keys`: only those
    tasks). Audited like every close. Returns how many."""
    conditions: list[ColumnElement[bool]] = [
        StaffTask.kind.in_(list(kinds)),
        StaffTask.done_at.is_(None),
    ]
    if keys is not None:
        conditions.append(StaffTask.key.in_(list(keys)))
    if aid_request_id is not None:
        conditions.append(StaffTask.aid_request_id == aid_request_id)
    if youth_id is not None:
        conditions.append(StaffTask.youth_id == youth_id)
    closed = session.execute(
        update(StaffTask)
        .where(*conditions)
        .values(done_at=now, outcome=TaskOutcome.DONE, closed_by_id=by_id)
        .returning(StaffTask.id, StaffTask.youth_id, StaffTask.kind)
        .execution_options(synchronize_session=False)
    ).all()
    for task_id, task_youth_id, kind in closed:
        audit.record(
            session,
            "task.closed",
            actor_staff_id=by_id,
            youth_id=task_youth_id,
            object_type="staff_task",
            object_id=task_id,
            detail={"kind": kind.value, "outcome": TaskOutcome.DONE.value, "by_the_work": True},
            now=now,
        )
    return len(closed)


# --- Moving tasks -------------------------------------------------------------------------


@dataclass(frozen=True)
class Escalation:
    """A task the cycle moves: overdue by the policy's delay (to the team's supervisor), or
    held by someone other than who should hold it now (nobody, someone away or gone, the
    supervisor once the référent is back): to that person."""

    task_id: uuid.UUID
    youth_id: uuid.UUID
    youth_ref: str  # the ASE reference, for the operator's output
    kind: TaskKind
    from_id: uuid.UUID | None
    to_id: uuid.UUID
    overdue: bool = True


@dataclass(frozen=True, slots=True)
class _OpenTask:
    """What plan_escalations needs of an open task: a light row, not a StaffTask."""

    id: uuid.UUID
    youth_id: uuid.UUID
    kind: TaskKind
    due_at: datetime
    assignee_id: uuid.UUID | None
    youth_ref: str
    referent_id: uuid.UUID | None  # the youth's current référent


def _open_unescalated(session: Session, now: datetime, after_days: int) -> list[_OpenTask]:
    """Open tasks not escalated yet that may have to move, each with the youth's ASE
    reference and current référent, in one query of columns. Left out in SQL: a task not
    overdue and held by the youth's référent while that référent can hold tasks, which
    plan_escalations would leave where it is — after a first cycle that is nearly all of
    them (100,000 youths: 68,000 tasks read, 2 s and 80 MB, for none to move)."""
    current = and_(CaseloadAssignment.youth_id == StaffTask.youth_id, assignments.is_current())
    able = [
        person.id
        for person in session.scalars(select(StaffUser).where(StaffUser.is_active.is_(True)))
        if can_hold_tasks(person, now)
    ]
    # Never NULL (NOT NULL would drop the row): the IS NOT NULLs make it false instead.
    settled = and_(
        StaffTask.assignee_id.is_not(None),
        CaseloadAssignment.referent_id.is_not(None),
        StaffTask.due_at > now - timedelta(days=after_days),
        StaffTask.assignee_id == CaseloadAssignment.referent_id,
        StaffTask.assignee_id.in_(able),
    )
    rows = session.connection().execute(
        select(
            StaffTask.id,
            StaffTask.youth_id,
            StaffTask.kind,
            StaffTask.due_at,
            StaffTask.assignee_id,
            Youth.ase_ref,
            CaseloadAssignment.referent_id,
        )
        .join(Youth, Youth.id == StaffTask.youth_id)
        .outerjoin(CaseloadAssignment, current)
        .where(StaffTask.done_at.is_(None), StaffTask.escalated_at.is_(None), ~settled)
        .order_by(StaffTask.due_at, StaffTask.id)
    )
    return [_OpenTask(*row) for row in rows]


def _needs_moving(holder: StaffUser | None, expected: StaffUser | None) -> bool:
    """A task is moved to whoever should hold it now, except from one supervisor of the
    team to another (no pointless shuffling)."""
    if holder is None:
        return True
    if expected is None or holder.id == expected.id:
        return False
    shuffle = (
        holder.role is StaffRole.SUPERVISOR
        and holder.is_active
        and expected.role is StaffRole.SUPERVISOR
    )
    return not shuffle


def plan_escalations(session: Session, now: datetime, after_days: int) -> list[Escalation]:
    """Where each task the cycle moves would go: overdue by `after_days` → the team's
    supervisor; held by nobody, by someone who can no longer hold it, or by the supervisor
    while the référent was away and is back → the person who should hold it now. Deciding
    writes nothing, so a dry run lists the same moves. A fixed number of queries, plus one
    per team and per youth without a référent."""
    candidates = _open_unescalated(session, now, after_days)
    people = assignments.staff_by_id(
        session,
        {task.assignee_id for task in candidates if task.assignee_id is not None}
        | {task.referent_id for task in candidates if task.referent_id is not None},
    )
    supervisors: dict[uuid.UUID | None, StaffUser | None] = {}

    def supervisor_of(team_id: uuid.UUID | None) -> StaffUser | None:
        if team_id not in supervisors:
            supervisors[team_id] = assignments.team_supervisor(session, team_id, now=now)
        return supervisors[team_id]

    planned = []
    for task in candidates:
        holder = people[task.assignee_id] if task.assignee_id is not None else None
        expected = holder_for(
            people[task.referent_id] if task.referent_id is not None else None,
            supervisor_of=supervisor_of,
            last_team_id=partial(assignments.last_team_id, session, task.youth_id),
            now=now,
        )
        overdue = task.due_at <= now - timedelta(days=after_days)
        if overdue and holder is not None:
            if holder.role is StaffRole.SUPERVISOR:
                continue  # late and with a supervisor already: it stays there
            target = supervisor_of(holder.team_id)
        elif _needs_moving(holder, expected):
            target, overdue = expected, False
        else:
            continue
        if target is None or (holder is not None and target.id == holder.id):
            continue
        from_id = holder.id if holder else None
        planned.append(
            Escalation(
                task.id, task.youth_id, task.youth_ref, task.kind, from_id, target.id, overdue
            )
        )
    return planned


def escalate(
    session: Session, escalation: Escalation, *, now: datetime, base_url: str
) -> StaffTask | None:
    """Moves one task as planned (audited); None when it was closed or moved meanwhile."""
    # Moved only if nobody moved it meanwhile (another scheduler, a person).
    same_holder = (
        StaffTask.assignee_id.is_(None)
        if escalation.from_id is None
        else StaffTask.assignee_id == escalation.from_id
    )
    unchanged = and_(StaffTask.escalated_at.is_(None), same_holder)
    moved = session.execute(
        update(StaffTask)
        .where(StaffTask.id == escalation.task_id, StaffTask.done_at.is_(None), unchanged)
        .values(
            assignee_id=escalation.to_id,
            escalated_at=now if escalation.overdue else None,
        )
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        return None
    task = session.get_one(StaffTask, escalation.task_id)
    session.refresh(task)
    audit.record(
        session,
        "task.escalated" if escalation.overdue else "task.reassigned",
        youth_id=task.youth_id,
        object_type="staff_task",
        object_id=task.id,
        detail={
            "kind": task.kind.value,
            "from": str(escalation.from_id) if escalation.from_id else None,
            "to": str(escalation.to_id),
        },
        now=now,
    )
    if KINDS[task.kind].urgent:
        holder = session.get_one(StaffUser, escalation.to_id)
        previous = session.get(StaffUser, escalation.from_id) if escalation.from_id else None
        _tell_of_urgent(session, task, holder, base_url=base_url, now=now, instead_of=previous)
    return task


def release(
    session: Session,
    person: StaffUser,
    *,
    now: datetime,
    by_id: uuid.UUID | None,
    base_url: str | None = None,
) -> int:
    """Someone who can no longer hold tasks (disabled, another role, away): each of their
    open tasks goes at once to whoever should hold it now (nobody, if no one can: the cycle
    assigns it as soon as someone can). Returns how many moved."""
    moved = 0
    for task in session.scalars(
        select(StaffTask).where(StaffTask.assignee_id == person.id, StaffTask.done_at.is_(None))
    ).all():
        target = assignee_for(session, task.youth_id, now)
        if target is not None and target.id == person.id:
            continue
        task.assignee_id = target.id if target else None
        moved += 1
        if KINDS[task.kind].urgent and base_url is not None:
            _tell_of_urgent(session, task, target, base_url=base_url, now=now, instead_of=person)
    if moved:
        audit.record(
            session,
            "task.released",
            actor_staff_id=by_id,
            object_type="staff_user",
            object_id=person.id,
            detail={"count": moved},
            now=now,
        )
    session.flush()
    return moved


def follow_reassignment(
    session: Session,
    youth_id: uuid.UUID,
    *,
    now: datetime,
    by_id: uuid.UUID | None,
    base_url: str | None = None,
) -> int:
    """After a youth changes référent, their open tasks go to the person who now follows
    them (or, if absent, the supervisor); an urgent alert emails them. Returns how many."""
    assignee = assignee_for(session, youth_id, now)
    if assignee is None:
        return 0
    moving = session.scalars(
        select(StaffTask).where(
            StaffTask.youth_id == youth_id,
            StaffTask.done_at.is_(None),
            or_(StaffTask.assignee_id.is_(None), StaffTask.assignee_id != assignee.id),
        )
    ).all()
    for task in moving:
        task.assignee_id = assignee.id
        if KINDS[task.kind].urgent and base_url is not None:
            _tell_of_urgent(session, task, assignee, base_url=base_url, now=now)
    if moving:
        session.flush()
        audit.record(
            session,
            "task.reassigned",
            actor_staff_id=by_id,
            youth_id=youth_id,
            detail={"to": str(assignee.id), "count": len(moving)},
            now=now,
        )
    return len(moving)


class AbsenceError(TaskError):
    pass


def set_absence(
    session: Session,
    person: StaffUser,
    *,
    until: date | None,
    by: StaffUser,
    now: datetime | None = None,
    base_url: str | None = None,
) -> int:
    """Marks a référent absent until a date (None: back). While absent, new tasks for their
    youths go to the supervisor, and their open tasks move there now. Returns how many."""
    now = now or utcnow()
    today = paris_day(now)
    if until is not None and not today < until <= today + timedelta(days=366):
        raise AbsenceError(gettext("L’absence finit après aujourd’hui et dans un an au plus."))
    if by.id != person.id and not (
        by.role is StaffRole.SUPERVISOR and by.team_id is not None and by.team_id == person.team_id
    ):
        raise AbsenceError(
            gettext("Seul le superviseur de l’équipe peut déclarer cette absence."), 403
        )
    person.absent_until = (
        datetime.combine(until + timedelta(days=1), time(0), tzinfo=PARIS) if until else None
    )
    audit.record(
        session,
        "staff.absence",
        actor_staff_id=by.id,
        object_type="staff_user",
        object_id=person.id,
        detail={"until": until.isoformat() if until else None},
        now=now,
    )
    if until is None or person.role is StaffRole.SUPERVISOR:
        return 0  # back: the next cycle gives their youths' tasks back to them
    return release(session, person, now=now, by_id=by.id, base_url=base_url)
