from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from paris_avenir.db import Base, RecordMixin, UTCDateTime, str_enum


class StaffRole(enum.StrEnum):
    REFERENT = "referent"
    PSYCHOLOGIST = "psychologue"
    SUPERVISOR = "superviseur"
    ADMIN = "admin"


class Team(RecordMixin, Base):
    __tablename__ = "team"

    name: Mapped[str] = mapped_column(String(120), unique=True)


class StaffUser(RecordMixin, Base):
    __tablename__ = "staff_user"

    email: Mapped[str] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[StaffRole] = mapped_column(str_enum(StaffRole, "staff_role"))
    team_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("team.id"), index=True)
    work_phone: Mapped[str | None] = mapped_column(String(20))
    is_active: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    # Local accounts: argon2 hash and TOTP secret (encrypted at rest); OIDC accounts: subject.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    totp_secret_encrypted: Mapped[str | None] = mapped_column(String(255))
    oidc_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    # Last TOTP time step accepted: a code cannot be replayed within its window.
    totp_last_step: Mapped[int | None]
    failed_sign_in_count: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Private calendar feed: the URL holds a random token, only its hash is stored;
    # issuing a new one revokes the old URL.
    calendar_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)

    team: Mapped[Team | None] = relationship(lazy="raise")


class CaseloadAssignment(RecordMixin, Base):
    """A youth followed by a référent, from started_at until ended_at (history kept)."""

    __tablename__ = "caseload_assignment"
    __table_args__ = (
        # At most one current référent per youth.
        Index(
            "uq_caseload_assignment_current_youth",
            "youth_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
            sqlite_where=text("ended_at IS NULL"),
        ),
        Index("ix_caseload_assignment_referent_current", "referent_id", "ended_at"),
    )

    youth_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("youth.id", ondelete="CASCADE"))
    referent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    assigned_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"))
    reason: Mapped[str | None] = mapped_column(String(500))

    referent: Mapped[StaffUser] = relationship(foreign_keys=[referent_id], lazy="raise")


class CounterSession(RecordMixin, Base):
    """Counter mode ("mode guichet"): a staff member acts for a youth who is present and
    agreed. Every action taken under it is marked as done for the youth."""

    __tablename__ = "counter_session"

    staff_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id"), index=True)
    youth_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("youth.id", ondelete="CASCADE"), index=True
    )
    consent_recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
