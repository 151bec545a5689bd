from __future__ import annotations

import enum
import uuid
from datetime import date

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from paris_avenir.db import Base, RecordMixin, str_enum


class DocumentKind(enum.StrEnum):
    IDENTITY = "identite"
    RESIDENCE_PERMIT = "titre_sejour"
    BANK_DETAILS = "rib"
    RESOURCES = "ressources"
    SCHOOL_CERTIFICATE = "certificat_scolarite"
    CROUS_NOTIFICATION = "notification_crous"
    LEASE = "bail"
    PHOTO = "photo"
    CV = "cv"
    OTHER = "autre"


class Document(RecordMixin, Base):
    """A file in the youth's vault, stored encrypted outside the web root."""

    __tablename__ = "document"

    youth_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("youth.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[DocumentKind] = mapped_column(str_enum(DocumentKind, "document_kind"))
    original_filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    # Unguessable name of the encrypted file under the upload directory.
    storage_key: Mapped[str] = mapped_column(String(64), unique=True)
    expires_on: Mapped[date | None]
    uploaded_by_staff_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"))
