from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from paris_avenir.db import Base, RecordMixin, UTCDateTime, str_enum
from paris_avenir.youths.models import Channel


class OutreachReason(enum.StrEnum):
    INACTIVITY = "inactivite"
    CHECK_IN = "point_regulier"
    DOCUMENTS_AWAITED = "pieces_attendues"
    MISSED_APPOINTMENT = "rdv_manque"
    BIRTHDAY_21 = "anniversaire_21"
    BIRTHDAY_25 = "anniversaire_25"
    ALLOCATION_RENEWAL = "renouvellement_allocation"
    FOLLOW_UP_INTERVIEW = "entretien_6_mois"
    INVITATION = "invitation"
    # A paper in the vault expires (outreach/papers.py): 4, 2 and 1 month before.
    PAPER_EXPIRY = "papier_expire"


class OutreachResponse(enum.StrEnum):
    SIGN_IN = "connexion"
    ALL_GOOD = "tout_va_bien"
    NEEDS_HELP = "besoin_aide"
    MESSAGE = "message"
    BOOKING = "rendez_vous"
    # A person of the team reached the youth (a task closed "joint·e" or "vu·e").
    STAFF_CONTACT = "contact_equipe"


class OutreachAttempt(RecordMixin, Base):
    """One contact of the watch. The unique key makes every step happen at most once."""

    __tablename__ = "outreach_attempt"
    __table_args__ = (UniqueConstraint("youth_id", "reason", "step", "period_key"),)

    youth_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("youth.id", ondelete="CASCADE"), index=True
    )
    reason: Mapped[OutreachReason] = mapped_column(str_enum(OutreachReason, "outreach_reason"))
    step: Mapped[int]
    # What makes a period distinct, e.g. the start of the quiet spell or the birthday year.
    period_key: Mapped[str] = mapped_column(String(40))
    # None when the step is a task for the référent rather than a message.
    channel: Mapped[Channel | None] = mapped_column(str_enum(Channel, "channel"))
    outbox_message_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("outbox_message.id"))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    response: Mapped[OutreachResponse | None] = mapped_column(
        str_enum(OutreachResponse, "outreach_response")
    )
