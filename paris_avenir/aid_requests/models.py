from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, String, Table, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from paris_avenir.db import Base, RecordMixin, UTCDateTime, str_enum
from paris_avenir.documents.models import Document
from paris_avenir.kit.crypto import EncryptedJSON, EncryptedText


class AidCode(enum.StrEnum):
    ALLOCATION = "allocation"
    BOURSE = "bourse"
    LOGEMENT = "logement"
    GARANTIE_FSL = "garantie_fsl"
    NAVIGO = "navigo"
    PSYCHOLOGUE = "psychologue"
    PREMIER_EMPLOI = "premier_emploi"
    GUICHET = "guichet"
    AIDE_URGENCE = "aide_urgence"


class RequestStatus(enum.StrEnum):
    """The life cycle of PRODUCT.md; withdrawn is the youth's own way out."""

    DRAFT = "brouillon"
    SUBMITTED = "deposee"
    UNDER_REVIEW = "en_instruction"
    MISSING_DOCUMENTS = "pieces_manquantes"
    GRANTED = "accordee"
    REFUSED = "refusee"
    PAID = "versee"
    RENEWAL_DUE = "a_renouveler"
    WITHDRAWN = "retiree"
    # Granted by one référent, waiting for a second person (supervisor) to confirm.
    TO_CONFIRM = "a_confirmer"


# Filed and not decided, with nothing asked of the youth: the next move is the staff's.
WAITING_ON_STAFF = (
    RequestStatus.SUBMITTED,
    RequestStatus.UNDER_REVIEW,
    RequestStatus.TO_CONFIRM,
)


class Aid(RecordMixin, Base):
    """An aid of the catalogue and the parameters an admin may change (amounts, ages)."""

    __tablename__ = "aid"

    code: Mapped[AidCode] = mapped_column(str_enum(AidCode, "aid_code"), unique=True)
    is_open: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


aid_request_document = Table(
    "aid_request_document",
    Base.metadata,
    Column("aid_request_id", ForeignKey("aid_request.id", ondelete="CASCADE"), primary_key=True),
    Column("document_id", ForeignKey("document.id", ondelete="CASCADE"), primary_key=True),
)


class AidRequest(RecordMixin, Base):
    __tablename__ = "aid_request"
    __table_args__ = (Index("ix_aid_request_status_submitted_at", "status", "submitted_at"),)

    youth_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("youth.id", ondelete="CASCADE"), index=True
    )
    aid_code: Mapped[AidCode] = mapped_column(str_enum(AidCode, "aid_code"))
    status: Mapped[RequestStatus] = mapped_column(
        str_enum(RequestStatus, "request_status"), default=RequestStatus.DRAFT
    )
    # The youth's answers, encrypted at rest (kit.crypto) like the decision's reason.
    form_data: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON(), default=dict)
    current_step: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    granted_amount_cents: Mapped[int | None]
    # Written for the youth to read, in plain French.
    decision_reason: Mapped[str | None] = mapped_column(EncryptedText())
    renewal_due_on: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Counter mode: the référent who filed it on the youth's behalf.
    filed_by_staff_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"))
    # A grant waiting for a second person: who granted it and the amount they chose.
    proposed_by_staff_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"))
    proposed_amount_cents: Mapped[int | None]
    # The code printed on the grant's attestation, that /verifier/{code} confirms: made at
    # the first download, then the same on every copy (aid_requests/attestation.py).
    attestation_code: Mapped[str | None] = mapped_column(String(12), unique=True, index=True)

    events: Mapped[list[AidRequestEvent]] = relationship(
        back_populates="aid_request", lazy="raise", order_by="AidRequestEvent.occurred_at"
    )
    documents: Mapped[list[Document]] = relationship(
        secondary=aid_request_document, lazy="raise", order_by="Document.created_at"
    )

    @property
    def reference(self) -> str:
        """What a youth reads out on the phone: "D-3F9A2C"."""
        return "D-" + self.id.hex[:6].upper()


class AidRequestEvent(RecordMixin, Base):
    """One transition of a request: who, when, why."""

    __tablename__ = "aid_request_event"

    aid_request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("aid_request.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[RequestStatus | None] = mapped_column(
        str_enum(RequestStatus, "from_status")
    )
    to_status: Mapped[RequestStatus] = mapped_column(str_enum(RequestStatus, "to_status"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_staff_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"))
    actor_is_youth: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    on_behalf_of_youth: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    reason: Mapped[str | None] = mapped_column(EncryptedText())

    aid_request: Mapped[AidRequest] = relationship(back_populates="events", lazy="raise")
