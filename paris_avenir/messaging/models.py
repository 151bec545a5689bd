from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, String, Table, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from paris_avenir.db import Base, RecordMixin, UTCDateTime, str_enum
from paris_avenir.documents.models import Document
from paris_avenir.kit.crypto import EncryptedText
from paris_avenir.youths.models import Channel


class MessageThread(RecordMixin, Base):
    """A conversation between a youth and their référent: general, or about one request."""

    __tablename__ = "message_thread"

    youth_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("youth.id", ondelete="CASCADE"), index=True
    )
    aid_request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("aid_request.id", ondelete="CASCADE")
    )
    subject: Mapped[str] = mapped_column(String(200))
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


message_attachment = Table(
    "message_attachment",
    Base.metadata,
    Column("message_id", ForeignKey("message.id", ondelete="CASCADE"), primary_key=True),
    Column("document_id", ForeignKey("document.id", ondelete="CASCADE"), primary_key=True),
)


class Message(RecordMixin, Base):
    __tablename__ = "message"
    __table_args__ = (Index("ix_message_thread_id_sent_at", "thread_id", "sent_at"),)

    thread_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("message_thread.id", ondelete="CASCADE")
    )
    # Exactly one author: the youth (author_staff_id empty) or a staff member.
    author_staff_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"))
    on_behalf_of_youth: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    # The youth answered an SMS of ours: the text came by SMS (shown "reçu par SMS").
    received_by_sms: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    # Encrypted at rest (kit.crypto): the database holds a Fernet token, never the text.
    body: Mapped[str] = mapped_column(EncryptedText())
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # When the other side read it: the read receipt.
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    attachments: Mapped[list[Document]] = relationship(secondary=message_attachment, lazy="raise")

    @property
    def from_youth(self) -> bool:
        return self.author_staff_id is None


class OutboxStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"


class OutboxMessage(RecordMixin, Base):
    """An outgoing SMS or email, written in the transaction that decided to send it.

    Its texts (which may hold a sign-in code) are encrypted at rest and kept only while the
    message may still leave: once sent, failed, cancelled or expired they are replaced by
    ERASED and `content_erased_at` says when (outbox.erase_content)."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        Index("ix_outbox_message_status_next_attempt_at", "status", "next_attempt_at"),
    )

    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, "channel"))
    recipient: Mapped[str] = mapped_column(String(254))
    youth_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("youth.id", ondelete="CASCADE"), index=True
    )
    staff_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"))
    template: Mapped[str] = mapped_column(String(100))
    language: Mapped[str] = mapped_column(String(10), default="fr", server_default="fr")
    subject: Mapped[str | None] = mapped_column(String(200))
    body_text: Mapped[str] = mapped_column(EncryptedText())
    body_html: Mapped[str | None] = mapped_column(EncryptedText())
    is_urgent: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    # Held back at night and on Sunday, when queued and again when sent. Codes, warnings
    # of a changed contact and confirmations of what the youth just did (a booking) leave
    # at any hour: quiet hours are for what we initiate.
    respects_quiet_hours: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    # Never delivered after this instant (an appointment reminder once it has started).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attachment_filename: Mapped[str | None] = mapped_column(String(100))
    attachment_content_type: Mapped[str | None] = mapped_column(String(100))
    attachment_body: Mapped[str | None] = mapped_column(EncryptedText())
    content_erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[OutboxStatus] = mapped_column(
        str_enum(OutboxStatus, "outbox_status"), default=OutboxStatus.QUEUED
    )
    attempt_count: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))
    provider_message_id: Mapped[str | None] = mapped_column(String(100), index=True)
    # The SMS provider this message was (or is being) handed to, written when it is claimed
    # and before it leaves: a lookup after a crash, and the receipts, go to that provider
    # (channels.sms_failover). Empty: no provider may have it (email, file backend, or a
    # provider's error answer proved it did not take it).
    sms_provider: Mapped[str | None] = mapped_column(String(20))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OutboxStatusEvent(RecordMixin, Base):
    """The delivery history of an outbox message (queued, sent, delivered, failed…)."""

    __tablename__ = "outbox_status_event"

    outbox_message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("outbox_message.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[OutboxStatus] = mapped_column(str_enum(OutboxStatus, "outbox_status"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    detail: Mapped[str | None] = mapped_column(String(500))


class DeliveryFallback(RecordMixin, Base):
    """A message to a youth that did not reach them (failed, bounced, or an SMS with no
    "delivered" receipt within the admin's delay), taken once by the fallback pass
    (messaging/fallback.py): the same notice queued on the other channel (`fallback_id`),
    or nothing when no other channel could work. `second_failure_at`: the other channel
    failed too (or could not be tried), the youth's number was flagged and the référent
    given a task "Numéro à vérifier"."""

    __tablename__ = "delivery_fallback"

    original_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("outbox_message.id", ondelete="CASCADE"), unique=True
    )
    youth_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("youth.id", ondelete="CASCADE"), index=True
    )
    failed_channel: Mapped[Channel] = mapped_column(str_enum(Channel, "channel"))
    # True: no delivery receipt within the delay; False: failed or bounced.
    undelivered: Mapped[bool] = mapped_column(default=False)
    fallback_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("outbox_message.id", ondelete="SET NULL"), index=True
    )
    # Taken, but nothing to do (the youth changed the number since, came by, the notice
    # expired): never looked at again.
    skipped: Mapped[bool] = mapped_column(default=False)
    second_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ProviderEvent(RecordMixin, Base):
    """A webhook event of the SMS provider, taken once: its key (a keyed hash of what
    identifies the event, never a number in clear) is unique, so a replay — the provider
    retrying, or a captured call sent again — finds it taken and changes nothing."""

    __tablename__ = "provider_event"

    event_key: Mapped[str] = mapped_column(String(64), unique=True)
    event: Mapped[str] = mapped_column(String(40))


class InboundSmsStatus(enum.StrEnum):
    WAITING = "a_rattacher"
    ATTACHED = "rattache"
    DISCARDED = "ecarte"


class InboundSms(RecordMixin, Base):
    """An SMS reply whose number is not exactly one youth's (shared by several, or nobody's):
    it waits in the supervisors' queue (messaging.inbound) instead of going to a file, until
    a supervisor attaches it to one of the candidates' conversations or discards it. The
    number itself is not kept: only its last two digits; the text is encrypted at rest and
    erased once the SMS is attached (it lives on in the message) or discarded."""

    __tablename__ = "inbound_sms"
    __table_args__ = (Index("ix_inbound_sms_status_received_at", "status", "received_at"),)

    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sender_last_digits: Mapped[str] = mapped_column(String(2))
    body: Mapped[str] = mapped_column(EncryptedText())
    # The youths who had this number when it arrived (empty: nobody's).
    candidate_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[InboundSmsStatus] = mapped_column(
        str_enum(InboundSmsStatus, "inbound_sms_status"), default=InboundSmsStatus.WAITING
    )
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"))
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("message.id", ondelete="SET NULL")
    )


class SmsProviderSample(RecordMixin, Base):
    """One send at an SMS provider as the failover saw it (channels.sms_failover): its
    outcome and how long the provider took to accept it. Shared in the database so that
    every dispatcher, on every instance, judges a provider on the same sends."""

    __tablename__ = "sms_provider_sample"
    __table_args__ = (Index("ix_sms_provider_sample_provider_at", "provider", "occurred_at"),)

    provider: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ok: Mapped[bool] = mapped_column()
    slow: Mapped[bool] = mapped_column()
    latency_ms: Mapped[int] = mapped_column()


class SmsFailoverState(Base):
    """Which SMS provider new messages go to, one row (key "sms"); absent: the primary.
    `version` makes a switch a compare-and-set: of two dispatchers that decide at once,
    one switches."""

    __tablename__ = "sms_failover_state"

    key: Mapped[str] = mapped_column(String(20), primary_key=True)
    active: Mapped[str] = mapped_column(String(20))
    # Since when `active` carries the traffic (or since a failed probation of the primary).
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column()
    switch_count: Mapped[int] = mapped_column()
    last_reason: Mapped[str | None] = mapped_column(String(200))
