"""Privacy at rest: what the database holds, read as an attacker with a copy of it would —
raw columns through SQL, never through the models.

A youth files a request with answers and writes to their référent, the référent refuses it
with a reason, the youth is told by SMS and signs in with a code: afterwards no message body,
answer, decision reason, sensitive youth fact or code is in clear anywhere, the youth still
reads everything, and rows written under an old key still read after the keys rotate.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from fastapi import FastAPI
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.aid_requests import kinds
from paris_avenir.aid_requests.catalogue import ensure_catalogue
from paris_avenir.aid_requests.kinds.base import Verdict
from paris_avenir.aid_requests.models import AidCode, AidRequest, AidRequestEvent, RequestStatus
from paris_avenir.appointments.models import Appointment
from paris_avenir.config import Settings
from paris_avenir.db import create_database_engine, make_session_factory
from paris_avenir.documents.models import DocumentKind
from paris_avenir.kit import crypto
from paris_avenir.messaging import outbox
from paris_avenir.messaging import service as messaging
from paris_avenir.messaging.models import Message, OutboxMessage, OutboxStatus
from paris_avenir.migrate import alembic_config
from paris_avenir.models import Base
from paris_avenir.privacy.export import export_youth_data
from paris_avenir.staff import journal
from paris_avenir.staff.models import StaffRole, StaffUser, Team
from paris_avenir.youths.models import Channel, HousingSituation, Youth
from tests import factories
from tests.conftest import BACKENDS, postgres_schema_url
from tests.factories import (
    assign,
    create_aid_request,
    create_appointment,
    create_document,
    create_staff,
    create_youth,
)
from tests.helpers import post_form, sign_in_as

REASON = "Vous avez déjà reçu une aide d’urgence ce mois-ci, revenez le mois prochain."
MESSAGE = "Bonjour, je dors dehors depuis mardi, pouvez-vous m’appeler ?"
INCOME = "612,34"
THIS_REVISION = "cfda6be730de"
FERNET = re.compile(r"^gAAAAA[A-Za-z0-9_=-]+$")


def _is_token(value: Any) -> bool:
    return isinstance(value, str) and FERNET.match(value) is not None


def _every_raw_value(session: Session) -> Iterator[tuple[str, str, Any]]:
    """(table, column, value) of every row of every table, read with plain SQL."""
    for table in Base.metadata.sorted_tables:
        names = [column.name for column in table.columns]
        statement = f"SELECT {', '.join(names)} FROM {table.name}"  # noqa: S608 (metadata)
        rows = session.execute(text(statement)).all()
        for row in rows:
            for name, value in zip(names, row, strict=True):
                if value is not None:
                    yield table.name, name, value


def _raw(session: Session, table: str, column: str, row_id: uuid.UUID) -> Any:
    rows = session.execute(text(f"SELECT id, {column} FROM {table}")).all()  # noqa: S608
    return next(value for key, value in rows if str(key).replace("-", "") == row_id.hex)


@pytest.fixture
def team(session: Session) -> Team:
    team = Team(name="Nord")
    session.add(team)
    session.flush()
    return team


@pytest.fixture
def referent(session: Session, team: Team) -> StaffUser:
    return create_staff(session, StaffRole.REFERENT, team_id=team.id, full_name="Awa Diallo")


@pytest.fixture
def youth(session: Session, referent: StaffUser) -> Youth:
    ensure_catalogue(session)
    youth = create_youth(
        session,
        first_name="Zabiullah",
        phone="+33639981234",
        preferred_channel=Channel.SMS,
        former_unaccompanied_minor=True,
        housing_situation=HousingSituation.STREET,
        monthly_income_cents=None,
        has_family_support=None,
    )
    assign(session, youth, referent)
    session.commit()
    return youth


async def _file_an_allocation(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth
) -> AidRequest:
    """The youth's own journey: answers, two documents of the vault, sent."""
    store = app.state.document_store
    identity = create_document(session, store, youth, DocumentKind.IDENTITY)
    bank = create_document(session, store, youth, DocumentKind.BANK_DETAILS)
    session.commit()
    sign_in_as(client, app, session, youth=youth)
    started = await post_form(client, "/mon-espace/demandes", {"aide": "allocation"})
    base = str(started.headers["location"]).rsplit("/", 1)[0]
    answers = {
        "employment_situation": "recherche",
        "monthly_income": INCOME,
        "family_support": "non",
        "action": "continuer",
    }
    assert (await post_form(client, base + "/1", answers)).status_code == 303
    documents = {"documents": [str(identity.id), str(bank.id)], "action": "continuer"}
    assert (await post_form(client, base + "/2", documents)).status_code == 303
    sent = await post_form(client, base.rsplit("/etape", 1)[0] + "/envoyer", {"certifie": "oui"})
    assert sent.status_code == 303
    session.expire_all()
    return session.scalars(select(AidRequest).where(AidRequest.youth_id == youth.id)).one()


async def test_after_a_real_flow_nothing_sensitive_is_in_clear_in_the_database(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    session_factory: sessionmaker[Session],
    referent: StaffUser,
    youth: Youth,
) -> None:
    request = await _file_an_allocation(app, client, session, youth)
    messaging.post_message(
        session, messaging.general_thread(session, youth.id), body=MESSAGE, author_staff_id=None
    )
    session.commit()
    client.cookies.clear()
    sign_in_as(client, app, session, staff=referent)
    assert (await post_form(client, f"/pro/demandes/{request.id}/prendre")).status_code == 303
    refused = await post_form(client, f"/pro/demandes/{request.id}/refuser", {"texte": REASON})
    assert refused.status_code == 303
    # The youth asks for a sign-in code; everything queued leaves (the code, the refusal SMS).
    start = factories.request_code(
        session,
        secret_key=app.state.settings.secret_key,
        raw_destination="06 39 98 12 34",
        ip_address="127.0.0.1",
    )
    assert start.outbox_message is not None
    session.commit()
    report = outbox.dispatch_due(session_factory, app.state.channels)
    assert len(report.sent) >= 2 and not report.failed and not report.retried
    sms_texts = [
        json.loads(line)["text"]
        for line in Path(app.state.settings.sms_file).read_text().splitlines()
    ]
    code = next(
        match.group(1) for text_ in sms_texts if (match := re.search(r"\b(\d{6})\b", text_))
    )
    assert any(f"/mon-espace/demandes/{request.id}" in text_ for text_ in sms_texts)
    session.expire_all()

    # 1. No clear text anywhere: every value of every table, as the database holds it.
    secrets = [REASON, MESSAGE, "Vous avez déjà reçu", "dors dehors", INCOME, "61234"]
    for table, column, value in _every_raw_value(session):
        shown = str(value)
        for secret in secrets:
            assert secret not in shown, (table, column)
        if not _is_token(value):
            assert not re.search(rf"\b{code}\b", shown), (table, column)
    # 2. The columns themselves are Fernet tokens.
    assert _is_token(_raw(session, "aid_request", "form_data", request.id))
    assert _is_token(_raw(session, "aid_request", "decision_reason", request.id))
    reasons = session.execute(
        text("SELECT reason FROM aid_request_event WHERE reason IS NOT NULL")
    ).all()
    assert reasons and all(_is_token(value) for (value,) in reasons)
    bodies = session.execute(text("SELECT body FROM message")).all()
    assert bodies and all(_is_token(value) for (value,) in bodies)
    for column in (
        "former_unaccompanied_minor",
        "housing_situation",
        "monthly_income_cents",
        "has_family_support",
    ):
        assert _is_token(_raw(session, "youth", column, youth.id)), column
    # 3. After sending, the outbox holds no code, not even encrypted: the text is erased.
    sent = session.scalars(select(OutboxMessage)).all()
    assert {message.status for message in sent} == {OutboxStatus.SENT}
    for message in sent:
        assert message.body_text == outbox.ERASED and message.content_erased_at is not None
        assert message.subject is None and message.body_html is None
        assert _is_token(_raw(session, "outbox_message", "body_text", message.id))
    # The code itself is kept only as a keyed hash of the attempt.
    assert not session.execute(
        text("SELECT 1 FROM sign_in_attempt WHERE code_hash = :code"), {"code": code}
    ).first()

    # 4. Through the application, everything reads as written.
    answers = session.get_one(AidRequest, request.id)
    assert answers.status is RequestStatus.REFUSED and answers.decision_reason == REASON
    assert answers.form_data["monthly_income"] in {INCOME, "61234", "612.34"}
    assert session.scalars(select(Message.body)).one() == MESSAGE
    assert REASON in [event.reason for event in session.scalars(select(AidRequestEvent))]
    client.cookies.clear()
    sign_in_as(client, app, session, youth=youth)
    page = (await client.get(f"/mon-espace/demandes/{request.id}")).text
    assert "Refusée" in page and "Vous avez déjà reçu une aide d’urgence ce mois-ci" in page
    # The staff page shows the youth's answers and the file's housing.
    client.cookies.clear()
    sign_in_as(client, app, session, staff=referent)
    staff_page = (await client.get(f"/pro/demandes/{request.id}")).text
    assert INCOME in staff_page
    file_page = (await client.get(f"/pro/jeunes/{youth.id}")).text
    assert "À la rue" in file_page


def test_what_needs_the_sensitive_facts_reads_them_in_python(
    session: Session, youth: Youth
) -> None:
    """Eligibility and the youth's export read the decrypted values; nothing asks SQL to
    compare them (a Fernet token is random: the same income encrypts differently twice)."""
    youth.monthly_income_cents = 25000
    youth.has_family_support = False
    session.commit()
    session.expire_all()
    loaded = session.get_one(Youth, youth.id)
    assert loaded.monthly_income_cents == 25000 and loaded.has_family_support is False
    assert loaded.housing_situation is HousingSituation.STREET
    assert loaded.former_unaccompanied_minor is True
    raw = session.execute(
        text("SELECT monthly_income_cents FROM youth WHERE monthly_income_cents = :clear"),
        {"clear": "25000"},
    ).all()
    assert raw == []  # not comparable in SQL: it is not there
    allocation = kinds.kind(AidCode.ALLOCATION)
    conditions = allocation.rule(loaded, {"max_monthly_income_cents": 90000}, date(2026, 12, 1))
    income = next(condition for condition in conditions if "gagnez moins" in condition.text)
    assert income.verdict is Verdict.MET
    exported = export_youth_data(session, loaded)["profile"]
    assert exported["housing_situation"] == "rue"
    assert exported["monthly_income_cents"] == 25000
    assert exported["former_unaccompanied_minor"] is True


async def test_the_statistics_and_the_exports_still_work(
    app: FastAPI, client: httpx.AsyncClient, session: Session, team: Team, youth: Youth
) -> None:
    supervisor = create_staff(session, StaffRole.SUPERVISOR, team_id=team.id)
    session.commit()
    sign_in_as(client, app, session, staff=supervisor)
    assert (await client.get("/pro/statistiques")).status_code == 200
    assert (await client.get("/pro/statistiques.csv")).status_code == 200
    client.cookies.clear()
    sign_in_as(client, app, session, youth=youth)
    exported = await client.get("/mon-espace/donnees.json")
    assert exported.status_code == 200
    assert exported.json()["profile"]["housing_situation"] == "rue"


@pytest.fixture
def restore_cipher(engine: Engine) -> Iterator[None]:
    before = crypto._by_dialect.get(engine.dialect)
    yield
    if before is not None:
        crypto._by_dialect[engine.dialect] = before


def test_rows_written_under_the_old_key_still_read_after_rotation(
    engine: Engine, session: Session, restore_cipher: None
) -> None:
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()

    def prod(keys: str) -> Settings:
        return Settings(env="prod", secret_key="r" * 40, encryption_keys=keys)

    crypto.configure_at_rest(prod(old_key), engine)
    youth = create_youth(session, housing_situation=HousingSituation.EMERGENCY)
    request = create_aid_request(
        session,
        youth,
        aid_code=AidCode.AIDE_URGENCE,
        status=RequestStatus.REFUSED,
        form_data={"besoin": "Une nuit d’hôtel"},
        decision_reason=REASON,
    )
    session.commit()
    old_token = _raw(session, "aid_request", "decision_reason", request.id)
    assert Fernet(old_key).decrypt(old_token.encode()).decode() == REASON

    # Rotation: the new key first, the old one still listed (as for documents).
    crypto.configure_at_rest(prod(f"{new_key},{old_key}"), engine)
    session.expire_all()
    rotated = session.get_one(AidRequest, request.id)
    assert rotated.decision_reason == REASON and rotated.form_data == {"besoin": "Une nuit d’hôtel"}
    assert session.get_one(Youth, youth.id).housing_situation is HousingSituation.EMERGENCY
    # What is written now is under the new key.
    rotated.decision_reason = REASON + " (relu)"
    session.commit()
    new_token = _raw(session, "aid_request", "decision_reason", request.id)
    assert Fernet(new_key).decrypt(new_token.encode()).decode() == REASON + " (relu)"

    # The old key was needed: without it, a row it wrote no longer reads.
    crypto.configure_at_rest(prod(new_key), engine)
    session.expire_all()
    reloaded = session.get_one(Youth, youth.id)  # its encrypted columns load when read
    with pytest.raises(InvalidToken):
        _ = reloaded.housing_situation


def test_the_rotation_command_re_encrypts_the_columns_so_the_old_key_can_go(
    tmp_path: Path,
) -> None:
    """`paris-avenir rotate-document-keys`, in its own process with the new key first: the
    values move to the new key, and then read with the new key alone."""
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    database = f"sqlite:///{tmp_path / 'rotate.sqlite3'}"
    db_engine = create_database_engine(database)
    _migrate(db_engine, "head")
    crypto.configure_at_rest(Settings(encryption_keys=old_key), db_engine)
    with make_session_factory(db_engine).begin() as session:
        youth = create_youth(session, housing_situation=HousingSituation.EMERGENCY)
        messaging.post_message(
            session, messaging.general_thread(session, youth.id), body=MESSAGE, author_staff_id=None
        )
        # The follow-up journal, encrypted by hand with the same keys.
        journal.add_note(
            session,
            MultiFernet([Fernet(old_key)]),
            youth_id=youth.id,
            author=create_staff(session),
            text="Appelé le 115 avec lui.",
        )
        youth_id = youth.id
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("PARIS_AVENIR_")
    }
    environment.update(
        {
            "PARIS_AVENIR_DATABASE_URL": database,
            "PARIS_AVENIR_UPLOAD_DIR": str(tmp_path / "uploads"),
            "PARIS_AVENIR_ENCRYPTION_KEYS": f"{new_key},{old_key}",
        }
    )
    completed = subprocess.run(
        [sys.executable, "-m", "paris_avenir.cli", "rotate-document-keys"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # The youth's flag and housing (income and family support are unknown), the message's
    # body and the journal's note.
    assert "Valeurs chiffrées en base rechiffrées : 4." in completed.stdout
    crypto.configure_at_rest(Settings(encryption_keys=new_key), db_engine)
    with make_session_factory(db_engine)() as session:
        assert session.get_one(Youth, youth_id).housing_situation is HousingSituation.EMERGENCY
        assert session.scalars(select(Message.body)).one() == MESSAGE
        only_new = MultiFernet([Fernet(new_key)])
        assert [entry.text for entry in journal.journal(session, only_new, youth_id)] == [
            "Appelé le 115 avec lui."
        ]
    db_engine.dispose()


# --- The data migration -------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def blank_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'before.sqlite3'}"
    else:
        url = postgres_schema_url("at_rest_migration", needed_for="the PostgreSQL migration test")
    migrated = create_database_engine(url)
    yield migrated
    migrated.dispose()


def _migrate(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_the_migration_encrypts_what_rows_already_hold_and_loses_none(
    blank_engine: Engine,
) -> None:
    before = ScriptDirectory.from_config(alembic_config()).get_revision(THIS_REVISION)
    assert before is not None and isinstance(before.down_revision, str)
    _migrate(blank_engine, before.down_revision)
    youth_id, request_id, thread_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    sent_id, queued_id = uuid.uuid4(), uuid.uuid4()
    then = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    hexes = {
        "y": youth_id.hex,
        "r": request_id.hex,
        "t": thread_id.hex,
        "e": uuid.uuid4().hex,
        "m": uuid.uuid4().hex,
        "s": sent_id.hex,
        "q": queued_id.hex,
        "a": uuid.uuid4().hex,
    }
    if blank_engine.dialect.name == "postgresql":
        hexes = {key: str(uuid.UUID(value)) for key, value in hexes.items()}
    with blank_engine.begin() as connection:

        def insert(sql: str, **values: Any) -> None:
            connection.execute(text(sql), {"now": then, **hexes, **values})

        insert(
            "INSERT INTO youth (id, ase_ref, first_name, last_name, birth_date, phone, language,"
            " preferred_channel, former_unaccompanied_minor, housing_situation,"
            " employment_situation, monthly_income_cents, has_family_support,"
            " in_higher_education, lives_in_ile_de_france, created_at, modified_at) VALUES"
            " (:y, 'ASE-1', 'Zabiullah', 'Safi', :born, '+33639980001', 'fa_AF', 'sms', true,"
            " 'rue', 'recherche', 61234, false, false, true, :now, :now)",
            born=date(2004, 2, 1),
        )
        insert(
            "INSERT INTO aid_request (id, youth_id, aid_code, status, form_data, current_step,"
            " decision_reason, created_at, modified_at) VALUES (:r, :y, 'aide_urgence',"
            " 'refusee', :answers, 1, :reason, :now, :now)",
            answers=json.dumps({"besoin": "Une nuit d’hôtel"}),
            reason=REASON,
        )
        insert(
            "INSERT INTO aid_request_event (id, aid_request_id, to_status, occurred_at,"
            " actor_is_youth, on_behalf_of_youth, reason, created_at, modified_at) VALUES"
            " (:e, :r, 'refusee', :now, false, false, :reason, :now, :now)",
            reason=REASON,
        )
        insert(
            "INSERT INTO message_thread (id, youth_id, subject, created_at, modified_at)"
            " VALUES (:t, :y, 'Votre suivi', :now, :now)"
        )
        insert(
            "INSERT INTO message (id, thread_id, on_behalf_of_youth, body, sent_at, created_at,"
            " modified_at) VALUES (:m, :t, false, :body, :now, :now, :now)",
            body=MESSAGE,
        )
        for key, status in (("s", "sent"), ("q", "queued")):
            insert(
                "INSERT INTO outbox_message (id, idempotency_key, channel, recipient, youth_id,"
                " template, language, body_text, is_urgent, respects_quiet_hours, status,"
                " attempt_count, created_at, modified_at) VALUES"
                " (:row_id, :key, 'sms', '+33639980001', :y, 'sign_in_code', 'fr',"
                " 'Votre code : 482913', true, false, :status, 0, :now, :now)",
                row_id=hexes[key],
                key=f"k-{key}",
                status=status,
            )
        insert(
            "INSERT INTO audit_event (id, occurred_at, action, youth_id, on_behalf_of_youth,"
            " ip_address, detail, created_at, modified_at) VALUES"
            " (:a, :now, 'youth.view', :y, false, '203.0.113.77', '{}', :now, :now)"
        )

    _migrate(blank_engine, "head")

    with make_session_factory(blank_engine)() as session:
        # Nothing referencing the rebuilt tables was lost (SQLite rebuilds them).
        for table in ("aid_request", "aid_request_event", "message_thread", "message"):
            count = session.execute(text(f"SELECT count(*) FROM {table}")).scalar()  # noqa: S608
            assert count == 1, table
        assert session.execute(text("SELECT count(*) FROM outbox_message")).scalar() == 2
        for table, column, value in _every_raw_value(session):
            for secret in (REASON, MESSAGE, "61234", "Une nuit", "482913", "203.0.113.77"):
                assert secret not in str(value), (table, column)
        youth = session.get_one(Youth, youth_id)
        assert youth.former_unaccompanied_minor is True and youth.has_family_support is False
        assert youth.housing_situation is HousingSituation.STREET
        assert youth.monthly_income_cents == 61234
        request = session.get_one(AidRequest, request_id)
        assert request.form_data == {"besoin": "Une nuit d’hôtel"}
        assert request.decision_reason == REASON
        assert session.scalars(select(AidRequestEvent.reason)).one() == REASON
        assert session.scalars(select(Message.body)).one() == MESSAGE
        # A message already sent loses its code; one still to send keeps it, encrypted.
        assert session.get_one(OutboxMessage, sent_id).body_text == outbox.ERASED
        assert session.get_one(OutboxMessage, queued_id).body_text == "Votre code : 482913"
        assert session.execute(text("SELECT ip_address FROM audit_event")).scalar() == (
            "203.0.113.0/24"
        )


def test_a_note_to_the_youth_on_an_appointment_is_encrypted_and_the_migration_keeps_it(
    blank_engine: Engine,
) -> None:
    note = "Apportez votre titre de séjour, on le photocopie ensemble."
    _migrate(blank_engine, "head")
    with make_session_factory(blank_engine).begin() as session:
        youth = create_youth(session)
        referent = create_staff(session)
        appointment_id = create_appointment(
            session, youth, referent, datetime(2026, 12, 7, 9, 0, tzinfo=UTC), note_for_youth=note
        ).id

    def raw() -> str:
        with blank_engine.connect() as connection:
            return str(
                connection.execute(
                    text("SELECT note_for_youth FROM appointment WHERE id = :id"),
                    {
                        "id": appointment_id.hex
                        if blank_engine.dialect.name == "sqlite"
                        else str(appointment_id)
                    },
                ).scalar_one()
            )

    assert note not in raw() and raw().startswith("gAAAAA")  # a Fernet token
    # Before this revision: the note in clear, as it was; up again: encrypted, and read back.
    _downgrade(blank_engine, "3789f6d4a0b4")
    assert raw() == note
    _migrate(blank_engine, "head")
    assert note not in raw()
    with make_session_factory(blank_engine)() as session:
        assert session.get_one(Appointment, appointment_id).note_for_youth == note


def _downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
