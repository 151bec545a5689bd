"""The youth's document vault: add once, reuse for several requests."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from cryptography.fernet import InvalidToken
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from paris_avenir.documents.models import Document, DocumentKind
from paris_avenir.documents.storage import DocumentStore
from paris_avenir.documents.validation import check_upload
from paris_avenir.web.i18n import N_, gettext

KIND_LABELS: dict[DocumentKind, str] = {
    DocumentKind.IDENTITY: N_("Pièce d’identité"),
    DocumentKind.RESIDENCE_PERMIT: N_("Titre de séjour"),
    DocumentKind.BANK_DETAILS: N_("RIB (relevé d’identité bancaire)"),
    DocumentKind.RESOURCES: N_("Justificatif de ressources (fiches de paie, attestation…)"),
    DocumentKind.SCHOOL_CERTIFICATE: N_("Certificat de scolarité"),
    DocumentKind.CROUS_NOTIFICATION: N_("Notification du CROUS"),
    DocumentKind.LEASE: N_("Bail ou projet de bail"),
    DocumentKind.PHOTO: N_("Photo d’identité"),
    DocumentKind.CV: N_("CV"),
    DocumentKind.OTHER: N_("Autre document"),
}
# Identity papers expire: the vault says so, and the youth is asked for the date.
EXPIRING_KINDS = {DocumentKind.IDENTITY, DocumentKind.RESIDENCE_PERMIT}


def kind_label(kind: DocumentKind) -> str:
    return gettext(KIND_LABELS[kind])


def _display_name(filename: str) -> str:
    name = "".join(char for char in filename if char.isprintable()).strip()
    return name[-120:] or "document"


def add_document(
    session: Session,
    store: DocumentStore,
    *,
    youth_id: uuid.UUID,
    kind: DocumentKind,
    filename: str,
    content: bytes,
    size: int | None = None,
    expires_on: date | None = None,
    uploaded_by_staff_id: uuid.UUID | None = None,
) -> Document:
    """Raises RefusedFile (with the reason to show) before anything is stored.

    The file is written under a temporary name and takes its real one when the caller's
    transaction commits (see storage.py): a failed commit leaves neither file nor row."""
    checked = check_upload(content, size=size, scanner=store.scanner)
    key = store.new_key()
    store.stage(session, key, checked.content)  # a full disk stops here, before any row
    document = Document(
        youth_id=youth_id,
        kind=kind,
        original_filename=_display_name(filename),
        content_type=checked.content_type,
        size_bytes=len(checked.content),
        sha256=hashlib.sha256(checked.content).hexdigest(),
        storage_key=key,
        expires_on=expires_on if kind in EXPIRING_KINDS else None,
        uploaded_by_staff_id=uploaded_by_staff_id,
    )
    session.add(document)
    session.flush()
    return document


# Built once: the vault and the staff youth file run it on every view (see auth.sessions).
_YOUTH_DOCUMENTS = (
    select(Document)
    .where(Document.youth_id == bindparam("youth_id"))
    .order_by(Document.created_at.desc())
)


def youth_documents(session: Session, youth_id: uuid.UUID) -> list[Document]:
    return list(session.scalars(_YOUTH_DOCUMENTS, {"youth_id": youth_id}))


def document_of_youth(session: Session, youth_id: uuid.UUID, document_id: str) -> Document | None:
    try:
        parsed = uuid.UUID(document_id)
    except ValueError:
        return None
    return session.scalar(
        select(Document).where(Document.id == parsed, Document.youth_id == youth_id)
    )


def download_name(document: Document) -> str:
    extension = {"application/pdf": "pdf", "image/png": "png"}.get(document.content_type, "jpg")
    return f"{document.kind.value}-{document.created_at:%Y-%m-%d}.{extension}"


def delete_document(session: Session, store: DocumentStore, document: Document) -> None:
    """Deletes the document and, once committed, its file. The caller has checked that no
    request relies on it (aid_requests.service.document_in_use) and detached it."""
    session.delete(document)
    session.flush()
    # Removed once the deletion is committed: a failed commit keeps the row and its file.
    store.delete_after_commit(session, document.storage_key)


def rotate_all(session: Session, store: DocumentStore) -> int:
    """Re-encrypt every stored document with the newest key."""
    count = 0
    for key in session.scalars(select(Document.storage_key)):
        if store.exists(key):
            store.rotate(key)
            count += 1
    return count


@dataclass(frozen=True)
class ReadBackReport:
    readable: int  # decrypted with the configured keys, and the bytes uploaded
    missing: list[uuid.UUID]  # rows whose file is not in the upload directory
    undecryptable: list[uuid.UUID]  # no configured key decrypts the file
    altered: list[uuid.UUID]  # decrypted, but not the bytes recorded at upload

    @property
    def sound(self) -> bool:
        return not (self.missing or self.undecryptable or self.altered)


def read_back_all(session: Session, store: DocumentStore) -> ReadBackReport:
    """Every document read back as a download would, compared with the hash recorded at
    upload: after a restore, proof that the files and the keys came back with the rows."""
    readable = 0
    missing: list[uuid.UUID] = []
    undecryptable: list[uuid.UUID] = []
    altered: list[uuid.UUID] = []
    rows = session.execute(
        select(Document.id, Document.storage_key, Document.sha256).order_by(Document.id)
    )
    for document_id, key, digest in rows:
        try:
            content = store.read(key)
        except FileNotFoundError:
            missing.append(document_id)
        except InvalidToken:
            undecryptable.append(document_id)
        else:
            if hashlib.sha256(content).hexdigest() == digest:
                readable += 1
            else:
                altered.append(document_id)
    return ReadBackReport(readable, missing, undecryptable, altered)


ORPHAN_AGE = timedelta(hours=1)


@dataclass(frozen=True)
class SweepReport:
    removed: int  # files without a row (or staged files of a transaction that never ended)
    moved_into_place: int  # staged files whose row was committed, renamed after a crash
    dangling: list[uuid.UUID]  # rows whose file is gone: the download cannot work


def sweep_orphans(session: Session, store: DocumentStore, *, now: datetime) -> SweepReport:
    """Clean what a crash between a file change and its commit can leave.

    Files are listed before the rows are read, and only files older than an hour are
    touched: an upload in progress, or one committed meanwhile, is never taken for an orphan.
    """
    old_files = [stored for stored in store.files() if stored.modified_at < now - ORPHAN_AGE]
    rows = {
        key: document_id
        for key, document_id in session.execute(select(Document.storage_key, Document.id))
    }
    removed = moved = 0
    for stored in old_files:
        if stored.key in rows and stored.temporary and not store.exists(stored.key):
            store.publish(stored.key)
            moved += 1
        elif stored.key not in rows or stored.temporary:
            store.remove_file(stored)
            removed += 1
    dangling = [document_id for key, document_id in rows.items() if not store.exists(key)]
    return SweepReport(removed=removed, moved_into_place=moved, dangling=sorted(dangling))
