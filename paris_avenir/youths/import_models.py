"""A checked import waiting for its confirmation: the file as it was checked (encrypted, the
browser never sends it twice), what the dry run showed, and whether it was used."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from paris_avenir.db import Base, RecordMixin, UTCDateTime


class ImportPreview(RecordMixin, Base):
    """One dry run of the ASE import whose changes to youths already followed (phone, email,
    référent) wait for the importer's explicit confirmation. Used once: the confirmation
    sets `confirmed_at` with a conditional UPDATE, and clears the file."""

    __tablename__ = "import_preview"

    staff_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"), index=True)
    # SHA-256 of the random token the confirmation form carries; the token itself is never kept.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # SHA-256 of the file and keyed hash of the changes the dry run listed: the confirmation
    # applies exactly these, or nothing.
    content_sha256: Mapped[str] = mapped_column(String(64))
    plan_digest: Mapped[str] = mapped_column(String(64))
    # The file, encrypted with the platform's data key; emptied once confirmed.
    content_encrypted: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
