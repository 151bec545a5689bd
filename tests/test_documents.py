"""The document vault: files checked by their content, encrypted at rest, refused clearly."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet, MultiFernet
from fastapi import FastAPI
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from paris_avenir.audit.models import AuditEvent
from paris_avenir.documents import service as documents
from paris_avenir.documents.models import Document, DocumentKind
from paris_avenir.documents.storage import DocumentStore
from paris_avenir.staff.models import StaffRole
from paris_avenir.youths.models import Youth
from tests.factories import (
    PDF_BYTES,
    assign,
    create_aid_request,
    create_document,
    create_staff,
    create_youth,
    jpeg_bytes,
)
from tests.helpers import csrf_token, sign_in_as


@pytest.fixture
def youth(app: FastAPI, client: httpx.AsyncClient, session: Session) -> Youth:
    youth = create_youth(session, first_name="Mariam")
    session.commit()
    sign_in_as(client, app, session, youth=youth)
    return youth


async def upload(
    client: httpx.AsyncClient, content: bytes, filename: str, kind: str = "identite"
) -> httpx.Response:
    token = await csrf_token(client)
    return await client.post(
        "/mon-espace/documents",
        data={"csrftoken": token, "type_document": kind},
        files={"fichier": (filename, content, "application/octet-stream")},
    )


def stored(session: Session, app: FastAPI) -> tuple[int, int]:
    rows = session.scalar(select(func.count()).select_from(Document)) or 0
    store: DocumentStore = app.state.document_store
    return rows, store.count_files()


async def test_a_photo_is_stored_encrypted_and_without_its_gps_position(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    response = await upload(client, jpeg_bytes(gps=True), "IMG_2041.JPG")
    assert response.status_code == 303
    document = session.scalars(select(Document)).one()
    assert document.content_type == "image/jpeg" and document.youth_id == youth.id
    store: DocumentStore = app.state.document_store
    on_disk = next(path for path in Path(store.directory).rglob("*") if path.is_file()).read_bytes()
    assert not on_disk.startswith(b"\xff\xd8") and b"JFIF" not in on_disk  # encrypted

    downloaded = await client.get(f"/mon-espace/documents/{document.id}")
    assert downloaded.status_code == 200
    assert downloaded.headers["content-type"] == "image/jpeg"
    assert downloaded.headers["content-disposition"].startswith("attachment;")
    assert downloaded.headers["cache-control"] == "no-store"
    image = Image.open(io.BytesIO(downloaded.content))
    assert 0x8825 not in image.getexif()  # no GPS block any more


async def test_a_document_whose_file_is_lost_says_so_instead_of_failing(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    assert (await upload(client, PDF_BYTES, "rib.pdf", "rib")).status_code == 303
    document = session.scalars(select(Document)).one()
    store: DocumentStore = app.state.document_store
    for path in Path(store.directory).rglob("*"):
        if path.is_file():
            path.unlink()  # a disk restored from an older backup
    page = await client.get(f"/mon-espace/documents/{document.id}")
    assert page.status_code == 410
    assert "Ce document n’est plus disponible" in page.text
    assert "Ajoutez-le de nouveau dans « Mes documents »" in page.text


async def test_an_iphone_heic_photo_is_converted_to_jpeg(
    client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    photo = (Path(__file__).parent / "data" / "photo.heic").read_bytes()  # 64 × 48, libheif
    response = await upload(client, photo, "IMG_0001.HEIC")
    assert response.status_code == 303
    assert session.scalars(select(Document.content_type)).one() == "image/jpeg"


async def test_a_pdf_is_accepted(client: httpx.AsyncClient, session: Session, youth: Youth) -> None:
    assert (await upload(client, PDF_BYTES, "rib.pdf", "rib")).status_code == 303
    assert session.scalars(select(Document.content_type)).one() == "application/pdf"


@pytest.mark.parametrize(
    ("content", "filename", "message"),
    [
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 200, "facture.pdf", "ni un PDF, ni une photo"),
        (b"MZ\x90\x00" + b"\x00" * 200, "photo.jpg", "ni un PDF, ni une photo"),
        (b"", "vide.pdf", "Le fichier est vide"),
        (b"%PDF-1.4\n" + b"0" * (30 * 1024 * 1024), "scan.pdf", "trop lourd (30 Mo)"),
        (b"\xff\xd8\xff\xe0 not really a jpeg", "abime.jpg", "abîmée ou illisible"),
    ],
)
async def test_bad_files_are_refused_in_french_and_nothing_is_stored(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    youth: Youth,
    content: bytes,
    filename: str,
    message: str,
) -> None:
    response = await upload(client, content, filename)
    assert response.status_code == 422
    assert message in response.text
    assert 'aria-invalid="true"' in response.text
    assert stored(session, app) == (0, 0)


async def test_a_youth_cannot_open_another_youths_document(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    other = create_youth(session)
    theirs = create_document(session, app.state.document_store, other, DocumentKind.IDENTITY)
    session.commit()
    assert (await client.get(f"/mon-espace/documents/{theirs.id}")).status_code == 404


async def test_a_document_used_by_a_sent_request_cannot_be_deleted(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    from paris_avenir.aid_requests.models import (
        AidCode,
        RequestStatus,
        aid_request_document,
    )

    used = create_document(session, app.state.document_store, youth, DocumentKind.BANK_DETAILS)
    free = create_document(session, app.state.document_store, youth, DocumentKind.CV)
    request = create_aid_request(
        session, youth, aid_code=AidCode.AIDE_URGENCE, status=RequestStatus.SUBMITTED
    )
    session.flush()
    session.execute(
        aid_request_document.insert().values(aid_request_id=request.id, document_id=used.id)
    )
    session.commit()
    token = await csrf_token(client)
    refused = await client.post(
        f"/mon-espace/documents/{used.id}/supprimer", data={"csrftoken": token}
    )
    assert refused.status_code == 409 and "sert pour une demande envoyée" in refused.text
    deleted = await client.post(
        f"/mon-espace/documents/{free.id}/supprimer", data={"csrftoken": token}
    )
    assert deleted.status_code == 303
    assert {document.id for document in session.scalars(select(Document))} == {used.id}
    assert not app.state.document_store.exists(free.storage_key)


def test_keys_rotate_without_losing_a_document(tmp_path: Path, session: Session) -> None:
    youth = create_youth(session)
    old_key, new_key = Fernet.generate_key(), Fernet.generate_key()
    old_store = DocumentStore(tmp_path, MultiFernet([Fernet(old_key)]))
    document = create_document(session, old_store, youth, DocumentKind.IDENTITY)
    session.commit()
    stored_pdf = old_store.read(document.storage_key)
    both = DocumentStore(tmp_path, MultiFernet([Fernet(new_key), Fernet(old_key)]))
    assert documents.rotate_all(session, both) == 1
    only_new = DocumentStore(tmp_path, MultiFernet([Fernet(new_key)]))
    assert only_new.read(document.storage_key) == stored_pdf


async def test_staff_downloads_are_scoped_and_audited(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    youth = create_youth(session)
    referent, stranger = (
        create_staff(session, StaffRole.REFERENT),
        create_staff(session, StaffRole.REFERENT),
    )
    assign(session, youth, referent)
    document = create_document(session, app.state.document_store, youth, DocumentKind.IDENTITY)
    session.commit()
    url = f"/pro/jeunes/{youth.id}/documents/{document.id}"

    sign_in_as(client, app, session, staff=stranger)
    assert (await client.get(url)).status_code == 404
    client.cookies.clear()
    sign_in_as(client, app, session, staff=referent)
    response = await client.get(url)
    assert response.status_code == 200
    assert response.content == app.state.document_store.read(document.storage_key)
    assert response.content.startswith(b"%PDF-")
    actions = list(
        session.scalars(select(AuditEvent.action).where(AuditEvent.youth_id == youth.id))
    )
    assert actions == ["document.download"]
    assert (await client.get(f"/pro/jeunes/{youth.id}/documents/{youth.id}")).status_code == 404


def test_the_rotation_command_re_encrypts_every_document(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from paris_avenir.config import Settings
    from paris_avenir.db import create_database_engine, make_session_factory
    from paris_avenir.kit.crypto import configure_at_rest
    from paris_avenir.migrate import upgrade_to_head

    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    database = f"sqlite:///{tmp_path / 'rotate.sqlite3'}"
    engine = create_database_engine(database)
    upgrade_to_head(engine)
    # The youth's encrypted columns too are under the old key, as in a real deployment.
    configure_at_rest(Settings(encryption_keys=old_key), engine)
    store = DocumentStore(tmp_path / "uploads", MultiFernet([Fernet(old_key)]))
    with make_session_factory(engine).begin() as session:
        document = create_document(session, store, create_youth(session), DocumentKind.IDENTITY)
        key = document.storage_key
    stored_pdf = store.read(key)
    engine.dispose()
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
    assert "rechiffrés avec la clé la plus récente : 1" in completed.stdout
    assert (
        DocumentStore(tmp_path / "uploads", MultiFernet([Fernet(new_key)])).read(key) == stored_pdf
    )
