"""Papers that expire (issue 18, part 6): the youth's reminders 4, 2 and 1 month before, once
each, in quiet hours' respect, in their language; the référent's task a month before and the
dashboard's "Échéances à venir", scope-checked; the vault's warning."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.aid_requests.models import AidCode, RequestStatus
from paris_avenir.appointments.models import AppointmentStatus
from paris_avenir.db import create_database_engine
from paris_avenir.documents.models import Document, DocumentKind
from paris_avenir.kit.quiet_hours import DEFAULT as QUIET_HOURS
from paris_avenir.messaging import outbox, sms_texts
from paris_avenir.messaging.channels import Channels
from paris_avenir.messaging.channels.email_smtp import SmtpEmailSender
from paris_avenir.messaging.channels.sms_file import FileSmsSender
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.migrate import upgrade_to_head
from paris_avenir.outreach import engine
from paris_avenir.outreach import notices as outreach_notices
from paris_avenir.outreach.models import OutreachAttempt, OutreachReason
from paris_avenir.staff.models import StaffTask, StaffUser, TaskKind, TaskOutcome
from paris_avenir.youths.models import Channel, Youth
from tests.conftest import postgres_schema_url
from tests.factories import (
    assign,
    create_aid_request,
    create_appointment,
    create_outreach_attempt,
    create_staff,
    create_youth,
    jpeg_bytes,
)
from tests.helpers import at_once, csrf_token, post_form, sign_in_as
from tests.servers import SmtpServer

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # the frozen clock: Wednesday, 11:00 in Paris
TODAY = date(2026, 12, 2)
SECRET = "s" * 40


def cycle(session: Session, now: datetime = NOW) -> engine.CycleReport:
    return engine.run_cycle(session, base_url="http://x", secret_key=SECRET, now=now)


def paper(
    session: Session,
    youth: Youth,
    expires_on: date,
    kind: DocumentKind = DocumentKind.RESIDENCE_PERMIT,
    *,
    added: datetime | None = None,
) -> Document:
    """A paper in the vault (the watch reads its row, never its file)."""
    document = Document(
        youth_id=youth.id,
        kind=kind,
        original_filename="titre.pdf",
        content_type="application/pdf",
        size_bytes=1000,
        sha256="0" * 64,
        storage_key=uuid.uuid4().hex,
        expires_on=expires_on,
    )
    if added is not None:
        document.created_at = added
    session.add(document)
    session.flush()
    return document


@pytest.fixture
def referent(session: Session) -> StaffUser:
    return create_staff(session, full_name="Inès Référente")


@pytest.fixture
def youth(session: Session, referent: StaffUser) -> Youth:
    youth = create_youth(session, first_name="Aman", last_name="Tesfaye")
    assign(session, youth, referent)
    return youth


def reminders(session: Session, youth: Youth) -> list[tuple[int, Channel | None]]:
    return [
        (attempt.step, attempt.channel)
        for attempt in session.scalars(
            select(OutreachAttempt)
            .where(
                OutreachAttempt.youth_id == youth.id,
                OutreachAttempt.reason == OutreachReason.PAPER_EXPIRY,
            )
            .order_by(OutreachAttempt.attempted_at)
        )
    ]


def messages(session: Session, youth: Youth) -> list[OutboxMessage]:
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.youth_id == youth.id)
            .order_by(OutboxMessage.created_at)
        )
    )


# --- The youth's reminders ------------------------------------------------------------------


def test_a_titre_de_sejour_expiring_in_119_days_gets_the_4_month_reminder_exactly_once(
    session: Session, youth: Youth
) -> None:
    document = paper(session, youth, TODAY + timedelta(days=119))
    cycle(session)
    cycle(session)  # the next run, and the one after: nothing more
    cycle(session, NOW + timedelta(minutes=30))
    assert reminders(session, youth) == [(1, Channel.SMS)]
    (sms,) = messages(session, youth)
    assert sms.template == "outreach_papier_expire" and sms.channel is Channel.SMS
    body = sms.body_text or ""
    assert "un de vos papiers expire le 31/03/2027" in body
    assert body.endswith("http://x/mon-espace/documents")
    attempt = session.scalars(select(OutreachAttempt)).one()
    assert attempt.period_key == str(document.id)


def test_then_2_months_and_1_month_before_and_never_after_it_expired(
    session: Session, youth: Youth
) -> None:
    expires_on = TODAY + timedelta(days=119)
    paper(session, youth, expires_on)
    for day in range(0, 130, 3):
        cycle(session, NOW + timedelta(days=day))
    assert reminders(session, youth) == [(1, Channel.SMS), (2, Channel.SMS), (3, Channel.SMS)]
    sent_on = [
        attempt.attempted_at.astimezone(PARIS).date()
        for attempt in session.scalars(
            select(OutreachAttempt)
            .where(OutreachAttempt.reason == OutreachReason.PAPER_EXPIRY)
            .order_by(OutreachAttempt.attempted_at)
        )
    ]
    # Each on the first run once its threshold passed (the runs are 3 days apart here).
    assert sent_on[1] <= expires_on - timedelta(days=59) and sent_on[1] > date(2027, 1, 28)
    assert sent_on[2] <= expires_on - timedelta(days=28) and sent_on[2] > date(2027, 2, 25)


def test_a_paper_added_late_gets_the_reminder_due_now_not_the_earlier_ones(
    session: Session, youth: Youth
) -> None:
    paper(session, youth, TODAY + timedelta(days=50))
    cycle(session)
    assert reminders(session, youth) == [(2, Channel.SMS)]


def test_an_older_paper_replaced_by_a_newer_one_is_not_watched(
    session: Session, youth: Youth
) -> None:
    paper(session, youth, TODAY + timedelta(days=40), added=NOW - timedelta(days=400))
    paper(session, youth, TODAY + timedelta(days=900), added=NOW - timedelta(days=3))
    cycle(session)
    assert reminders(session, youth) == []


def test_quiet_hours_hold_the_reminder_until_nine(
    session: Session, session_factory: sessionmaker[Session], youth: Youth, tmp_path: Path
) -> None:
    evening = datetime(2026, 12, 2, 21, 30, tzinfo=PARIS).astimezone(UTC)
    paper(session, youth, TODAY + timedelta(days=119))
    cycle(session, evening)
    (sms,) = messages(session, youth)
    assert sms.next_attempt_at == datetime(2026, 12, 3, 9, 0, tzinfo=PARIS)
    assert sms.next_attempt_at is not None and not QUIET_HOURS.is_quiet(sms.next_attempt_at)
    session.commit()
    channels = Channels(
        sms=FileSmsSender(tmp_path / "sms.jsonl"),
        email=SmtpEmailSender("smtp://127.0.0.1:9", sender="Paris avenir <pa@example.org>"),
    )
    outbox.dispatch_due(session_factory, channels, now=evening + timedelta(minutes=5))
    assert not (tmp_path / "sms.jsonl").exists()  # held: nothing left at night
    outbox.dispatch_due(
        session_factory, channels, now=datetime(2026, 12, 3, 9, 0, tzinfo=PARIS).astimezone(UTC)
    )
    assert "un de vos papiers expire le 31/03/2027" in (tmp_path / "sms.jsonl").read_text()


def test_in_the_youths_language_and_channel_with_what_to_prepare_and_the_booking_link(
    session: Session, referent: StaffUser
) -> None:
    by_email = create_youth(session, language="fa_AF", preferred_channel=Channel.EMAIL)
    by_sms = create_youth(session, language="en")
    for youth in (by_email, by_sms):
        assign(session, youth, referent)
        paper(session, youth, TODAY + timedelta(days=100))
    cycle(session)
    (email,) = messages(session, by_email)
    assert email.channel is Channel.EMAIL and email.language == "fa_AF"
    body = email.body_text or ""
    assert "31/03/2027" not in body and "12/03/2027" in body
    assert "http://x/mon-espace/rendez-vous/nouveau?motif=guichet" in body
    assert "Ce qu’il faut" not in body  # in Dari, not in French
    assert body.count("\n- ") == len(
        outreach_notices.PAPER_TO_PREPARE[DocumentKind.RESIDENCE_PERMIT]
    )
    (sms,) = messages(session, by_sms)
    assert (sms.body_text or "").startswith("Paris avenir: one of your papers expires")


def test_the_email_arrives_with_its_list_its_links_and_the_way_to_stop(
    session: Session,
    session_factory: sessionmaker[Session],
    referent: StaffUser,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    youth = create_youth(session, preferred_channel=Channel.EMAIL, first_name="Aman")
    assign(session, youth, referent)
    paper(session, youth, TODAY + timedelta(days=119))
    cycle(session)
    session.commit()
    channels = Channels(
        sms=FileSmsSender(tmp_path / "sms.jsonl"),
        email=SmtpEmailSender(smtp_server.url, sender="Paris avenir <pa@example.org>"),
        base_url="http://x",
        secret_key=SECRET,
    )
    outbox.dispatch_due(session_factory, channels, now=NOW)
    (email,) = smtp_server.inbox
    assert email["Subject"] == "Un de vos papiers expire le 31/03/2027"
    text = smtp_server.text_of(email)
    assert text.startswith("Bonjour Aman,")
    # Discreet by default: the first lines (a lock screen's) do not say which paper.
    assert "Un de vos papiers expire le 31/03/2027 : c’est le moment de préparer" in text
    assert "- 3 photos d’identité récentes" in text
    assert "http://x/mon-espace/rendez-vous/nouveau?motif=guichet" in text
    assert email["List-Unsubscribe"]  # an outreach email: stopped in one click
    assert email.get_body(preferencelist=("html",)) is not None


def test_an_identity_paper_is_reminded_too_and_the_others_are_not(
    session: Session, youth: Youth
) -> None:
    paper(session, youth, TODAY + timedelta(days=110), DocumentKind.IDENTITY)
    # Which paper is said only to a youth who chose "messages détaillés" (discreet by default).
    youth.detailed_messages = True
    session.commit()
    cycle(session)
    (sms,) = messages(session, youth)
    assert "identité expire le 22/03/2027" in (sms.body_text or "")


def test_by_default_the_reminder_never_says_which_paper(session: Session, youth: Youth) -> None:
    paper(session, youth, TODAY + timedelta(days=119))
    cycle(session)
    (sms,) = messages(session, youth)
    body = sms.body_text or ""
    assert "un de vos papiers expire le 31/03/2027" in body
    assert "séjour" not in body and "identité" not in body


def test_reminders_are_excepted_from_the_frequency_cap_and_do_not_count_in_it(
    session: Session, youth: Youth, referent: StaffUser
) -> None:
    # A message of the watch yesterday: the cap holds other messages for 5 days, not this.
    create_outreach_attempt(
        session,
        youth,
        reason=OutreachReason.DOCUMENTS_AWAITED,
        step=1,
        period_key="x",
        channel=Channel.SMS,
        at=NOW - timedelta(days=1),
    )
    paper(session, youth, TODAY + timedelta(days=119))
    cycle(session)
    assert reminders(session, youth) == [(1, Channel.SMS)]
    # And the reminder does not hold the next message: a youth reminded today who misses
    # an appointment tomorrow hears of it at once.
    other = create_youth(session)
    assign(session, other, referent)
    paper(session, other, TODAY + timedelta(days=119))
    cycle(session)
    create_appointment(
        session,
        other,
        referent,
        NOW + timedelta(hours=20),
        status=AppointmentStatus.MISSED,
    )
    cycle(session, NOW + timedelta(days=1))
    assert [message.template for message in messages(session, other)] == [
        "outreach_papier_expire",
        "outreach_rdv_manque",
    ]


def test_an_opted_out_youth_gets_no_reminder(session: Session, youth: Youth) -> None:
    youth.outreach_opted_out_at = NOW - timedelta(days=10)
    paper(session, youth, TODAY + timedelta(days=119))
    cycle(session)
    assert reminders(session, youth) == [] and messages(session, youth) == []


@contextmanager
def _separate_engine(backend: str, tmp_path: Path) -> Iterator[Engine]:
    if backend == "postgresql":
        url = postgres_schema_url("paper_expiry_race", needed_for="concurrent cycles")
    else:
        url = f"sqlite:///{tmp_path / 'race.sqlite3'}"
    separate = create_database_engine(url)
    upgrade_to_head(separate)
    try:
        yield separate
    finally:
        separate.dispose()


def test_two_cycles_at_once_send_the_reminder_exactly_once(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the advisory lock (as if two schedulers missed it), the attempt's unique key
    is what keeps the reminder to one, and the task's key the task: every cycle selects the
    paper, one claims it."""
    from paris_avenir.outreach import engine as watch

    @contextmanager
    def no_lock(_session: Session) -> Iterator[bool]:
        yield True

    monkeypatch.setattr(watch, "_exclusive", no_lock)
    with _separate_engine(engine.dialect.name, tmp_path) as separate:
        factory = sessionmaker(bind=separate, expire_on_commit=False)
        with factory.begin() as session:
            referent = create_staff(session)
            youths = [create_youth(session) for _ in range(20)]
            for number, youth in enumerate(youths):
                assign(session, youth, referent)
                # Half within the month: a reminder and the référent's task each.
                paper(session, youth, TODAY + timedelta(days=119 if number % 2 else 25))

        def run(_index: int) -> int:
            with factory() as session:
                report = cycle(session)
                session.commit()
                return report.contact_count

        counts = at_once(4, run)
        with factory() as session:
            assert sum(counts) == 20
            assert session.scalar(select(func.count()).select_from(OutreachAttempt)) == 20
            keys = list(session.scalars(select(OutboxMessage.idempotency_key)))
            assert len(keys) == 20 == len(set(keys))
            task_keys = list(
                session.scalars(
                    select(StaffTask.key).where(StaffTask.kind == TaskKind.PAPER_EXPIRING)
                )
            )
            assert len(task_keys) == 10 == len(set(task_keys))


# --- The référent's task and dashboard -------------------------------------------------------


def paper_tasks(session: Session) -> list[StaffTask]:
    return list(session.scalars(select(StaffTask).where(StaffTask.kind == TaskKind.PAPER_EXPIRING)))


def test_the_task_opens_30_days_before_for_the_referent_once(
    session: Session, youth: Youth, referent: StaffUser
) -> None:
    paper(session, youth, TODAY + timedelta(days=31))
    cycle(session)
    assert paper_tasks(session) == []
    cycle(session, NOW + timedelta(days=1))
    cycle(session, NOW + timedelta(days=1, hours=1))
    (task,) = paper_tasks(session)
    assert task.assignee_id == referent.id
    assert task.detail == {"paper": "Titre de séjour", "expires_on": "2027-01-02"}


async def test_the_referent_sees_it_in_a_faire_and_on_the_dashboard_another_does_not(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    other = create_staff(session, full_name="Autre Référent")
    theirs = create_youth(session, first_name="Zed", last_name="Ailleurs")
    assign(session, theirs, other)
    paper(session, youth, TODAY + timedelta(days=30))
    cycle(session)
    session.commit()
    referent = session.scalars(
        select(StaffUser).where(StaffUser.full_name == "Inès Référente")
    ).one()
    sign_in_as(client, app, session, staff=referent)
    todo = (await client.get("/pro/a-faire")).text
    assert "Papier qui expire dans un mois" in todo
    assert "Titre de séjour : expire le 01/01/2027." in todo
    home = (await client.get("/pro")).text
    assert "Échéances à venir" in home
    section = home.split("Échéances à venir", 1)[1].split("</section>", 1)[0]
    assert "Tesfaye Aman" in section and "01/01/2027" in section and "dans 30 jours" in section

    client.cookies.clear()
    sign_in_as(client, app, session, staff=other)
    assert "Tesfaye" not in (await client.get("/pro/a-faire")).text
    assert "Tesfaye" not in (await client.get("/pro")).text
    # The task itself: closing it from another caseload is a 404, like a missing id.
    (task,) = paper_tasks(session)
    response = await post_form(client, f"/pro/a-faire/{task.id}", {"resultat": "fait"})
    assert response.status_code == 404
    session.refresh(task)
    assert task.done_at is None


async def test_a_newer_paper_uploaded_closes_the_task(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    paper(session, youth, TODAY + timedelta(days=20), added=NOW - timedelta(days=300))
    identity = paper(
        session,
        youth,
        TODAY + timedelta(days=25),
        DocumentKind.IDENTITY,
        added=NOW - timedelta(days=300),
    )
    cycle(session)
    assert len(paper_tasks(session)) == 2
    session.commit()
    sign_in_as(client, app, session, youth=youth)
    token = await csrf_token(client, "/mon-espace/documents")
    response = await client.post(
        "/mon-espace/documents",
        data={
            "csrftoken": token,
            "type_document": "titre_sejour",
            "expire_le_jour": "1",
            "expire_le_mois": "12",
            "expire_le_annee": "2030",
        },
        files={"fichier": ("titre.jpg", jpeg_bytes(), "image/jpeg")},
    )
    assert response.status_code == 303
    by_key = {task.key: task for task in paper_tasks(session)}
    for task in by_key.values():
        session.refresh(task)
    permit_task = next(task for task in by_key.values() if str(identity.id) not in task.key)
    identity_task = by_key[f"paper-expiry:{identity.id}"]
    assert permit_task.done_at is not None and permit_task.outcome is TaskOutcome.DONE
    assert identity_task.done_at is None  # another kind: still to do
    # No reminder either for the replaced paper: the new one is 4 years away.
    before = len(reminders(session, youth))
    cycle(session, NOW + timedelta(days=10))
    assert len(reminders(session, youth)) == before


def test_the_cycle_closes_the_task_of_a_paper_replaced_by_staff_or_deleted(
    session: Session, youth: Youth
) -> None:
    old = paper(session, youth, TODAY + timedelta(days=20), added=NOW - timedelta(days=300))
    cycle(session)
    (task,) = paper_tasks(session)
    session.delete(old)
    session.flush()
    cycle(session, NOW + timedelta(hours=1))
    session.refresh(task)
    assert task.outcome is TaskOutcome.DONE


def test_the_allocation_renewal_gets_its_task_a_month_before(
    session: Session, youth: Youth, referent: StaffUser
) -> None:
    request = create_aid_request(
        session,
        youth,
        aid_code=AidCode.ALLOCATION,
        status=RequestStatus.GRANTED,
        renewal_due_on=NOW + timedelta(days=45),
    )
    cycle(session)
    kinds = [task.kind for task in session.scalars(select(StaffTask))]
    assert TaskKind.ALLOCATION_RENEWAL not in kinds
    cycle(session, NOW + timedelta(days=16))
    (task,) = session.scalars(
        select(StaffTask).where(StaffTask.kind == TaskKind.ALLOCATION_RENEWAL)
    ).all()
    assert (task.assignee_id, task.aid_request_id) == (referent.id, request.id)
    assert task.detail["renewal_due_on"] == "2027-01-16"


# --- The youth's vault -----------------------------------------------------------------------


async def test_the_vault_says_the_paper_expires_soon_with_what_to_prepare(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    paper(session, youth, TODAY + timedelta(days=119))
    paper(session, youth, TODAY + timedelta(days=900), DocumentKind.IDENTITY)
    session.commit()
    sign_in_as(client, app, session, youth=youth)
    page = (await client.get("/mon-espace/documents")).text
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    assert "Titre de séjour : expire bientôt" in text
    assert "Votre titre de séjour expire le 31/03/2027" in text
    assert "3 photos d’identité récentes" in text
    assert 'href="/mon-espace/rendez-vous/nouveau?motif=guichet"' in page
    assert "Pièce d’identité : expire bientôt" not in text  # 900 days away


# --- Every new SMS is measured --------------------------------------------------------------


def test_the_new_texts_are_in_the_sms_size_test() -> None:
    keys = {text.key: text.text for text in sms_texts.ALL}
    assert keys["paper_expiry_permit"] == sms_texts.PAPER_EXPIRY_PERMIT
    assert keys["paper_expiry_identity"] == sms_texts.PAPER_EXPIRY_IDENTITY
    assert set(outreach_notices.PAPER_SMS.values()) <= set(keys.values())
