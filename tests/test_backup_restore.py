"""Backup and restore, done as docs/operations.md says, with the real tools (pg_dump,
pg_restore, SQLite's backup API, rsync): deploy/backup.sh while the platform runs (a
transaction still open), the original database and upload directory then dropped,
deploy/restore.sh into a fresh database and a fresh upload directory with the key list, and
the platform started on what came back: the youth's document downloads byte for byte, the
youth signs in with a code, the référent with a password and TOTP.

Restored without the key list, nothing is readable, and everyone is told so clearly: the
restore script stops with the reason, and the platform answers "Service indisponible" with a
log line naming the keys, never a 500.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyotp
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy import make_url, text
from sqlalchemy.orm import Session

from paris_avenir.app import create_app
from paris_avenir.auth import sessions
from paris_avenir.auth.models import AuthMethod
from paris_avenir.auth.staff_local import create_staff
from paris_avenir.config import Settings
from paris_avenir.db import create_database_engine, make_session_factory
from paris_avenir.documents.models import DocumentKind
from paris_avenir.documents.service import read_back_all
from paris_avenir.migrate import upgrade_to_head
from paris_avenir.staff.models import StaffRole
from tests.conftest import BACKENDS, POSTGRES_URL_ENV, skip_or_fail
from tests.factories import TEST_FERNET_KEY, assign, create_document, create_youth, jpeg_bytes
from tests.helpers import code_in, last_sms, post_form

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SECRET = "backup-restore-test-secret-" + "s" * 32
# Rotated once: the newest key first, the older one still decrypting what it wrote.
OLD_KEY = Fernet.generate_key().decode()
KEYS = f"{TEST_FERNET_KEY},{OLD_KEY}"
PHONE, E164 = "06 39 98 00 47", "+33639980047"
STAFF_EMAIL, PASSWORD = "awa.diallo@example.org", "correct horse battery staple"


@dataclass(frozen=True)
class Backup:
    folder: Path
    youth_id: uuid.UUID
    document_id: uuid.UUID
    document: bytes  # what the youth downloaded before the backup
    totp_secret: str
    new_database: Callable[[str], str]  # a fresh, empty database's URL


def _environment(url: str, uploads: Path, *, keys: str | None) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PARIS_AVENIR_")}
    environment.update(
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        PARIS_AVENIR_ENV="prod",
        PARIS_AVENIR_SECRET_KEY=SECRET,
        PARIS_AVENIR_DATABASE_URL=url,
        PARIS_AVENIR_UPLOAD_DIR=str(uploads),
        PARIS_AVENIR_CLI=str(BIN / "paris-avenir"),
    )
    if keys is not None:
        environment["PARIS_AVENIR_ENCRYPTION_KEYS"] = keys
    return environment


def _run(
    script: str, argument: Path, environment: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "deploy" / script), str(argument)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _settings(url: str, directory: Path, *, keys: str) -> Settings:
    # dev: the test client speaks plain HTTP (prod's cookies are Secure); the keys are set
    # explicitly, as prod requires, so nothing is derived from the secret.
    return Settings(
        env="dev",
        secret_key=SECRET,
        encryption_keys=keys,
        database_url=url,
        upload_dir=directory / "uploads",
        sms_file=directory / "sms.jsonl",
        smtp_url="smtp://127.0.0.1:9",
    )


@asynccontextmanager
async def _platform(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    engine = create_database_engine(settings.database_url)
    app = create_app(settings, engine=engine)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    finally:
        engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def databases(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], str]]:
    """new_database(name): the URL of a database that does not exist yet (SQLite) or was just
    created empty (PostgreSQL, beside the tests' database, dropped at the end)."""
    if request.param == "sqlite":
        folder = tmp_path_factory.mktemp("sqlite")
        yield lambda name: f"sqlite:///{folder / name}.sqlite3"
        return
    for tool in ("pg_dump", "pg_restore", "rsync"):
        if shutil.which(tool) is None:
            skip_or_fail(f"the backup test needs Debian's {tool}")
    base = os.environ.get(POSTGRES_URL_ENV)
    if not base:
        skip_or_fail(f"the PostgreSQL backup test needs {POSTGRES_URL_ENV}")
    parsed = make_url(str(base))
    admin = create_database_engine(str(base), isolation_level="AUTOCOMMIT")
    created: list[str] = []

    def new_database(name: str) -> str:
        database = f"{parsed.database}_{name}"
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{database}"'))
        created.append(database)
        return parsed.set(database=database).render_as_string(hide_password=False)

    try:
        yield new_database
    finally:
        with admin.connect() as connection:
            for database in created:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


def _drop(url: str, new_database: Callable[[str], str]) -> None:
    """Forget the original: its database gone (recreated empty, then dropped at the end)."""
    if url.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm"):
            Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    else:
        new_database("source")


@pytest.fixture(scope="module")
def backup(databases: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory) -> Backup:
    """The platform's data (a youth with a document, her référent), backed up by
    deploy/backup.sh while a transaction is still open, then the original forgotten."""
    directory = tmp_path_factory.mktemp("source")
    url = databases("source")
    settings = _settings(url, directory, keys=KEYS)
    engine = create_database_engine(url)
    upgrade_to_head(engine)
    app = create_app(settings, engine=engine)
    with make_session_factory(engine).begin() as session:
        referent = create_staff(
            session,
            app.state.cipher,
            email=STAFF_EMAIL,
            full_name="Awa Diallo",
            role=StaffRole.REFERENT,
            password=PASSWORD,
        )
        youth = create_youth(
            session, first_name="Moussa", phone=E164, former_unaccompanied_minor=True
        )
        assign(session, youth, referent.staff)
        photo = create_document(
            session,
            app.state.document_store,
            youth,
            DocumentKind.PHOTO,
            filename="photo.jpg",
            content=jpeg_bytes((64, 48)),
        )

    async def download() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await _sign_in_youth(client, settings)
            return await client.get(f"/mon-espace/documents/{photo.id}")

    downloaded = asyncio.run(download())  # a module's fixture: outside any test's loop
    assert downloaded.status_code == 200

    # Someone is writing while the backup runs: what is not committed is not in it.
    writing = engine.connect()
    writing.begin()
    writing.execute(
        text("UPDATE youth SET first_name = 'Pas encore enregistré' WHERE id = :id"),
        {"id": youth.id if url.startswith("postgres") else youth.id.hex},
    )
    folder = directory / "backup"
    made = _run("backup.sh", folder, _environment(url, settings.upload_dir, keys=None))
    writing.rollback()
    writing.close()
    engine.dispose()
    assert made.returncode == 0, made.stderr
    assert "1 document files" in made.stdout

    # The key list never goes into a backup.
    every_byte = b"".join(path.read_bytes() for path in folder.rglob("*") if path.is_file())
    for key in KEYS.split(","):
        assert key.encode() not in every_byte
    assert downloaded.content not in every_byte  # the document only encrypted

    _drop(url, databases)
    shutil.rmtree(settings.upload_dir)
    totp = pyotp.parse_uri(referent.totp_uri).secret
    return Backup(folder, youth.id, photo.id, downloaded.content, totp, databases)


async def _sign_in_youth(client: httpx.AsyncClient, settings: Settings) -> httpx.Response:
    asked = await post_form(client, "/connexion", {"destination": PHONE})
    assert asked.status_code == 303, asked.text
    return await post_form(client, "/connexion/code", {"code": code_in(last_sms(settings)["text"])})


def _restore(
    backup: Backup, directory: Path, *, keys: str | None
) -> tuple[Settings, subprocess.CompletedProcess[str]]:
    url = backup.new_database(f"restored_{directory.name}")
    settings = _settings(url, directory, keys=keys or "")
    restored = _run("restore.sh", backup.folder, _environment(url, settings.upload_dir, keys=keys))
    return settings, restored


async def test_a_restored_backup_serves_the_documents_and_signs_people_in(
    backup: Backup, tmp_path: Path
) -> None:
    settings, restored = _restore(backup, tmp_path, keys=KEYS)
    assert restored.returncode == 0, restored.stderr
    assert "Documents relus à l’identique : 1 sur 1." in restored.stdout

    async with _platform(settings) as youth_client:
        ready = await youth_client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ok"
        signed_in = await _sign_in_youth(youth_client, settings)
        assert signed_in.headers["location"] == "/mon-espace"
        space = await youth_client.get("/mon-espace")
        # The name as committed before the backup, not the transaction left open during it.
        assert "Bonjour Moussa" in space.text
        document = await youth_client.get(f"/mon-espace/documents/{backup.document_id}")
        assert document.status_code == 200
        assert document.content == backup.document

    async with _platform(settings) as staff_client:
        code = pyotp.TOTP(backup.totp_secret).now()
        staff = await post_form(
            staff_client,
            "/pro/connexion",
            {"email": STAFF_EMAIL, "password": PASSWORD, "totp": code},
        )
        assert staff.status_code == 303 and staff.headers["location"] == "/pro"
        page = await staff_client.get("/pro")
        assert page.status_code == 200 and "Moussa" in page.text


async def test_restored_without_the_key_list_the_restore_stops_and_says_why(
    backup: Backup, tmp_path: Path
) -> None:
    if not (backup.folder / "database.sqlite3").exists():
        pytest.skip("the settings refuse before any database is read: SQLite shows it")
    _settings_unused, restored = _restore(backup, tmp_path, keys=None)
    assert restored.returncode == 2
    assert "PARIS_AVENIR_ENCRYPTION_KEYS is missing" in restored.stderr
    assert "Traceback" not in restored.stderr


async def test_restored_with_other_keys_nothing_is_read_and_nothing_crashes(
    backup: Backup, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    other = Fernet.generate_key().decode()  # e.g. a new key made because the list was lost
    settings, restored = _restore(backup, tmp_path, keys=other)
    assert restored.returncode == 1
    assert "Documents relus à l’identique : 0 sur 1." in restored.stdout
    assert "aucune clé de PARIS_AVENIR_ENCRYPTION_KEYS ne les déchiffre) : 1" in restored.stderr
    assert "youth.former_unaccompanied_minor" in restored.stderr
    assert "Traceback" not in restored.stderr

    async with _platform(settings) as client:
        # Signed in (a session made directly; asking for a code reads no encrypted column),
        # neither the encrypted facts of the file nor the document can be read.
        engine = create_database_engine(settings.database_url)
        with make_session_factory(engine).begin() as session:
            token = sessions.start_session(
                session, youth_id=backup.youth_id, staff_id=None, method=AuthMethod.CODE
            ).token
        engine.dispose()
        client.cookies.set(settings.session_cookie_name, token)
        with caplog.at_level(logging.ERROR):
            rights = await client.get("/mon-espace/droits")  # eligibility reads them
        assert rights.status_code == 503 and "Service indisponible" in rights.text
        assert "does not decrypt with PARIS_AVENIR_ENCRYPTION_KEYS" in caplog.text
        document = await client.get(f"/mon-espace/documents/{backup.document_id}")
        assert document.status_code == 503 and "Service indisponible" in document.text
        assert backup.document not in document.content
        assert (await client.get("/healthz")).status_code == 200  # the server still answers


def test_the_sqlite_copy_is_a_database_of_its_own(backup: Backup) -> None:
    """The online copy is a whole database, not a file that needs its write-ahead log."""
    if not (backup.folder / "database.sqlite3").exists():
        pytest.skip("PostgreSQL: the dump is checked by pg_restore")
    with sqlite3.connect(backup.folder / "database.sqlite3") as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert copy.execute("SELECT count(*) FROM document").fetchone() == (1,)


def test_check_data_names_each_document_that_did_not_come_back(
    app: FastAPI, session: Session
) -> None:
    store = app.state.document_store
    youth = create_youth(session)
    kept, lost, swapped, foreign = (
        create_document(session, store, youth, DocumentKind.PHOTO, content=jpeg_bytes((8 + n, 8)))
        for n in range(4)
    )
    session.commit()
    store._path(lost.storage_key).unlink()
    # A file that decrypts, but to other bytes than the ones uploaded (another document's).
    store._path(swapped.storage_key).write_bytes(store._path(kept.storage_key).read_bytes())
    other = Fernet(Fernet.generate_key())
    store._path(foreign.storage_key).write_bytes(other.encrypt(b"not under our keys"))

    report = read_back_all(session, store)
    assert (report.readable, report.missing, report.altered, report.undecryptable) == (
        1,
        [lost.id],
        [swapped.id],
        [foreign.id],
    )
    assert not report.sound
