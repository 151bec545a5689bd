from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, Table, text
from sqlalchemy.orm import Mapped, mapped_column

from paris_avenir.db import Base, RecordMixin, UTCDateTime


class AuditEvent(RecordMixin, Base):
    """An append-only trace of an access or change. Never a phone number, email or code."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_youth_id_occurred_at", "youth_id", "occurred_at"),)

    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    action: Mapped[str] = mapped_column(String(60))  # e.g. youth.view, access_denied
    actor_staff_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"))
    # No foreign keys to youth: the trail must outlive a deleted account, and the log is
    # append-only (database triggers refuse UPDATE, and DELETE outside the retention purge),
    # so nothing may rewrite it.
    actor_youth_id: Mapped[uuid.UUID | None]
    # Whose data it concerns: shown to that youth in "Qui a consulté mon dossier".
    youth_id: Mapped[uuid.UUID | None]
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[uuid.UUID | None]
    on_behalf_of_youth: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    # The network the request came from (203.0.113.0/24, 2001:db8:1::/48), never the address.
    ip_address: Mapped[str | None] = mapped_column(String(45))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# SQLite has no session variables: its trigger lets a DELETE of audit_event through only
# while this table holds a row, which audit.service.purge() inserts and removes within its
# own transaction (so no other connection ever sees it). PostgreSQL uses a transaction-local
# setting instead (function audit_event_purge); the table stays empty there.
audit_purge_permit = Table(
    "audit_purge_permit",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
)
