"""Youth files anonymised once the law no longer lets the platform keep them (PRODUCT.md
"Retention": kept while the youth is followed, until 25, and 2 years after the last
contact; then anonymised for statistics).

A file is DUE when both:
- the youth has turned 25 (support ends at the 25th birthday, outreach's `_under_25`);
- their last contact (`contact_instants`, below) is more than 2 years ago.

A due file is PROTECTED, never touched and counted by reason, while it has
- a request still open: filed and not decided (déposée, en instruction, pièces
  manquantes, à confirmer) or an allocation to renew (à renouveler); a draft never filed
  does not protect;
- a staff task still open (whatever its kind: a person still has something to do);
- an appointment booked and still to come.

Anonymising keeps what statistics count (the youth row and its id, language, housing and
employment situation, ASE exit date, the requests' kinds, statuses, dates and amounts, the
appointments' kinds and dates, the outreach contacts, the tasks' kinds and dates) and erases
whatever identifies the person (`_erase`). It happens once per file: the youth row is claimed
by a conditional UPDATE (… WHERE anonymised_at IS NULL), so two schedulers running the job at
once anonymise each file once, and only the one whose UPDATE matched writes its audit entry.

Dry run first: the nightly job always computes the counts, and anonymises only once an admin
has switched `AUTO_SETTING_KEY` on (off by default). The last run's figures are kept for the
admin page (`LastRun`).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    and_,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.aid_requests.models import AidRequest, AidRequestEvent, RequestStatus
from paris_avenir.appointments.models import Appointment, AppointmentStatus
from paris_avenir.audit import service as audit
from paris_avenir.auth.models import LoginLink, OidcFlow, SignInAttempt, UserSession
from paris_avenir.db import utcnow
from paris_avenir.documents.models import Document
from paris_avenir.documents.storage import DocumentStore
from paris_avenir.kit import settings_store
from paris_avenir.kit.dates import paris_day, years_before
from paris_avenir.messaging import outbox
from paris_avenir.messaging.models import Message, MessageThread, OutboxMessage, OutboxStatus
from paris_avenir.messaging.outbox import ERASED
from paris_avenir.retention.service import PurgeReport, purge
from paris_avenir.staff import tasks
from paris_avenir.staff.models import CaseloadAssignment, StaffTask
from paris_avenir.youths.models import ContactVerification, FollowUpNote, Youth

logger = logging.getLogger(__name__)

KEPT_AFTER_LAST_CONTACT_YEARS = 2
FOLLOWED_UNTIL_AGE = 25
AUTO_SETTING_KEY = "retention_files_automatic"
LAST_RUN_KEY = "retention_files_last_run"

# Filed and not decided, or an allocation to renew: someone still has to act on it.
OPEN_REQUEST_STATUSES = (
    RequestStatus.SUBMITTED,
    RequestStatus.UNDER_REVIEW,
    RequestStatus.MISSING_DOCUMENTS,
    RequestStatus.TO_CONFIRM,
    RequestStatus.RENEWAL_DUE,
)


class Protection:
    """Why a due file is kept (the keys of `RetentionReport.protected`)."""

    OPEN_REQUEST = "open_request"
    OPEN_TASK = "open_task"
    UPCOMING_APPOINTMENT = "upcoming_appointment"

    ALL = (OPEN_REQUEST, OPEN_TASK, UPCOMING_APPOINTMENT)


# --- Last contact -----------------------------------------------------------------------


def contact_instants(youth_id: Any) -> list[SQLColumnExpression[Any]]:
    """Every instant that counts as a contact with the youth, as SQL (correlated on
    `youth_id`); the last contact is the latest of them. The one definition of "last
    contact" of the retention rule:

    - `Youth.last_activity_at`: what the youth did, or a person of the team did with them,
      as youths.activity.record_activity() records it (its one writer): sign-in, a message
      to the référent, a booking, an attended appointment, a request started, filled in,
      submitted or completed, a document added, an answer to "Comment ça va ?", a contact
      detail changed or confirmed, a person of the team who reached them (a task closed
      "joint·e");
    - the file's creation (its ASE import) and the account's activation;
    - a note in the follow-up journal (not recorded as activity);
    - an appointment held (ATTENDED), from its start (also recorded as activity, kept here
      so that an appointment marked held later still counts);
    - any event of one of their requests, the team's decisions included (a decision is
      not recorded as the youth's activity).

    What the watch sends (check-ins, reminders) without an answer does NOT count: it never
    touches these instants, else no file would ever expire. An answer does (check-in,
    sign-in), through last_activity_at."""
    return [
        Youth.last_activity_at,
        Youth.activated_at,
        Youth.created_at,
        select(func.max(FollowUpNote.written_at))
        .where(FollowUpNote.youth_id == youth_id)
        .scalar_subquery(),
        select(func.max(Appointment.starts_at))
        .where(Appointment.youth_id == youth_id, Appointment.status == AppointmentStatus.ATTENDED)
        .scalar_subquery(),
        select(func.max(AidRequestEvent.occurred_at))
        .join(AidRequest, AidRequest.id == AidRequestEvent.aid_request_id)
        .where(AidRequest.youth_id == youth_id)
        .scalar_subquery(),
    ]


def no_contact_since(cutoff: datetime) -> ColumnElement[bool]:
    """The youth's last contact (contact_instants) is before `cutoff`."""
    return and_(
        *(or_(instant.is_(None), instant < cutoff) for instant in contact_instants(Youth.id))
    )


def last_contact(session: Session, youth_id: uuid.UUID) -> datetime:
    """The youth's last contact (contact_instants), for reading and tests."""
    row = session.execute(select(*contact_instants(Youth.id)).where(Youth.id == youth_id)).one()
    return max(_aware(value) for value in row if value is not None)


def _aware(value: datetime) -> datetime:
    """MAX() over a UTC column comes back naive on SQLite."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def contact_cutoff(now: datetime) -> datetime:
    """2 calendar years before `now` (29 February: the 28th)."""
    day = years_before(now.date(), KEPT_AFTER_LAST_CONTACT_YEARS)
    return now.replace(year=day.year, month=day.month, day=day.day)


def turned_25(now: datetime) -> ColumnElement[bool]:
    """The complement of outreach's `_under_25`: the 25th birthday is today or before."""
    return Youth.birth_date <= years_before(paris_day(now), FOLLOWED_UNTIL_AGE)


# --- The run ----------------------------------------------------------------------------


@dataclass
class RetentionReport:
    dry_run: bool
    # Past 25 and quiet for more than 2 years, not anonymised yet (protected ones included).
    due: int = 0
    anonymised: int = 0
    # Due files kept, by reason (a file with two reasons counts under both).
    protected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(Protection.ALL, 0))
    protected_files: int = 0

    @property
    def to_anonymise(self) -> int:
        """Due and not protected: what a real run anonymises (the dry run's figure)."""
        return self.due - self.protected_files


def _due_files(session: Session, now: datetime) -> list[tuple[uuid.UUID, date, bool, bool, bool]]:
    open_request = exists().where(
        AidRequest.youth_id == Youth.id, AidRequest.status.in_(OPEN_REQUEST_STATUSES)
    )
    open_task = exists().where(StaffTask.youth_id == Youth.id, StaffTask.done_at.is_(None))
    upcoming = exists().where(
        Appointment.youth_id == Youth.id,
        Appointment.status == AppointmentStatus.BOOKED,
        Appointment.starts_at > now,
    )
    rows = session.execute(
        select(Youth.id, Youth.birth_date, open_request, open_task, upcoming)
        .where(
            Youth.anonymised_at.is_(None),
            turned_25(now),
            no_contact_since(contact_cutoff(now)),
        )
        .order_by(Youth.id)  # one order for every run: concurrent runs never deadlock
    ).all()
    return [(row[0], row[1], bool(row[2]), bool(row[3]), bool(row[4])) for row in rows]


def anonymise_due(
    session: Session,
    *,
    store: DocumentStore | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
) -> RetentionReport:
    """Counts the due files and, unless `dry_run`, anonymises those not protected, in the
    caller's transaction (its commit removes the documents' files). `store` is needed for
    a real run (the documents' files)."""
    now = now or utcnow()
    report = RetentionReport(dry_run=dry_run)
    for youth_id, birth_date, open_request, open_task, upcoming in _due_files(session, now):
        report.due += 1
        reasons = [
            reason
            for reason, applies in zip(
                Protection.ALL, (open_request, open_task, upcoming), strict=True
            )
            if applies
        ]
        for reason in reasons:
            report.protected[reason] += 1
        if reasons:
            report.protected_files += 1
            continue
        if dry_run:
            continue
        if store is None:
            raise ValueError("anonymise_due needs the document store for a real run")
        if _anonymise(session, store, youth_id, birth_date, now):
            report.anonymised += 1
    return report


def _anonymise(
    session: Session, store: DocumentStore, youth_id: uuid.UUID, birth_date: date, now: datetime
) -> bool:
    """Claims the file (the conditional UPDATE: False when another run has it), then
    erases the rest. Exactly once per file, whoever runs at the same time."""
    claimed = session.execute(
        update(Youth)
        .where(Youth.id == youth_id, Youth.anonymised_at.is_(None))
        .values(
            anonymised_at=now,
            ase_ref=f"ANON-{uuid.uuid4().hex}",  # unique, and a later ASE import is a new file
            first_name="Anonyme",
            last_name="Anonyme",
            # The year only: still past 25, so the watch (under 25s only) never looks again.
            birth_date=date(birth_date.year, 1, 1),
            phone=None,
            email=None,
            franceconnect_subject=None,
            monthly_income_cents=None,
            has_family_support=None,
            phone_unreachable_at=None,
            phone_reported_wrong_at=None,
            email_unreachable_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    if int(getattr(claimed, "rowcount", 0) or 0) != 1:
        return False
    _erase(session, store, youth_id, now)
    audit.record(
        session,
        "youth.anonymised",
        youth_id=youth_id,
        object_type="youth",
        object_id=youth_id,
        detail={"rule": "2_years_after_last_contact"},
        now=now,
    )
    return True


def _erase(session: Session, store: DocumentStore, youth_id: uuid.UUID, now: datetime) -> None:
    """Everything of the file that identifies the person, once its row is claimed."""
    plain: dict[str, Any] = {"synchronize_session": False}
    # Signed in nowhere, reached nowhere: sessions, links, codes, pending contact changes.
    for model in (UserSession, LoginLink, OidcFlow, SignInAttempt, ContactVerification):
        session.execute(delete(model).where(model.youth_id == youth_id).execution_options(**plain))
    # The follow-up journal (a task's closing note loses its link: ON DELETE SET NULL).
    session.execute(delete(FollowUpNote).where(FollowUpNote.youth_id == youth_id))
    # Documents: rows now (links to requests and messages go with them), files once
    # committed (a failed commit keeps both).
    keys = list(session.scalars(select(Document.storage_key).where(Document.youth_id == youth_id)))
    session.execute(
        delete(Document).where(Document.youth_id == youth_id).execution_options(**plain)
    )
    for key in keys:
        store.delete_after_commit(session, key)
    # Free texts, and the attestations' codes (/verifier no longer confirms a grant of an
    # anonymised file); the rows stay for the statistics.
    session.execute(
        update(AidRequest)
        .where(AidRequest.youth_id == youth_id)
        .values(form_data={}, decision_reason=None, attestation_code=None)
        .execution_options(**plain)
    )
    session.execute(
        update(AidRequestEvent)
        .where(
            AidRequestEvent.aid_request_id.in_(
                select(AidRequest.id).where(AidRequest.youth_id == youth_id)
            )
        )
        .values(reason=None)
        .execution_options(**plain)
    )
    session.execute(
        update(Appointment)
        .where(Appointment.youth_id == youth_id)
        .values(note_for_youth=None, address=None)
        .execution_options(**plain)
    )
    tasks.forget_details(session, youth_id)
    threads = select(MessageThread.id).where(MessageThread.youth_id == youth_id)
    session.execute(
        update(Message)
        .where(Message.thread_id.in_(threads))
        .values(body=ERASED)
        .execution_options(**plain)
    )
    session.execute(
        update(MessageThread)
        .where(MessageThread.youth_id == youth_id)
        .values(subject=ERASED)
        .execution_options(**plain)
    )
    # Nobody follows the file any more: the référents' counts drop it; the history's
    # free-text reason goes.
    session.execute(
        update(CaseloadAssignment)
        .where(CaseloadAssignment.youth_id == youth_id)
        .values(reason=None)
        .execution_options(**plain)
    )
    session.execute(
        update(CaseloadAssignment)
        .where(CaseloadAssignment.youth_id == youth_id, CaseloadAssignment.ended_at.is_(None))
        .values(ended_at=now)
        .execution_options(**plain)
    )
    # Outbox and notifications: what has not left never leaves; addresses and texts go,
    # the rows stay (status history, exactly-once keys).
    queued = list(
        session.scalars(
            select(OutboxMessage.idempotency_key).where(
                OutboxMessage.youth_id == youth_id, OutboxMessage.status == OutboxStatus.QUEUED
            )
        )
    )
    if queued:
        outbox.cancel_queued(session, keys=queued, now=now, detail="cancelled: file anonymised")
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.youth_id == youth_id)
        .values(
            **outbox.ERASED_CONTENT,
            recipient=ERASED,
            attachment_filename=None,
            last_error=None,
            content_erased_at=func.coalesce(OutboxMessage.content_erased_at, now),
        )
        .execution_options(**plain)
    )
    session.expire_all()  # the ORM's copies of these rows are stale


# --- Setting and last run ---------------------------------------------------------------


def automatic(session: Session) -> bool:
    """Anonymise for real at night (an admin's choice); off by default: a dry run."""
    return bool(settings_store.load(session, AUTO_SETTING_KEY))


def set_automatic(
    session: Session, enabled: bool, *, by_id: uuid.UUID | None, now: datetime | None = None
) -> None:
    settings_store.save(session, AUTO_SETTING_KEY, bool(enabled), by_id=by_id, now=now)


@dataclass(frozen=True)
class LastRun:
    finished_at: datetime
    dry_run: bool
    due: int
    to_anonymise: int
    anonymised: int
    protected: dict[str, int]
    audit_purged: int


def record_last_run(
    session: Session, report: RetentionReport, *, audit_purged: int, now: datetime
) -> LastRun:
    run = LastRun(
        finished_at=now,
        dry_run=report.dry_run,
        due=report.due,
        to_anonymise=report.to_anonymise,
        anonymised=report.anonymised,
        protected=dict(report.protected),
        audit_purged=audit_purged,
    )
    value = asdict(run) | {"finished_at": now.isoformat()}
    settings_store.save(session, LAST_RUN_KEY, value, by_id=None, now=now)
    return run


def last_run(session: Session) -> LastRun | None:
    stored = settings_store.load(session, LAST_RUN_KEY)
    if not isinstance(stored, dict):
        return None
    try:
        return LastRun(
            finished_at=datetime.fromisoformat(str(stored["finished_at"])),
            dry_run=bool(stored["dry_run"]),
            due=int(stored["due"]),
            to_anonymise=int(stored["to_anonymise"]),
            anonymised=int(stored["anonymised"]),
            protected={key: int(stored["protected"].get(key, 0)) for key in Protection.ALL},
            audit_purged=int(stored["audit_purged"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def describe(report: RetentionReport) -> str:
    """Counts only, for the log and the CLI: never a name, a reference or an id."""
    protected = ", ".join(f"{reason} {count}" for reason, count in report.protected.items())
    return (
        f"{'dry run' if report.dry_run else 'run'}: {report.due} due, "
        f"{report.to_anonymise} to anonymise, {report.anonymised} anonymised, "
        f"protected {report.protected_files} ({protected})"
    )


def run_files_step(
    session: Session, store: DocumentStore, *, audit_purged: int, now: datetime | None = None
) -> RetentionReport:
    """The nightly job's file step: counts always, anonymises only when the admin switched
    it on, records the run for the admin page, logs the counts."""
    now = now or utcnow()
    report = anonymise_due(session, store=store, now=now, dry_run=not automatic(session))
    record_last_run(session, report, audit_purged=audit_purged, now=now)
    logger.info("retention files: %s; audit entries purged %d", describe(report), audit_purged)
    return report


def nightly(
    session_factory: sessionmaker[Session], store: DocumentStore, *, now: datetime | None = None
) -> tuple[PurgeReport, RetentionReport]:
    """The whole nightly retention: what has served its purpose (retention.service, the
    audit entries past the admin's period among them), then the youth files, each in a
    transaction of its own (a failing file step keeps the purge)."""
    now = now or utcnow()
    with session_factory.begin() as session:
        purged = purge(session, now=now)
    logger.info("retention purge: %s", purged)
    with session_factory.begin() as session:
        report = run_files_step(session, store, audit_purged=purged.audit_events, now=now)
    return purged, report
