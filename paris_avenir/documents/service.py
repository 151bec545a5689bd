"""The youth's document vault: add once, reuse for several requests."""

from __future__ import annotations

import hashlib
import uuid
from datetime import date

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests.models import AidRequest, RequestStatus, aid_request_document
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
    """Raises RefusedFile (with the reason to show) before anything is stored."""
    checked = check_upload(content, size=size)
    key = store.new_key()
    store.write(key, checked.content)
    try:
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
    except Exception:
        store.delete(key)
        raise
    return document


def youth_documents(session: Session, youth_id: uuid.UUID) -> list[Document]:
    return list(
        session.scalars(
            select(Document)
            .where(Document.youth_id == youth_id)
            .order_by(Document.created_at.desc())
        )
    )


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


def is_in_use(session: Session, document: Document) -> bool:
    """Attached to a request that left the draft stage: the référent relies on it."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    aid_request_document.c.document_id == document.id,
                    aid_request_document.c.aid_request_id == AidRequest.id,
                    AidRequest.status != RequestStatus.DRAFT,
                )
            )
        )
    )


def delete_document(session: Session, store: DocumentStore, document: Document) -> bool:
    if is_in_use(session, document):
        return False
    session.execute(
        aid_request_document.delete().where(aid_request_document.c.document_id == document.id)
    )
    session.delete(document)
    session.flush()
    store.delete(document.storage_key)
    return True


def rotate_all(session: Session, store: DocumentStore) -> int:
    """Re-encrypt every stored document with the newest key."""
    count = 0
    for key in session.scalars(select(Document.storage_key)):
        if store.exists(key):
            store.rotate(key)
            count += 1
    return count
