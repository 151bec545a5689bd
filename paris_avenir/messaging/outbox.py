"""The outbox: every outgoing SMS or email is a row written in the transaction that decided
to send it, then dispatched with retries and exponential backoff.

A dispatcher pass claims messages (queued → sending) a window at a time in one short
transaction (FOR UPDATE SKIP LOCKED on PostgreSQL, so that several dispatchers share the
queue), has `send_concurrency` of them at the provider at once on threads that never touch
the database, and records the answers a few at a time in one transaction: a crash leaves
the unrecorded ones in `sending` until their lease runs out, never lost. A message found
in `sending` after its lease was interrupted mid-send: the provider may or may not have
it. An SMS is looked up at the provider by its reference before any retry and only sent if
the provider never got it; an email is sent again with the same Message-ID (SMTP has no
lookup), which mail systems deduplicate.

Nothing is sent in a request's thread: a request only queues (and, for a code, hands the
message to the `OutboxWorker`, which sends it on threads of its own, a few at a time, each
send bounded by the channel's timeouts). A slow or hanging provider then holds the worker's
threads, never the thread pool that serves pages.

Texts are encrypted at rest and kept only while the message may still leave: once it is
sent, failed for good, cancelled or expired, erase_content() replaces them, so a sign-in
code never outlives its send.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.db import insert_many_ignoring_conflicts, utcnow
from paris_avenir.kit import quiet_hours
from paris_avenir.kit.quiet_hours import QuietHours
from paris_avenir.messaging import texts, unsubscribe
from paris_avenir.messaging.channels import (
    Channels,
    DeliveryError,
    OutgoingEmail,
    ProviderRefusedRequest,
)
from paris_avenir.messaging.channels.sms_failover import (
    Routing,
    Sample,
    SmsFailover,
    frees_message,
)
from paris_avenir.messaging.models import OutboxMessage, OutboxStatus, OutboxStatusEvent
from paris_avenir.messaging.sms_segments import fit_gsm7
from paris_avenir.youths.models import Channel, Youth

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
FIRST_RETRY_DELAY = timedelta(seconds=30)
MAX_RETRY_DELAY = timedelta(hours=1)
# How long a claimed message may stay in `sending` before another worker may retry it.
SENDING_LEASE = timedelta(minutes=5)
# The worker's own threads (sign-in codes, a request's messages): at most this many sends
# at once, and this many waiting; past that, a message simply waits in the outbox for the
# next dispatcher pass. (A dispatcher pass has Settings.send_concurrency at the provider,
# on threads that hold no connection.)
WORKER_THREADS = 4
MAX_PENDING_SENDS = 200
# Where a receipt may move a message. Nothing leaves `delivered`; a late "sent" never
# undoes "delivered" or "failed".
RECEIPT_TRANSITIONS: dict[OutboxStatus, set[OutboxStatus]] = {
    OutboxStatus.QUEUED: {OutboxStatus.SENT, OutboxStatus.DELIVERED, OutboxStatus.FAILED},
    OutboxStatus.SENDING: {OutboxStatus.SENT, OutboxStatus.DELIVERED, OutboxStatus.FAILED},
    OutboxStatus.SENT: {OutboxStatus.DELIVERED, OutboxStatus.FAILED},
    OutboxStatus.FAILED: {OutboxStatus.DELIVERED},
    OutboxStatus.DELIVERED: set(),
    OutboxStatus.CANCELLED: set(),
}


# What an outbox text reads once erased.
ERASED = "[effacé]"


# A message's texts once erased, column by column: for one row (erase_content) and for the
# bulk updates of retention, so that a new text column is erased everywhere at once.
ERASED_CONTENT: dict[str, str | None] = {
    "body_text": ERASED,
    "body_html": None,
    "subject": None,
    "attachment_body": None,
}


def erase_content(message: OutboxMessage, now: datetime) -> None:
    """The message can no longer leave: its texts (a code, a name) go, the row stays
    (status history, statistics, the exactly-once key)."""
    for column, value in ERASED_CONTENT.items():
        setattr(message, column, value)
    message.content_erased_at = now


def retry_delay(attempt_count: int) -> timedelta:
    """30 s, 1 min, 2 min, 4 min… capped at one hour."""
    delay: timedelta = FIRST_RETRY_DELAY * (2 ** max(attempt_count - 1, 0))
    return min(delay, MAX_RETRY_DELAY)


def _history(
    session: Session,
    message: OutboxMessage,
    status: OutboxStatus,
    now: datetime,
    detail: str | None = None,
) -> None:
    session.add(
        OutboxStatusEvent(
            outbox_message_id=message.id, status=status, occurred_at=now, detail=detail
        )
    )


def _queued_columns(
    *,
    channel: Channel,
    recipient: str,
    template: str,
    body_text: str,
    idempotency_key: str,
    subject: str | None = None,
    body_html: str | None = None,
    youth_id: uuid.UUID | None = None,
    staff_id: uuid.UUID | None = None,
    language: str = "fr",
    urgent: bool = False,
    respects_quiet_hours: bool = True,
    now: datetime,
    not_before: datetime | None = None,
    expires_at: datetime | None = None,
    attachment: tuple[str, str, str] | None = None,
) -> dict[str, Any]:
    """The columns of a message being queued, from enqueue()'s arguments (enqueue and
    enqueue_many alike)."""
    filename, content_type, body = attachment or (None, None, None)
    return {
        "idempotency_key": idempotency_key,
        "channel": channel,
        "recipient": recipient,
        "template": template,
        "subject": subject,
        "body_text": fit_gsm7(body_text) if channel is Channel.SMS else body_text,
        "body_html": body_html,
        "youth_id": youth_id,
        "staff_id": staff_id,
        "language": language,
        "is_urgent": urgent,
        "respects_quiet_hours": respects_quiet_hours,
        "status": OutboxStatus.QUEUED,
        "next_attempt_at": max(now, not_before) if not_before else now,
        "expires_at": expires_at,
        "attachment_filename": filename,
        "attachment_content_type": content_type,
        "attachment_body": body,
    }


def enqueue(
    session: Session,
    *,
    channel: Channel,
    recipient: str,
    template: str,
    body_text: str,
    idempotency_key: str,
    subject: str | None = None,
    body_html: str | None = None,
    youth_id: uuid.UUID | None = None,
    staff_id: uuid.UUID | None = None,
    language: str = "fr",
    urgent: bool = False,
    respects_quiet_hours: bool = True,
    now: datetime | None = None,
    not_before: datetime | None = None,
    expires_at: datetime | None = None,
    attachment: tuple[str, str, str] | None = None,
) -> OutboxMessage:
    """Queue a message once: the same idempotency key never queues a second one.
    `not_before` holds it back (the caller applies quiet hours when it queues; the
    dispatcher applies them again when it sends, unless `respects_quiet_hours` is False,
    which only one-time codes are)."""
    now = now or utcnow()
    existing = session.scalar(
        select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key)
    )
    if existing is not None:
        return existing
    message = OutboxMessage(
        **_queued_columns(
            channel=channel,
            recipient=recipient,
            template=template,
            body_text=body_text,
            idempotency_key=idempotency_key,
            subject=subject,
            body_html=body_html,
            youth_id=youth_id,
            staff_id=staff_id,
            language=language,
            urgent=urgent,
            respects_quiet_hours=respects_quiet_hours,
            now=now,
            not_before=not_before,
            expires_at=expires_at,
            attachment=attachment,
        )
    )
    try:
        with session.begin_nested():
            session.add(message)
            session.flush()
    except IntegrityError:
        # Another transaction queued the same key between our check and our insert.
        return session.scalars(
            select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key)
        ).one()
    _history(session, message, OutboxStatus.QUEUED, now)
    session.flush()
    return message


def _may_leave(now: datetime, quiet: QuietHours) -> list[ColumnElement[bool]]:
    """Messages whose time has come: queued (or left "sending" by a crash), due, and, in
    quiet hours, only those that do not wait for the morning (sign-in codes)."""
    conditions = [
        OutboxMessage.status.in_([OutboxStatus.QUEUED, OutboxStatus.SENDING]),
        OutboxMessage.next_attempt_at <= now,
    ]
    if quiet.is_quiet(now):
        conditions.append(OutboxMessage.respects_quiet_hours.is_(False))
    return conditions


def due_message_ids(
    session: Session, now: datetime, limit: int, quiet: QuietHours | None = None
) -> list[uuid.UUID]:
    """What may leave now: in quiet hours, only the codes (the rest waits, queued)."""
    statement = (
        select(OutboxMessage.id)
        .where(*_may_leave(now, quiet or quiet_hours.load(session)))
        .order_by(OutboxMessage.is_urgent.desc(), OutboxMessage.next_attempt_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Several workers share the queue: each skips the rows another one holds.
        statement = statement.with_for_update(skip_locked=True)
    return list(session.scalars(statement))


def oldest_due_wait(
    session: Session, now: datetime, quiet: QuietHours | None = None
) -> timedelta | None:
    """How long the oldest message that may leave now has waited past its time (None: none
    is waiting). What quiet hours hold back is not late."""
    oldest = session.scalar(
        select(func.min(OutboxMessage.next_attempt_at)).where(
            *_may_leave(now, quiet or quiet_hours.load(session))
        )
    )
    return None if oldest is None else now - oldest


@dataclass
class DispatchReport:
    sent: list[uuid.UUID] = field(default_factory=list)
    retried: list[uuid.UUID] = field(default_factory=list)
    failed: list[uuid.UUID] = field(default_factory=list)
    # Every message this pass took from the queue, sent or not (held, expired, a defect).
    claimed: int = 0


@dataclass(frozen=True)
class _Outgoing:
    """A claimed message as the sending threads see it: plain values, no ORM object."""

    id: uuid.UUID
    channel: Channel
    recipient: str
    template: str
    idempotency_key: str
    subject: str | None
    body_text: str
    body_html: str | None
    youth_id: uuid.UUID | None
    language: str
    attachment_filename: str | None
    attachment_content_type: str | None
    attachment_body: str | None
    attempt_count: int
    interrupted: bool
    # With two SMS providers (sms_failover): the one this message is tied to (asked first
    # on a retry, then sent through), and the one it would go to now if that one never got
    # it (None: the same).
    sms_provider: str | None = None
    move_to: str | None = None

    @classmethod
    def of(cls, message: OutboxMessage, *, interrupted: bool) -> _Outgoing:
        return cls(
            id=message.id,
            channel=message.channel,
            recipient=message.recipient,
            template=message.template,
            idempotency_key=message.idempotency_key,
            subject=message.subject,
            body_text=message.body_text,
            body_html=message.body_html,
            youth_id=message.youth_id,
            language=message.language,
            attachment_filename=message.attachment_filename,
            attachment_content_type=message.attachment_content_type,
            attachment_body=message.attachment_body,
            attempt_count=message.attempt_count,
            interrupted=interrupted,
        )


@dataclass
class _Claimed:
    quiet: QuietHours
    count: int = 0
    to_send: list[_Outgoing] = field(default_factory=list)
    # What became of those not sent (cancelled as too late, held for quiet hours).
    statuses: dict[uuid.UUID, OutboxStatus] = field(default_factory=dict)


@dataclass(frozen=True)
class _Attempt:
    """The provider's answer: its message id, or the error; `crashed`: a defect of ours."""

    provider_id: str | None = None
    detail: str | None = None
    error: DeliveryError | None = None
    crashed: bool = False
    # Two SMS providers: the send's outcome and latency; whether the error proves the
    # provider did not take it (the message is then free for either); where it moves.
    sample: Sample | None = None
    frees: bool = False
    moved_to: str | None = None


def _email_bodies(channels: Channels, message: _Outgoing) -> tuple[str, str, str | None]:
    """Text, HTML alternative and one-click unsubscribe link of an email as it leaves:
    every email gets an HTML part (from its text when it has none of its own), and an
    outreach email to a youth a visible stop link and the unsubscribe headers."""
    subject = message.subject or "Paris avenir"
    text = message.body_text
    unsubscribe_url = None
    if unsubscribe.is_outreach(message.template) and message.youth_id and channels.secret_key:
        unsubscribe_url = unsubscribe.link(
            message.youth_id, secret_key=channels.secret_key, base_url=channels.base_url
        )
        text = f"{text.rstrip()}\n\n{texts.stop_line(unsubscribe_url, message.language)}"
    html = message.body_html or texts.html_from_text(
        subject, message.body_text, message.language, unsubscribe_url=unsubscribe_url
    )
    return text, html, unsubscribe_url


def _deliver(channels: Channels, message: _Outgoing, now: datetime) -> str | None:
    if message.channel is Channel.SMS:
        return channels.sms.send_sms(
            to=message.recipient,
            text=message.body_text,
            reference=message.idempotency_key,
            tag=message.template,
        )
    attachment = None
    if message.attachment_filename and message.attachment_body is not None:
        attachment = (
            message.attachment_filename,
            message.attachment_content_type or "text/plain",
            message.attachment_body,
        )
    text, html, unsubscribe_url = _email_bodies(channels, message)
    return channels.email.send_email(
        OutgoingEmail(
            to=message.recipient,
            subject=message.subject or "Paris avenir",
            text=text,
            html=html,
            reference=str(message.id),
            attachment=attachment,
            unsubscribe_url=unsubscribe_url,
        ),
        now=now,
    )


def _flag_unreachable(session: Session, message: OutboxMessage, now: datetime) -> None:
    if message.youth_id is None:
        return
    youth = session.get(Youth, message.youth_id)
    if youth is None:
        return
    if message.channel is Channel.SMS and youth.phone == message.recipient:
        youth.phone_unreachable_at = now
    elif message.channel is Channel.EMAIL and youth.email == message.recipient:
        youth.email_unreachable_at = now


def _cancel_expired(session: Session, message: OutboxMessage, now: datetime, detail: str) -> None:
    message.status = OutboxStatus.CANCELLED
    message.next_attempt_at = None
    erase_content(message, now)
    _history(session, message, OutboxStatus.CANCELLED, now, detail=detail)


def cancel_queued(
    session: Session,
    *,
    keys: Iterable[str] = (),
    key_prefixes: Iterable[str] = (),
    now: datetime | None = None,
    detail: str = "cancelled",
) -> int:
    """What has not left yet and never should (a moved appointment's reminders): the
    messages still queued under these idempotency keys, or keys starting with these
    prefixes, are cancelled, with a line in their history. A message being sent
    right now is not touched: it leaves, once. Returns how many were cancelled."""
    now = now or utcnow()
    matches: list[ColumnElement[bool]] = [OutboxMessage.idempotency_key.in_(list(keys))]
    matches += [
        OutboxMessage.idempotency_key.startswith(prefix, autoescape=True) for prefix in key_prefixes
    ]
    found = session.scalars(
        select(OutboxMessage)
        .where(or_(*matches), OutboxMessage.status == OutboxStatus.QUEUED)
        .with_for_update()
    ).all()
    for message in found:
        message.status = OutboxStatus.CANCELLED
        message.next_attempt_at = None
        _history(session, message, OutboxStatus.CANCELLED, now, detail=detail)
    session.flush()
    return len(found)


def _hold_for_quiet_hours(
    session: Session, message: OutboxMessage, now: datetime, quiet: QuietHours
) -> None:
    """Back to the queue until the window opens: holding is not a sending attempt. A
    message that would then be too late (a reminder) expires instead of going late."""
    opens = quiet.next_sending_time(now)
    if message.expires_at is not None and opens >= message.expires_at:
        _cancel_expired(session, message, now, "expired: quiet hours until after its time")
        return
    message.status = OutboxStatus.QUEUED
    message.next_attempt_at = opens
    message.attempt_count -= 1
    _history(session, message, OutboxStatus.QUEUED, now, detail="held back: quiet hours")


def _claim_batch(
    factory: sessionmaker[Session],
    now: datetime,
    *,
    limit: int,
    quiet: QuietHours | None,
    report: DispatchReport,
    message_id: uuid.UUID | None = None,
    channels: Channels | None = None,
) -> _Claimed:
    """One transaction: the next due messages (or this one) move queued → sending, by this
    worker only; those too late are cancelled and those quiet hours hold go back to the
    queue, in the same transaction. Returns what is to be sent (no ORM objects: the sending
    threads never touch the database)."""
    with factory.begin() as session:
        quiet = quiet or quiet_hours.load(session)
        claimed = _Claimed(quiet)
        if message_id is None:
            due = _may_leave(now, quiet)
        else:
            # Asked for by id (a code right after its request): due, whatever the hour; the
            # hour is checked below, so that a held message gets its line in the history.
            due = [
                OutboxMessage.id == message_id,
                OutboxMessage.status.in_([OutboxStatus.QUEUED, OutboxStatus.SENDING]),
                OutboxMessage.next_attempt_at <= now,
            ]
        selected = (
            select(OutboxMessage.id, OutboxMessage.status)
            .where(*due)
            .order_by(OutboxMessage.is_urgent.desc(), OutboxMessage.next_attempt_at)
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            # Several dispatchers share the queue: each skips the rows another one holds,
            # and holds its own until this transaction's claim commits. (SQLite: every
            # transaction begins IMMEDIATE, so no other writer runs meanwhile.)
            selected = selected.with_for_update(skip_locked=True)
        previous = {row.id: row.status for row in session.execute(selected)}
        if not previous:
            return claimed
        # Conditional all the same: only a row still due is claimed, once.
        won = session.scalars(
            update(OutboxMessage)
            .where(
                OutboxMessage.id.in_(list(previous)),
                OutboxMessage.status.in_([OutboxStatus.QUEUED, OutboxStatus.SENDING]),
                OutboxMessage.next_attempt_at <= now,
            )
            .values(
                status=OutboxStatus.SENDING,
                next_attempt_at=now + SENDING_LEASE,
                attempt_count=OutboxMessage.attempt_count + 1,
            )
            .returning(OutboxMessage.id)
            .execution_options(synchronize_session=False)
        ).all()
        claimed.count = len(won)
        messages = session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(won))).all()
        by_id = {message.id: message for message in messages}
        router = _router(channels)
        routing: Routing | None = None
        for message_id_won in previous:  # in the queue's order
            message = by_id.get(message_id_won)
            if message is None:
                continue
            if message.expires_at is not None and now >= message.expires_at:
                # Too late to be useful (a reminder once the appointment has started).
                _cancel_expired(session, message, now, "expired")
            elif message.respects_quiet_hours and quiet.is_quiet(now):
                # Checked again at the moment of sending: a retry, a backlog after downtime
                # or a late dispatcher never sends at night or on Sunday.
                _hold_for_quiet_hours(session, message, now, quiet)
            else:
                interrupted = previous[message_id_won] is OutboxStatus.SENDING
                outgoing = _Outgoing.of(message, interrupted=interrupted)
                if router is not None and message.channel is Channel.SMS:
                    routing = routing or router.routing(session, now)
                    outgoing = _tie_to_provider(router, routing, message, outgoing)
                claimed.to_send.append(outgoing)
                continue
            claimed.statuses[message.id] = message.status
    return claimed


def _router(channels: Channels | None) -> SmsFailover | None:
    sms = channels.sms if channels is not None else None
    return sms if isinstance(sms, SmsFailover) else None


def _tie_to_provider(
    router: SmsFailover, routing: Routing, message: OutboxMessage, outgoing: _Outgoing
) -> _Outgoing:
    """In the claim's transaction: a message free of any provider is tied to the one the
    failover chooses now, before it leaves (a crash mid-send is then looked up there)."""
    preferred = router.assign(routing, message.idempotency_key, message.body_text)
    if message.sms_provider is None:
        # Interrupted mid-send and tied to none: left by a dispatcher from before the
        # failover, which sent through the primary: that is where it is looked up.
        message.sms_provider = router.primary if outgoing.interrupted else preferred
    move_to = preferred if preferred != message.sms_provider else None
    return replace(outgoing, sms_provider=message.sms_provider, move_to=move_to)


def _attempt_routed(router: SmsFailover, outgoing: _Outgoing) -> _Attempt:
    """Two providers: ask the one the message is tied to whether it has it; only its "never
    got it" lets the message move to the other one (recorded first: the next attempt then
    asks the other one before sending)."""
    provider = outgoing.sms_provider
    assert provider is not None
    if outgoing.attempt_count > 1:
        try:
            found = router.find_sent_via(
                provider, to=outgoing.recipient, reference=outgoing.idempotency_key
            )
        except DeliveryError as error:
            # The provider cannot tell: the message waits, tied to it.
            return _Attempt(error=error)
        if found is not None:
            return _Attempt(found, "found at the provider: not sent again")
        if outgoing.move_to is not None:
            return _Attempt(
                detail=f"not at {provider}: moves to {outgoing.move_to}",
                moved_to=outgoing.move_to,
            )
    sent = router.send_via(
        provider,
        to=outgoing.recipient,
        text=outgoing.body_text,
        reference=outgoing.idempotency_key,
        tag=outgoing.template,
    )
    if sent.error is not None:
        return _Attempt(error=sent.error, sample=sent.sample, frees=frees_message(sent.error))
    detail = "sent again after an interruption" if outgoing.interrupted else None
    return _Attempt(sent.provider_id, detail, sample=sent.sample)


def _attempt(channels: Channels, outgoing: _Outgoing, now: datetime) -> _Attempt:
    """At the provider, on a sending thread: no transaction is open meanwhile (on SQLite it
    would hold the write lock, on PostgreSQL a connection)."""
    router = _router(channels)
    try:
        if router is not None and outgoing.sms_provider is not None:
            return _attempt_routed(router, outgoing)
        # Any earlier attempt may have reached the provider (a crash, or a timeout after
        # the provider accepted): ask before sending an SMS again.
        if outgoing.attempt_count > 1 and outgoing.channel is Channel.SMS:
            provider_id = channels.sms.find_sent(
                to=outgoing.recipient, reference=outgoing.idempotency_key
            )
            if provider_id is not None:
                return _Attempt(provider_id, "found at the provider: not sent again")
        provider_id = _deliver(channels, outgoing, now)
    except DeliveryError as error:
        return _Attempt(error=error)
    except Exception:
        # A defect of ours: the message stays `sending` until its lease ends, then is looked
        # up and retried like an interrupted one; the other sends go on.
        logger.exception("outbox: sending %s failed", outgoing.id)
        return _Attempt(crashed=True)
    return _Attempt(
        provider_id, "sent again after an interruption" if outgoing.interrupted else None
    )


def _record(
    factory: sessionmaker[Session],
    results: list[tuple[_Outgoing, _Attempt]],
    now: datetime,
    report: DispatchReport,
    channels: Channels | None = None,
) -> dict[uuid.UUID, OutboxStatus]:
    """What the provider answered, for several messages in one transaction."""
    results = [(outgoing, attempt) for outgoing, attempt in results if not attempt.crashed]
    if not results:
        return {}
    statuses: dict[uuid.UUID, OutboxStatus] = {}
    router = _router(channels)
    with factory.begin() as session:
        if router is not None:
            router.record(session, [a.sample for _o, a in results if a.sample], now)
        ids = [outgoing.id for outgoing, _attempt in results]
        messages = session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids))).all()
        by_id = {message.id: message for message in messages}
        for outgoing, attempt in results:
            message = by_id[outgoing.id]
            error = attempt.error
            if attempt.moved_to is not None:
                # Its provider never got it: tied to the other one, due at once.
                message.sms_provider = attempt.moved_to
                message.status = OutboxStatus.QUEUED
                message.next_attempt_at = now
                message.attempt_count -= 1  # a lookup, not a sending attempt
                _history(session, message, OutboxStatus.QUEUED, now, detail=attempt.detail)
                report.retried.append(message.id)
            elif error is None:
                message.status = OutboxStatus.SENT
                message.sent_at = now
                message.next_attempt_at = None
                message.provider_message_id = attempt.provider_id
                message.last_error = None
                erase_content(message, now)
                _history(session, message, OutboxStatus.SENT, now, detail=attempt.detail)
                report.sent.append(message.id)
            else:
                _record_failure(session, message, error, now, report)
                if attempt.frees and message.status is OutboxStatus.QUEUED:
                    # The provider answered an error: it does not have the message, which
                    # goes to whichever provider is active when it is retried.
                    message.sms_provider = None
            statuses[message.id] = message.status
    return statuses


def _record_failure(
    session: Session,
    message: OutboxMessage,
    error: DeliveryError,
    now: datetime,
    report: DispatchReport,
) -> None:
    message.last_error = str(error)[:500]
    if error.permanent or message.attempt_count >= MAX_ATTEMPTS:
        message.status = OutboxStatus.FAILED
        message.next_attempt_at = None
        if error.permanent and error.flags_recipient:
            _flag_unreachable(session, message, now)
        erase_content(message, now)
        report.failed.append(message.id)
    else:
        # A rate limit (429), a timeout, a 5xx: this message waits its backoff; the
        # others of the batch go on.
        message.status = OutboxStatus.QUEUED
        message.next_attempt_at = now + retry_delay(message.attempt_count)
        report.retried.append(message.id)
    _history(session, message, message.status, now, detail=message.last_error)
    logger.info("outbox %s %s: %s", message.id, message.status.value, message.last_error)
    if error.alerts_operator:
        # For the operator: our settings are refused, every message will be. The error
        # names a code, never a recipient.
        logger.error("operator alert: %s", message.last_error)


def send_one(
    session_factory: sessionmaker[Session],
    message_id: uuid.UUID,
    channels: Channels,
    *,
    now: datetime | None = None,
    report: DispatchReport | None = None,
    quiet: QuietHours | None = None,
) -> OutboxStatus | None:
    """Claim, send and record one message, on the caller's thread. Returns its new status,
    or None if another worker holds it or it is not due."""
    now = now or utcnow()
    report = report if report is not None else DispatchReport()
    claimed = _claim_batch(
        session_factory,
        now,
        limit=1,
        quiet=quiet,
        report=report,
        message_id=message_id,
        channels=channels,
    )
    if claimed.count == 0:
        return None
    for outgoing in claimed.to_send:
        attempt = _attempt(channels, outgoing, now)
        claimed.statuses.update(
            _record(session_factory, [(outgoing, attempt)], now, report, channels)
        )
    # A defect while sending left it `sending` (its lease then runs out).
    return claimed.statuses.get(message_id, OutboxStatus.SENDING)


def dispatch_due(
    session_factory: sessionmaker[Session],
    channels: Channels,
    *,
    now: datetime | None = None,
    limit: int = 100,
) -> DispatchReport:
    """Up to `limit` due messages, `channels.send_concurrency` at the provider at once.

    Claims go a window ahead of the sends (twice the concurrency, in one transaction), so
    that a message waits its turn seconds, never its lease, and a crash leaves only that
    window to look up; results are recorded a few at a time in one transaction. With a
    concurrency of 1, one message after the other, as the provider answers."""
    now = now or utcnow()
    report = DispatchReport()
    concurrency = max(1, channels.send_concurrency)
    window = 2 * concurrency
    quiet: QuietHours | None = None
    exhausted = False
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="outbox-dispatch") as pool:
        in_flight: dict[Future[_Attempt], _Outgoing] = {}
        answered: list[tuple[_Outgoing, _Attempt]] = []
        while True:
            wanted = min(window - len(in_flight), limit - report.claimed)
            if not exhausted and len(in_flight) <= concurrency and wanted > 0:
                claimed = _claim_batch(
                    session_factory,
                    now,
                    limit=wanted,
                    quiet=quiet,
                    report=report,
                    channels=channels,
                )
                quiet = claimed.quiet
                report.claimed += claimed.count
                # Fewer than asked: the rest is held by another dispatcher, or not due.
                exhausted = claimed.count < wanted
                for outgoing in claimed.to_send:
                    in_flight[pool.submit(_attempt, channels, outgoing, now)] = outgoing
                if not in_flight and not exhausted:
                    continue  # all of it expired or held for quiet hours: claim on
            if not in_flight:
                break
            done, _waiting = wait(in_flight, return_when=FIRST_COMPLETED)
            answered += [(in_flight.pop(future), future.result()) for future in done]
            if len(answered) >= concurrency or not in_flight:
                _record(session_factory, answered, now, report, channels)
                answered = []
        _record(session_factory, answered, now, report, channels)
    return report


class OutboxWorker:
    """Sends messages as soon as they are queued, on a small pool of its own threads.

    Requests never send: after their commit they hand the message id to `send_soon` (a
    background task that waits without holding a thread), and a send that hangs takes one
    of the worker's `concurrency` threads until the channel's timeout, not one of the
    threads that answer pages. When the worker is full, the message stays queued and the
    periodic dispatcher sends it; `send_one`'s claim makes sure it leaves once.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        channels: Channels,
        *,
        concurrency: int = WORKER_THREADS,
        max_pending: int = MAX_PENDING_SENDS,
    ) -> None:
        self.session_factory = session_factory
        self.channels = channels
        self._executor = ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="outbox-send"
        )
        self._room = threading.BoundedSemaphore(max_pending)
        self._closed = False

    def submit(self, message_id: uuid.UUID) -> Future[OutboxStatus | None] | None:
        """Hand one message to the worker; None if it is full or stopped (the message then
        waits for the next dispatcher pass)."""
        if self._closed or not self._room.acquire(blocking=False):
            logger.warning("outbox worker full or stopped: message %s left queued", message_id)
            return None
        try:
            future = self._executor.submit(self._send, message_id)
        except RuntimeError:  # shut down meanwhile
            self._room.release()
            return None
        future.add_done_callback(lambda _done: self._room.release())
        return future

    def _send(self, message_id: uuid.UUID) -> OutboxStatus | None:
        try:
            return send_one(self.session_factory, message_id, self.channels)
        except Exception:
            # The message stays queued or sending: the dispatcher retries it.
            logger.exception("outbox worker: sending %s failed", message_id)
            return None

    async def send_soon(self, message_id: uuid.UUID) -> None:
        """For `BackgroundTasks`: runs after the response has left, and waits for the send
        on the event loop, holding no thread of the request pool."""
        future = self.submit(message_id)
        if future is not None:
            await asyncio.wait([asyncio.wrap_future(future)])

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop taking messages; those not started stay queued for the next start."""
        self._closed = True
        self._executor.shutdown(wait=wait, cancel_futures=True)


@dataclass(frozen=True)
class ProviderAlert:
    """For the admin: messages waiting because the provider refuses our request."""

    waiting: int
    last_error: str


def provider_alert(session: Session) -> ProviderAlert | None:
    """Queued messages whose last attempt the provider refused for a reason of ours (the
    sender, the key, credits): shown to admins until the settings are fixed and they leave."""
    refused = (
        OutboxMessage.status == OutboxStatus.QUEUED,
        OutboxMessage.last_error.startswith(ProviderRefusedRequest.PREFIX, autoescape=True),
    )
    waiting = session.scalar(select(func.count()).select_from(OutboxMessage).where(*refused))
    if not waiting:
        return None
    last = session.scalar(
        select(OutboxMessage.last_error)
        .where(*refused)
        .order_by(OutboxMessage.modified_at.desc())
        .limit(1)
    )
    return ProviderAlert(waiting=int(waiting), last_error=last or "")


def apply_receipt(
    session: Session,
    provider_message_id: str,
    status: OutboxStatus,
    *,
    now: datetime | None = None,
    detail: str | None = None,
    flags_recipient: bool = True,
) -> OutboxMessage | None:
    """A delivery receipt from the provider; late or out-of-order ones change nothing. A
    failure flags the recipient unless it was about the message (`flags_recipient`)."""
    now = now or utcnow()
    message = session.scalar(
        select(OutboxMessage).where(OutboxMessage.provider_message_id == provider_message_id)
    )
    if message is None:
        return None
    if status in RECEIPT_TRANSITIONS[message.status]:
        message.status = status
        if status is OutboxStatus.DELIVERED:
            message.delivered_at = now
        _history(session, message, status, now, detail=detail)
        if status is OutboxStatus.FAILED and flags_recipient:
            _flag_unreachable(session, message, now)
    else:
        _history(
            session, message, message.status, now, detail=f"ignored late receipt: {status.value}"
        )
    session.flush()
    return message


@dataclass(frozen=True)
class ChannelCounts:
    """The outbox's rows of one channel, for /metrics: waiting to leave (queued or being
    sent, due or held back), sent (whatever the receipts said since), failed for good."""

    waiting: int = 0
    sent: int = 0
    failed: int = 0


def counts_by_channel(session: Session) -> dict[Channel, ChannelCounts]:
    """One grouped query over the rows (read only)."""
    waiting = OutboxMessage.status.in_([OutboxStatus.QUEUED, OutboxStatus.SENDING])
    rows = session.execute(
        select(
            OutboxMessage.channel,
            func.count().filter(waiting),
            func.count(OutboxMessage.sent_at),
            func.count().filter(OutboxMessage.status == OutboxStatus.FAILED),
        ).group_by(OutboxMessage.channel)
    )
    found = {
        channel: ChannelCounts(int(waiting_count), int(sent), int(failed))
        for channel, waiting_count, sent, failed in rows
    }
    return {channel: found.get(channel, ChannelCounts()) for channel in Channel}


def enqueue_many(session: Session, messages: Sequence[Mapping[str, Any]]) -> dict[str, uuid.UUID]:
    """enqueue() for a batch (each item holds enqueue's arguments), in two INSERTs: the
    messages, then their "queued" history. A key queued already keeps its message, which is
    looked up. The message of every key, by key."""
    if not messages:
        return {}
    rows = []
    for message in messages:
        now = message.get("now") or utcnow()
        columns = _queued_columns(**{**message, "now": now})
        rows.append({"id": uuid.uuid4(), **columns, "created_at": now, "modified_at": now})
    # One array per column on PostgreSQL (db.insert_many_ignoring_conflicts): a batch's
    # thousands of placeholders are not parsed again for every batch.
    inserted = set(insert_many_ignoring_conflicts(session, OutboxMessage, rows, "id"))
    if inserted:
        # Only its primary key is unique: nothing to ignore, the same short statement.
        insert_many_ignoring_conflicts(
            session,
            OutboxStatusEvent,
            [
                {
                    "outbox_message_id": row["id"],
                    "status": OutboxStatus.QUEUED,
                    "occurred_at": row["created_at"],
                }
                for row in rows
                if row["id"] in inserted
            ],
            "id",
        )
    queued = {row["idempotency_key"]: row["id"] for row in rows if row["id"] in inserted}
    taken = [row["idempotency_key"] for row in rows if row["id"] not in inserted]
    if taken:
        queued |= dict(
            session.execute(
                select(OutboxMessage.idempotency_key, OutboxMessage.id).where(
                    OutboxMessage.idempotency_key.in_(taken)
                )
            ).tuples()
        )
    return queued
