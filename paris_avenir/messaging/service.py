"""Conversations between a youth and their référent: one general thread, one per request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from paris_avenir.db import utcnow
from paris_avenir.documents.models import Document
from paris_avenir.kit.errors import DomainError
from paris_avenir.messaging.models import Message, MessageThread, message_attachment
from paris_avenir.web.i18n import gettext

MAX_BODY = 4000


class MessageError(DomainError):
    """Refused message; the text is for the writer."""


def general_thread(session: Session, youth_id: uuid.UUID) -> MessageThread:
    thread = session.scalar(
        select(MessageThread)
        .where(MessageThread.youth_id == youth_id, MessageThread.aid_request_id.is_(None))
        .order_by(MessageThread.created_at)
        .limit(1)
    )
    if thread is None:
        thread = MessageThread(youth_id=youth_id, subject="Votre suivi")
        session.add(thread)
        session.flush()
    return thread


@dataclass(frozen=True)
class ThreadSummary:
    thread: MessageThread
    unread: int  # messages from the other side not read yet


def threads_for_youth(session: Session, youth_id: uuid.UUID) -> list[ThreadSummary]:
    """Every thread with its unread count for the youth, in two queries."""
    threads = list(
        session.scalars(
            select(MessageThread)
            .where(MessageThread.youth_id == youth_id)
            .order_by(
                MessageThread.last_message_at.desc().nulls_last(), MessageThread.created_at.desc()
            )
        )
    )
    unread = dict(
        session.execute(
            select(Message.thread_id, func.count())
            .join(MessageThread, MessageThread.id == Message.thread_id)
            .where(
                MessageThread.youth_id == youth_id,
                Message.author_staff_id.is_not(None),
                Message.read_at.is_(None),
            )
            .group_by(Message.thread_id)
        ).all()
    )
    return [ThreadSummary(thread, int(unread.get(thread.id, 0))) for thread in threads]


def unread_count_for_youth(session: Session, youth_id: uuid.UUID) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Message)
            .join(MessageThread, MessageThread.id == Message.thread_id)
            .where(
                MessageThread.youth_id == youth_id,
                Message.author_staff_id.is_not(None),
                Message.read_at.is_(None),
            )
        )
        or 0
    )


def thread_of_youth(session: Session, youth_id: uuid.UUID, thread_id: str) -> MessageThread | None:
    try:
        parsed = uuid.UUID(thread_id)
    except ValueError:
        return None
    return session.scalar(
        select(MessageThread).where(MessageThread.id == parsed, MessageThread.youth_id == youth_id)
    )


def thread_messages(session: Session, thread_id: uuid.UUID) -> list[Message]:
    return list(
        session.scalars(
            select(Message)
            .where(Message.thread_id == thread_id)
            .options(selectinload(Message.attachments))
            .order_by(Message.sent_at, Message.created_at)
        )
    )


def mark_read(
    session: Session, thread: MessageThread, *, by_youth: bool, now: datetime | None = None
) -> int:
    """The reader has seen the other side's messages: the read receipts."""
    author_filter = (
        Message.author_staff_id.is_not(None) if by_youth else Message.author_staff_id.is_(None)
    )
    result = session.execute(
        update(Message)
        .where(Message.thread_id == thread.id, author_filter, Message.read_at.is_(None))
        .values(read_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def post_message(
    session: Session,
    thread: MessageThread,
    *,
    body: str,
    author_staff_id: uuid.UUID | None,
    document_ids: list[str] | None = None,
    on_behalf_of_youth: bool = False,
    received_by_sms: bool = False,
    now: datetime | None = None,
) -> Message:
    now = now or utcnow()
    text = body.strip()
    if not text:
        raise MessageError(gettext("Écrivez votre message avant de l’envoyer."))
    if len(text) > MAX_BODY:
        raise MessageError(
            gettext("Ce message est trop long (%(limit)s caractères au plus).", limit=MAX_BODY)
        )
    message = Message(
        thread_id=thread.id,
        author_staff_id=author_staff_id,
        body=text,
        sent_at=now,
        on_behalf_of_youth=on_behalf_of_youth,
        received_by_sms=received_by_sms,
    )
    session.add(message)
    session.flush()
    wanted = set()
    for raw in document_ids or []:
        try:
            wanted.add(uuid.UUID(raw))
        except ValueError:
            continue
    # Only documents of this youth's vault can be attached, whoever writes.
    owned = list(
        session.scalars(
            select(Document.id).where(Document.id.in_(wanted), Document.youth_id == thread.youth_id)
        )
    )
    if owned:
        session.execute(
            message_attachment.insert(),
            [{"message_id": message.id, "document_id": document_id} for document_id in owned],
        )
    thread.last_message_at = now
    session.flush()
    return message


def first_unread_from_staff(session: Session, thread_id: uuid.UUID) -> uuid.UUID | None:
    """The oldest staff message the youth has not read: one notification per unread batch."""
    return session.scalar(
        select(Message.id)
        .where(
            Message.thread_id == thread_id,
            Message.author_staff_id.is_not(None),
            Message.read_at.is_(None),
        )
        .order_by(Message.sent_at, Message.created_at)
        .limit(1)
    )
