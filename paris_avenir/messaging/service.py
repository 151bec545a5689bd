"""Conversations between a youth and their référent: one general thread, one per request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Update, bindparam, func, select, update
from sqlalchemy.orm import Session, selectinload

from paris_avenir.db import utcnow
from paris_avenir.documents.models import Document
from paris_avenir.kit.errors import DomainError
from paris_avenir.messaging.models import Message, MessageThread, message_attachment
from paris_avenir.web.i18n import gettext

MAX_BODY = 4000


class MessageError(DomainError):
    """Refused message; the text is for the writer."""


# Statements the youth file and the youth's pages run on every view are built once, with
# bound values: building one costs about as much as running it (see auth.sessions).
_GENERAL_THREAD = (
    select(MessageThread)
    .where(MessageThread.youth_id == bindparam("youth_id"), MessageThread.aid_request_id.is_(None))
    .order_by(MessageThread.created_at)
    .limit(1)
)


def general_thread(session: Session, youth_id: uuid.UUID) -> MessageThread:
    thread = session.scalar(_GENERAL_THREAD, {"youth_id": youth_id})
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


_UNREAD_FOR_YOUTH = (
    select(func.count())
    .select_from(Message)
    .join(MessageThread, MessageThread.id == Message.thread_id)
    .where(
        MessageThread.youth_id == bindparam("youth_id"),
        Message.author_staff_id.is_not(None),
        Message.read_at.is_(None),
    )
)


def unread_count_for_youth(session: Session, youth_id: uuid.UUID) -> int:
    return int(session.scalar(_UNREAD_FOR_YOUTH, {"youth_id": youth_id}) or 0)


def thread_of_youth(session: Session, youth_id: uuid.UUID, thread_id: str) -> MessageThread | None:
    try:
        parsed = uuid.UUID(thread_id)
    except ValueError:
        return None
    return session.scalar(
        select(MessageThread).where(MessageThread.id == parsed, MessageThread.youth_id == youth_id)
    )


_THREAD_MESSAGES = (
    select(Message)
    .where(Message.thread_id == bindparam("thread_id"))
    .options(selectinload(Message.attachments))
    .order_by(Message.sent_at, Message.created_at)
)
_LAST_THREAD_MESSAGES = (
    select(Message)
    .where(Message.thread_id == bindparam("thread_id"))
    .options(selectinload(Message.attachments))
    .order_by(Message.sent_at.desc(), Message.created_at.desc())
    .limit(bindparam("last"))
)


def thread_messages(
    session: Session, thread_id: uuid.UUID, *, last: int | None = None
) -> list[Message]:
    """The thread's messages, oldest first; only the `last` ones when given (read from
    the database as such: a conversation of years is not loaded to show its end)."""
    if last is None:
        return list(session.scalars(_THREAD_MESSAGES, {"thread_id": thread_id}))
    newest = list(session.scalars(_LAST_THREAD_MESSAGES, {"thread_id": thread_id, "last": last}))
    return newest[::-1]


def mark_read(
    session: Session, thread: MessageThread, *, by_youth: bool, now: datetime | None = None
) -> int:
    """The reader has seen the other side's messages: the read receipts."""
    statement = _MARK_READ_BY_YOUTH if by_youth else _MARK_READ_BY_STAFF
    result = session.execute(statement, {"of_thread": thread.id, "when_read": now or utcnow()})
    return int(result.rowcount)  # type: ignore[attr-defined]


def _mark_read(author_filter: ColumnElement[bool]) -> Update:
    # Built once per side: the conversation and the youth file run it on every view.
    return (
        update(Message)
        .where(
            Message.thread_id == bindparam("of_thread"), author_filter, Message.read_at.is_(None)
        )
        .values(read_at=bindparam("when_read"))
        .execution_options(synchronize_session=False)
    )


_MARK_READ_BY_YOUTH = _mark_read(Message.author_staff_id.is_not(None))
_MARK_READ_BY_STAFF = _mark_read(Message.author_staff_id.is_(None))


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
