"""Youth files anonymised past 25 and 2 years after the last contact (PRODUCT.md
"Retention"), never while something is open; a dry run until an admin switches it on."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.aid_requests.models import AidCode, AidRequest, AidRequestEvent, RequestStatus
from paris_avenir.appointments.models import Appointment, AppointmentStatus
from paris_avenir.audit.models import AuditEvent
from paris_avenir.auth import links, sessions
from paris_avenir.auth.models import AuthMethod, LoginLink, UserSession
from paris_avenir.config import Settings
from paris_avenir.documents.models import Document, DocumentKind
from paris_avenir.documents.storage import DocumentStore
from paris_avenir.messaging import service as messaging
from paris_avenir.messaging.models import Message, MessageThread, OutboxMessage, OutboxStatus
from paris_avenir.messaging.outbox import ERASED
from paris_avenir.outreach.engine import run_cycle
from paris_avenir.retention import files
from paris_avenir.retention.files import Protection, anonymise_due
from paris_avenir.staff import journal
from paris_avenir.staff.models import CaseloadAssignment, StaffRole, StaffUser, TaskKind, Team
from paris_avenir.stats import service as stats
from paris_avenir.youths.models import (
    Channel,
    ContactVerification,
    FollowUpNote,
    HousingSituation,
    Youth,
)
from tests import factories
from tests.conftest import FROZEN_AT
from tests.factories import (
    assign,
    create_aid_request,
    create_appointment,
    create_document,
    create_outbox_message,
    create_staff,
    create_task,
    create_youth,
)
from tests.helpers import post_form, run_cli, sign_in_as

NOW = FROZEN_AT  # Wednesday 2 December 2026, 11:00 in Paris
TWO_YEARS_AGO = datetime(2024, 12, 2, 10, 0, tzinfo=UTC)
OVER_25 = date(2000, 6, 14)  # 26 on NOW
SECRET = "test-secret-key-for-retention-files-0123456789"


def quiet_since(session: Session, at: datetime, **overrides: Any) -> Youth:
    """A youth whose every contact (import, activation, activity) was at `at`."""
    values: dict[str, Any] = {
        "birth_date": OVER_25,
        "created_at": at,
        "activated_at": at,
        "last_activity_at": at,
    }
    values.update(overrides)
    return create_youth(session, **values)


def anonymised(session: Session, youth: Youth) -> bool:
    session.expire_all()
    return session.get_one(Youth, youth.id).anonymised_at is not None


def store_of(app: FastAPI) -> DocumentStore:
    store: DocumentStore = app.state.document_store
    return store


def test_two_years_minus_a_day_is_kept_two_years_plus_a_day_anonymised(
    app: FastAPI, session: Session
) -> None:
    kept = quiet_since(session, TWO_YEARS_AGO + timedelta(days=1))
    gone = quiet_since(session, TWO_YEARS_AGO - timedelta(days=1))
    under_25 = quiet_since(
        session, TWO_YEARS_AGO - timedelta(days=400), birth_date=date(2002, 1, 1)
    )
    assert files.last_contact(session, gone.id) == TWO_YEARS_AGO - timedelta(days=1)

    report = anonymise_due(session, store=store_of(app), now=NOW)
    session.commit()

    assert (report.due, report.anonymised, report.protected_files) == (1, 1, 0)
    assert anonymised(session, gone)
    assert not anonymised(session, kept) and not anonymised(session, under_25)
    # Once is enough: the next night finds nothing more.
    again = anonymise_due(session, store=store_of(app), now=NOW + timedelta(days=1))
    assert (again.due, again.anonymised) == (0, 0)


def test_a_note_an_appointment_held_or_a_decision_is_a_contact_an_unanswered_check_in_is_not(
    app: FastAPI, session: Session
) -> None:
    old = TWO_YEARS_AGO - timedelta(days=200)
    recent = TWO_YEARS_AGO + timedelta(days=30)
    referent = create_staff(session)
    noted = quiet_since(session, old)
    journal.add_note(
        session, app.state.cipher, youth_id=noted.id, author=referent, text="Vu.", now=recent
    )
    held = quiet_since(session, old)
    create_appointment(session, held, referent, recent, status=AppointmentStatus.ATTENDED)
    decided = quiet_since(session, old)
    request = create_aid_request(session, decided, status=RequestStatus.REFUSED)
    session.add(
        AidRequestEvent(
            aid_request_id=request.id,
            from_status=RequestStatus.UNDER_REVIEW,
            to_status=RequestStatus.REFUSED,
            occurred_at=recent,
            actor_staff_id=referent.id,
        )
    )
    unanswered = quiet_since(session, old)
    factories.create_check_in(session, unanswered, at=recent)  # the watch wrote; no answer
    session.flush()

    report = anonymise_due(session, store=store_of(app), now=NOW)

    assert report.anonymised == 1 and anonymised(session, unanswered)
    assert files.last_contact(session, noted.id) == recent
    assert not any(anonymised(session, youth) for youth in (noted, held, decided))


def test_an_open_request_task_or_upcoming_appointment_protects_the_file(
    app: FastAPI, session: Session
) -> None:
    old = TWO_YEARS_AGO - timedelta(days=30)
    referent = create_staff(session)
    waiting = quiet_since(session, old)
    create_aid_request(session, waiting, status=RequestStatus.UNDER_REVIEW, submitted_at=old)
    tasked = quiet_since(session, old)
    assign(session, tasked, referent)
    create_task(session, tasked, TaskKind.DELETION_REQUEST, now=old)
    booked = quiet_since(session, old)
    create_appointment(session, booked, referent, NOW + timedelta(days=6))
    # Neither a draft never filed nor a decided request protects anything.
    drafted = quiet_since(session, old)
    create_aid_request(session, drafted, status=RequestStatus.DRAFT)
    refused = quiet_since(session, old)
    create_aid_request(session, refused, status=RequestStatus.REFUSED)
    session.flush()

    report = anonymise_due(session, store=store_of(app), now=NOW)

    assert report.protected == {
        Protection.OPEN_REQUEST: 1,
        Protection.OPEN_TASK: 1,
        Protection.UPCOMING_APPOINTMENT: 1,
    }
    assert (report.due, report.protected_files, report.anonymised) == (5, 3, 2)
    assert not any(anonymised(session, youth) for youth in (waiting, tasked, booked))
    assert anonymised(session, drafted) and anonymised(session, refused)


def test_a_dry_run_counts_and_changes_nothing(app: FastAPI, session: Session) -> None:
    due = [quiet_since(session, TWO_YEARS_AGO - timedelta(days=10 + n)) for n in range(3)]
    create_aid_request(session, due[0], status=RequestStatus.SUBMITTED)
    session.flush()

    report = anonymise_due(session, now=NOW, dry_run=True)

    assert (report.due, report.protected_files, report.to_anonymise, report.anonymised) == (
        3,
        1,
        2,
        0,
    )
    session.expire_all()
    assert all(session.get_one(Youth, youth.id).anonymised_at is None for youth in due)
    assert session.get_one(Youth, due[1].id).first_name == "Camille"
    assert session.scalar(select(func.count()).where(AuditEvent.action == "youth.anonymised")) == 0


def test_an_anonymised_file_is_no_longer_counted_among_the_quiet_youths(
    app: FastAPI, session: Session
) -> None:
    # THRESHOLD + 1 quiet files, so that the count is shown (fewer than THRESHOLD is hidden).
    for n in range(stats.THRESHOLD + 1):
        quiet_since(session, TWO_YEARS_AGO - timedelta(days=10 + n))
    session.flush()
    assert stats.compute(session, now=NOW).quiet_youths.value == stats.THRESHOLD + 1

    report = anonymise_due(session, store=store_of(app), now=NOW)

    assert report.anonymised == stats.THRESHOLD + 1
    after = stats.compute(session, now=NOW)
    assert (after.quiet_youths.value, after.active_youths.value) == (None, None)


def test_nothing_identifying_remains_and_the_statistics_still_count(
    app: FastAPI, session: Session
) -> None:
    old = TWO_YEARS_AGO - timedelta(days=100)
    referent = create_staff(session)
    youth = quiet_since(
        session,
        old,
        first_name="Zabiullah",
        last_name="Safi",
        phone="+33639981777",
        email="zabi.safi@example.org",
        franceconnect_subject="fc-subject-zabi",
        ase_ref="ASE-77001",
        monthly_income_cents=65000,
        has_family_support=False,
        housing_situation=HousingSituation.TEMPORARY,
    )
    assign(session, youth, referent, reason="Arrivée dans le 19e")
    journal.add_note(
        session, app.state.cipher, youth_id=youth.id, author=referent, text="Secret.", now=old
    )
    thread = messaging.general_thread(session, youth.id)
    messaging.post_message(session, thread, body="Mon adresse : 3 rue X", author_staff_id=None)
    document_key = create_document(session, store_of(app), youth, DocumentKind.IDENTITY).storage_key
    for refused in range(stats.THRESHOLD):
        create_aid_request(
            session,
            youth,
            aid_code=AidCode.NAVIGO,
            status=RequestStatus.REFUSED,
            form_data={"loyer": "450"},
            decision_reason="Revenus de 650 € trop élevés",
            submitted_at=old - timedelta(days=refused + 10),
            decided_at=old - timedelta(days=refused),
        )
    create_appointment(
        session, youth, referent, old, status=AppointmentStatus.ATTENDED, note_for_youth="Code 12"
    )
    session.add(
        ContactVerification(
            youth_id=youth.id,
            channel=Channel.EMAIL,
            new_value="nouveau@example.org",
            code_hash="0" * 64,
            expires_at=old,
        )
    )
    sessions.start_session(session, youth_id=youth.id, method=AuthMethod.CODE, now=old)
    links.create_login_link(session, youth.id, purpose="activation", base_url="http://t", now=old)
    queued = create_outbox_message(session, youth, body_text="Bonjour Zabiullah")
    sent = create_outbox_message(
        session, youth, body_text="Bonjour Zabiullah", status=OutboxStatus.SENT
    )
    other = create_youth(session, first_name="Reste")  # someone else's file stays whole
    session.commit()
    # Messages and requests were written "now": put them back with the rest of the file.
    for message in session.scalars(select(Message)):
        message.sent_at = old
    session.commit()
    # The requests were counted before; they still are after.
    before = stats.compute(session, now=NOW)

    assert store_of(app).exists(document_key)
    report = anonymise_due(session, store=store_of(app), now=NOW)
    session.commit()
    session.expire_all()

    assert report.anonymised == 1
    row = session.get_one(Youth, youth.id)
    assert (row.first_name, row.last_name) == ("Anonyme", "Anonyme")
    assert (row.phone, row.email, row.franceconnect_subject) == (None, None, None)
    # A random reference: its hex digits may happen to hold "77001", the old one may not remain.
    assert re.fullmatch(r"ANON-[0-9a-f]{32}", row.ase_ref) and "ASE-77001" not in row.ase_ref
    assert row.birth_date == date(2000, 1, 1)  # the year only: still past 25
    assert (row.monthly_income_cents, row.has_family_support) == (None, None)
    # What the statistics read stays.
    assert row.housing_situation is HousingSituation.TEMPORARY and row.language == "fr"
    assert row.ase_exit_date == date(2023, 3, 14)
    assert session.scalars(select(FollowUpNote)).all() == []
    assert session.scalars(select(ContactVerification)).all() == []
    assert session.scalars(select(UserSession).where(UserSession.youth_id == youth.id)).all() == []
    assert session.scalars(select(LoginLink)).all() == []
    assert set(session.scalars(select(Message.body))) == {ERASED}
    assert set(session.scalars(select(MessageThread.subject))) == {ERASED}
    assert session.scalars(select(Document)).all() == []
    assert not store_of(app).exists(document_key)  # the file too, once committed
    requests = session.scalars(select(AidRequest)).all()
    assert len(requests) == stats.THRESHOLD
    assert all(request.status is RequestStatus.REFUSED for request in requests)
    assert all(r.form_data == {} and r.decision_reason is None for r in requests)
    appointment = session.scalars(select(Appointment)).one()
    assert appointment.note_for_youth is None and appointment.status is AppointmentStatus.ATTENDED
    assert session.get_one(OutboxMessage, queued.id).status is OutboxStatus.CANCELLED
    for message_id in (queued.id, sent.id):
        outgoing = session.get_one(OutboxMessage, message_id)
        assert (outgoing.recipient, outgoing.body_text) == (ERASED, ERASED)
    assignment = session.scalars(select(CaseloadAssignment)).one()
    assert assignment.reason is None and assignment.ended_at == NOW
    after = stats.compute(session, now=NOW)
    assert after.aids == before.aids
    navigo = next(row for row in after.aids if row.by_status[RequestStatus.REFUSED].value)
    assert navigo.by_status[RequestStatus.REFUSED].value == stats.THRESHOLD
    # One audit entry, with nothing personal in it.
    entry = session.scalars(select(AuditEvent).where(AuditEvent.action == "youth.anonymised")).one()
    assert entry.youth_id == youth.id and "Safi" not in str(entry.detail)
    assert session.get_one(Youth, other.id).first_name == "Reste"
    # The watch, which looks at under-25s only, never contacts the file again.
    cycle = run_cycle(
        session, base_url="http://t", secret_key=SECRET, now=NOW + timedelta(days=40), dry_run=True
    )
    assert youth.id not in {contact.youth_id for contact in cycle.contacts}
    assert youth.id not in {task.youth_id for task in cycle.tasks}


async def test_staff_no_longer_find_the_file_and_the_youth_cannot_sign_in(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    team = Team(name="Équipe rétention")
    session.add(team)
    session.flush()
    referent = create_staff(session, team_id=team.id)
    supervisor = create_staff(session, StaffRole.SUPERVISOR, team_id=team.id)
    youth = quiet_since(
        session,
        TWO_YEARS_AGO - timedelta(days=5),
        first_name="Zabiullah",
        last_name="Safi",
        phone="+33639981778",
        email="zabi2@example.org",
    )
    assign(session, youth, referent)
    neighbour = create_youth(session, first_name="Reste", last_name="Suivi")
    assign(session, neighbour, referent)
    youth_token = sign_in_as(client, app, session, youth=youth)
    sign_in_as(client, app, session, staff=referent)
    assert (await client.get(f"/pro/jeunes/{youth.id}")).status_code == 200
    assert "Safi" in (await client.get("/pro?q=safi")).text

    anonymise_due(session, store=store_of(app), now=NOW)
    session.commit()

    for staff in (referent, supervisor):  # the team's supervisor too
        sign_in_as(client, app, session, staff=staff)
        assert (await client.get(f"/pro/jeunes/{youth.id}")).status_code == 404
    sign_in_as(client, app, session, staff=referent)
    caseload = await client.get("/pro")
    assert str(neighbour.id) in caseload.text and str(youth.id) not in caseload.text
    assert str(youth.id) not in (await client.get("/pro?q=anonyme")).text
    # A task opened for the file afterwards (by a job that missed it) stays out of the queue.
    late = create_task(session, youth, TaskKind.DELETION_REQUEST, now=NOW)
    control = create_task(session, neighbour, TaskKind.DELETION_REQUEST, now=NOW)
    session.commit()
    queue = (await client.get("/pro/a-faire")).text
    assert str(control.id) in queue and str(late.id) not in queue
    denied = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "access_denied", AuditEvent.object_id == youth.id
        )
    ).all()
    assert len(denied) == 2
    # The youth's session ended; a sign-in code to the old number or address finds nobody.
    assert sessions.find_active(session, youth_token, now=NOW) is None
    for destination in ("06 39 98 17 78", "zabi2@example.org"):
        code = factories.request_code(
            session, secret_key=SECRET, raw_destination=destination, ip_address="1.2.3.4"
        )
        assert code.outbox_message is None


async def test_the_admin_switches_it_on_and_reads_the_last_run(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from paris_avenir.scheduler import purge_expired

    admin = create_staff(session, StaffRole.ADMIN)
    due = quiet_since(session, TWO_YEARS_AGO - timedelta(days=3))
    protected = quiet_since(session, TWO_YEARS_AGO - timedelta(days=3))
    create_aid_request(session, protected, status=RequestStatus.SUBMITTED)
    session.commit()
    sign_in_as(client, app, session, staff=admin)
    page = await client.get("/pro/admin/conservation")
    assert "Aucun passage pour le moment" in page.text
    assert 'name="automatique" value="oui">' in page.text  # off by default

    with caplog.at_level("INFO", logger="paris_avenir.retention.files"):
        purge_expired(session_factory, settings)  # the nightly job: a dry run
    # One line of counts, nothing personal.
    assert (
        "retention files: dry run: 2 due, 1 to anonymise, 0 anonymised, protected 1 "
        "(open_request 1, open_task 0, upcoming_appointment 0); audit entries purged 0"
    ) in caplog.messages
    session.expire_all()
    assert session.get_one(Youth, due.id).anonymised_at is None
    page = await client.get("/pro/admin/conservation")
    assert "rien n’a été modifié" in page.text
    assert "aucun contact depuis plus de 2 ans) : 2" in page.text
    assert "une demande en cours : 1" in page.text
    assert "Dossiers qui seraient anonymisés : 1" in page.text

    saved = await post_form(client, "/pro/admin/conservation", {"automatique": "oui"})
    assert saved.status_code == 303 and files.automatic(session)
    purge_expired(session_factory, settings)
    session.expire_all()
    assert session.get_one(Youth, due.id).anonymised_at is not None
    assert session.get_one(Youth, protected.id).anonymised_at is None
    page = await client.get("/pro/admin/conservation")
    assert "Dossiers anonymisés : 1" in page.text and 'value="oui" checked' in page.text
    assert (
        "a changé l’anonymisation automatique des dossiers" in (await client.get("/pro/admin")).text
    )
    last = files.last_run(session)
    assert last is not None and not last.dry_run and last.audit_purged == 0


def test_the_cli_counts_then_anonymises_once_the_admin_allows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from paris_avenir.db import create_database_engine, make_session_factory
    from paris_avenir.migrate import upgrade_to_head

    database = f"sqlite:///{tmp_path / 'retention.sqlite3'}"
    db_engine = create_database_engine(database)
    upgrade_to_head(db_engine)
    with make_session_factory(db_engine).begin() as session:
        youth = quiet_since(session, TWO_YEARS_AGO - timedelta(days=3), last_name="Safi")
        youth_id = youth.id
    environment = {
        "PARIS_AVENIR_DATABASE_URL": database,
        "PARIS_AVENIR_UPLOAD_DIR": str(tmp_path / "uploads"),
    }
    now = ("--now", NOW.isoformat())

    dry = run_cli(monkeypatch, capsys, environment, "retention", "--dry-run", *now)
    assert dry.returncode == 0, dry.stderr
    assert "aucun contact depuis plus de 2 ans) : 1" in dry.stdout
    assert "Essai : 1 dossier(s) à anonymiser, aucun modifié." in dry.stdout
    assert "Safi" not in dry.stdout
    with make_session_factory(db_engine)() as session:
        assert files.last_run(session) is None  # --dry-run writes nothing at all
    # Without --dry-run, the admin's setting decides: off, still a dry run (recorded).
    off = run_cli(monkeypatch, capsys, environment, "retention", *now)
    assert "aucun modifié" in off.stdout and "Entrées du journal d’audit effacées : 0" in off.stdout
    with make_session_factory(db_engine).begin() as session:
        assert session.get_one(Youth, youth_id).anonymised_at is None
        assert files.last_run(session) is not None
        files.set_automatic(session, True, by_id=None)
    done = run_cli(monkeypatch, capsys, environment, "retention", *now)
    assert "Dossiers anonymisés : 1" in done.stdout
    with make_session_factory(db_engine).begin() as session:
        assert session.get_one(Youth, youth_id).last_name == "Anonyme"
    bad = run_cli(monkeypatch, capsys, environment, "retention", "--now", "hier")
    assert bad.returncode == 2
    db_engine.dispose()


async def test_a_referent_cannot_reach_the_retention_page(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    referent: StaffUser = create_staff(session)
    sign_in_as(client, app, session, staff=referent)
    assert (await client.get("/pro/admin/conservation")).status_code == 403
    refused = await post_form(client, "/pro/admin/conservation", {"automatique": "oui"})
    assert refused.status_code == 403
    assert files.automatic(session) is False  # still a dry run


RACE_SCHEMA = "retention_races"
RACE_RUNS = 36
RACE_FILES = 30


def test_thirty_six_runs_at_once_anonymise_each_file_once(tmp_path: Path) -> None:
    """Several schedulers (or an operator's CLI beside the nightly job) at the same time:
    each file is claimed by one run only (conditional UPDATE), one audit entry per file."""
    from cryptography.fernet import Fernet, MultiFernet

    from paris_avenir.db import create_database_engine
    from paris_avenir.migrate import upgrade_to_head
    from tests.conftest import postgres_schema_url
    from tests.helpers import at_once

    url = postgres_schema_url(RACE_SCHEMA, needed_for="retention races on PostgreSQL")
    engine = create_database_engine(url, pool_size=RACE_RUNS, max_overflow=4)
    try:
        upgrade_to_head(engine)
        factory = sessionmaker(bind=engine, expire_on_commit=False)
        store = DocumentStore(tmp_path / "uploads", MultiFernet([Fernet(Fernet.generate_key())]))
        with factory.begin() as session:
            referent = create_staff(session)
            for number in range(RACE_FILES):
                youth = quiet_since(session, TWO_YEARS_AGO - timedelta(days=1 + number))
                assign(session, youth, referent)
                journal.add_note(
                    session,
                    store.cipher,
                    youth_id=youth.id,
                    author=referent,
                    text="Note",
                    now=TWO_YEARS_AGO - timedelta(days=1 + number),
                )
                create_document(session, store, youth, DocumentKind.CV)

        def run(_index: int) -> tuple[int, int]:
            with factory.begin() as session:
                report = anonymise_due(session, store=store, now=NOW)
                return report.due, report.anonymised

        reports = at_once(RACE_RUNS, run)

        assert sum(anonymised for _due, anonymised in reports) == RACE_FILES
        # A real race: several runs saw the same files due before one of them committed.
        assert sum(due == RACE_FILES for due, _anonymised in reports) >= 2
        with factory() as session:
            assert (
                session.scalar(
                    select(func.count()).select_from(Youth).where(Youth.anonymised_at.is_not(None))
                )
                == RACE_FILES
            )
            assert (
                session.scalar(select(func.count()).where(AuditEvent.action == "youth.anonymised"))
                == RACE_FILES
            )
            assert session.scalar(select(func.count()).select_from(Document)) == 0
            assert session.scalar(select(func.count()).select_from(FollowUpNote)) == 0
        assert store.count_files() == 0
    finally:
        engine.dispose()
