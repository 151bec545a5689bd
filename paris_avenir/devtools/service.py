"""What the platform sent or holds, for a developer on their own machine.

Every SMS and email is an outbox row; its texts are erased once it has left, so a sent SMS's
text is read back from the development file backend (`PARIS_AVENIR_SMS_FILE`, one JSON line
per SMS, matched by the outbox's idempotency key). A queued message says why it waits:
quiet hours (until when), a retry after an error, or a time set by the caller (a reminder).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.db import utcnow
from paris_avenir.kit import quiet_hours
from paris_avenir.kit.quiet_hours import QuietHours
from paris_avenir.messaging import outbox
from paris_avenir.messaging.channels import Channels
from paris_avenir.messaging.models import OutboxMessage, OutboxStatus, OutboxStatusEvent
from paris_avenir.youths.models import Channel

SHOWN = 200
STATUS_LABELS = {
    OutboxStatus.QUEUED: "en attente",
    OutboxStatus.SENDING: "en cours d’envoi",
    OutboxStatus.SENT: "envoyé",
    OutboxStatus.DELIVERED: "reçu",
    OutboxStatus.FAILED: "en échec",
    OutboxStatus.CANCELLED: "annulé",
}
CHANNEL_LABELS = {Channel.SMS: "SMS", Channel.EMAIL: "E-mail"}


@dataclass(frozen=True)
class Held:
    """Why a queued message has not left, and from when it may."""

    reason: str  # "quiet_hours", "retry", "scheduled"
    until: datetime | None


@dataclass(frozen=True)
class DevMessage:
    id: uuid.UUID
    channel: str
    recipient: str
    template: str
    subject: str | None
    text: str | None
    status: str
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None
    held: Held | None

    @property
    def can_send_now(self) -> bool:
        return self.status == STATUS_LABELS[OutboxStatus.QUEUED]


def sent_sms_texts(path: Path) -> dict[str, str]:
    """The file backend's texts by idempotency key (a line cut by a crash is skipped)."""
    if not path.exists():
        return {}
    texts: dict[str, str] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("reference"):
                texts[str(record["reference"])] = str(record.get("text", ""))
    return texts


def why_held(
    message: OutboxMessage, quiet: QuietHours, now: datetime, last_detail: str | None
) -> Held | None:
    if message.status is not OutboxStatus.QUEUED:
        return None
    until = message.next_attempt_at
    if message.respects_quiet_hours and quiet.is_quiet(now):
        return Held("quiet_hours", quiet.next_sending_time(now))
    if until is None or until <= now:
        return None  # due: the next pass of the dispatcher (15 s) sends it
    if last_detail == "held back: quiet hours" or (
        message.respects_quiet_hours
        and quiet.is_quiet(until - timedelta(minutes=1))
        and until == quiet.next_sending_time(until - timedelta(minutes=1))
    ):
        return Held("quiet_hours", until)
    if message.attempt_count > 0 and message.last_error:
        return Held("retry", until)
    return Held("scheduled", until)


def list_messages(
    session: Session, *, sms_file: Path, now: datetime | None = None
) -> list[DevMessage]:
    """The newest messages first, each with its text when it can still be read."""
    now = now or utcnow()
    quiet = quiet_hours.load(session)
    messages = list(
        session.scalars(
            select(OutboxMessage).order_by(OutboxMessage.created_at.desc()).limit(SHOWN)
        )
    )
    last_details: dict[uuid.UUID, str | None] = {}
    if messages:
        for event in session.scalars(
            select(OutboxStatusEvent)
            .where(OutboxStatusEvent.outbox_message_id.in_([m.id for m in messages]))
            .order_by(OutboxStatusEvent.occurred_at)
        ):
            last_details[event.outbox_message_id] = event.detail
    file_texts = sent_sms_texts(sms_file)
    shown = []
    for message in messages:
        if message.content_erased_at is None:
            text: str | None = message.body_text
        else:
            text = file_texts.get(message.idempotency_key)
        shown.append(
            DevMessage(
                id=message.id,
                channel=CHANNEL_LABELS.get(message.channel, str(message.channel)),
                recipient=message.recipient,
                template=message.template,
                subject=message.subject,
                text=text,
                status=STATUS_LABELS[message.status],
                created_at=message.created_at,
                sent_at=message.sent_at,
                last_error=message.last_error,
                held=why_held(message, quiet, now, last_details.get(message.id)),
            )
        )
    return shown


def send_now(
    session_factory: sessionmaker[Session],
    channels: Channels,
    message_id: uuid.UUID,
    *,
    now: datetime | None = None,
) -> OutboxStatus | None:
    """Sends a queued message at once, quiet hours or its set time notwithstanding (the
    developer asked). None when it is not queued any more."""
    now = now or utcnow()
    with session_factory.begin() as session:
        moved = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.status == OutboxStatus.QUEUED)
            .values(next_attempt_at=now, respects_quiet_hours=False)
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            return None
    return outbox.send_one(session_factory, message_id, channels, now=now)
