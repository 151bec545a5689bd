"""Fallback driven by delivery: a message the youth must read that did not reach them is
followed by the same notice on the other channel, once.

What counts as not reaching them:
- an SMS or an email that failed for good (the provider refused the number, a hard bounce
  or a blacklisted number reported by the webhook, an SMTP permanent failure);
- an SMS still without a "delivered" receipt `delay` after it was sent (the admin's policy,
  24 h by default). Only when delivery receipts come at all (the SMS webhook is set up):
  without them every SMS would look undelivered. Emails have no receipts: a sent email
  counts as delivered. A "delivered" receipt that comes after the fallback was queued (held
  for the morning, say) cancels it before it leaves (`first_delivered`).

Which messages: the notices a youth must learn something from (outreach, a message of the
référent, an appointment, news of a request). Never a sign-in or contact code (the youth,
who is waiting for it, asks again or for the email instead), nor a warning about a changed
contact, nor what goes to staff.

The fallback says, in the youth's language, that a message did not reach them and links to
the page of their space that holds it: the outbox erases a message's text once it left (a
code, a name never outlive the send), so the words are not copied from the first message,
and they are discreet by construction (no aid, no amount, no psychologist). It respects the
quiet hours (queued for the morning, and held again at sending time).

Exactly once: each first message is taken once, by a row of `delivery_fallback` whose
original is unique (two passes at once: one takes it, the other finds it taken), and the
fallback's outbox key is derived from the first message (`fallback:<id>`).

When the fallback fails too (or no other channel could be tried), the youth's number is
flagged (they are asked to confirm it at their next sign-in, youths/routes.py) and the
pass reports a second failure: the caller (outreach/delivery.py) gives the référent a task
"Numéro à vérifier" (staff/tasks.py), done by itself once the number is proven (a code
sent to it came back, or the team said it works: staff.tasks.number_proven). A hard bounce
reported by the webhook queues the fallback at once (`fall_back_now`); the rest is found by
the periodic pass.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from paris_avenir.db import utcnow
from paris_avenir.kit import quiet_hours
from paris_avenir.kit.quiet_hours import QuietHours
from paris_avenir.messaging import outbox, sms_texts, unsubscribe
from paris_avenir.messaging.channels import sms_failover
from paris_avenir.messaging.models import DeliveryFallback, OutboxMessage, OutboxStatus
from paris_avenir.web import i18n
from paris_avenir.web.i18n import N_
from paris_avenir.youths.models import Channel, Youth

logger = logging.getLogger(__name__)

KEY_PREFIX = "fallback:"
DEFAULT_DELAY = timedelta(hours=24)
# Messages older than this (past the delay) are not looked at: a first pass after a
# deployment does not follow up a year of history.
LOOKBACK = timedelta(days=2)
BATCH = 500

# The notices worth a fallback (their template), and the page of the youth's space that
# holds what they said. Outreach messages (outreach_*) lead to the space's home.
PAGES: dict[str, str] = {
    "new_message": "/mon-espace/messages",
    "appointment_confirmation": "/mon-espace/rendez-vous",
    "appointment_cancellation": "/mon-espace/rendez-vous",
    "appointment_reminder": "/mon-espace/rendez-vous",
    "follow_up_interview": "/mon-espace/rendez-vous",
    "request_update": "/mon-espace/demandes",
}
OUTREACH_PAGE = "/mon-espace"

EMAIL_SUBJECT = N_("Un message de Paris avenir pour vous")
EMAIL_TEXT = N_(
    "Bonjour,\n\nNous vous avons envoyé un SMS, mais il ne vous est pas arrivé. Vous "
    "retrouvez ce message dans votre espace Paris avenir : %(link)s\n\nSi votre numéro de "
    "téléphone a changé, vous pourrez le corriger en vous connectant."
)


def is_worth_a_fallback(template: str) -> bool:
    return template in PAGES or unsubscribe.is_outreach(template)


def fallback_key(original_id: uuid.UUID) -> str:
    return f"{KEY_PREFIX}{original_id}"


def _page(template: str) -> str:
    return PAGES.get(template, OUTREACH_PAGE)


@dataclass(frozen=True)
class Failure:
    """What did not reach the youth: a channel, when, and whether it failed or simply had
    no delivery receipt in time."""

    channel: Channel
    at: datetime
    undelivered: bool


@dataclass(frozen=True)
class SecondFailure:
    """Both channels failed (or the other one could not be tried): the youth's number is
    flagged; the référent is to be given a task."""

    record_id: uuid.UUID
    youth_id: uuid.UUID
    failures: tuple[Failure, ...]


@dataclass
class PassReport:
    queued: list[uuid.UUID] = field(default_factory=list)  # the fallbacks' outbox ids
    skipped: int = 0
    second_failures: list[SecondFailure] = field(default_factory=list)


def _not_reached(delay: timedelta, now: datetime, *, receipts: bool) -> ColumnElement[bool]:
    """Failed for good; or, with receipts, an SMS sent `delay` ago and never delivered."""
    failed = OutboxMessage.status == OutboxStatus.FAILED
    if not receipts:
        return failed
    undelivered = and_(
        OutboxMessage.channel == Channel.SMS,
        OutboxMessage.status == OutboxStatus.SENT,
        OutboxMessage.sent_at <= now - delay,
        # Sent through a provider that never sends receipts (after a failover): its silence
        # says nothing.
        or_(
            OutboxMessage.sms_provider.is_(None),
            OutboxMessage.sms_provider.in_(sms_failover.PROVIDERS_WITH_RECEIPTS),
        ),
    )
    return or_(failed, undelivered)


def _failure(message: OutboxMessage) -> Failure:
    return Failure(
        channel=message.channel,
        at=message.sent_at or message.modified_at or message.created_at,
        undelivered=message.status is not OutboxStatus.FAILED,
    )


def _usable(youth: Youth, channel: Channel, template: str) -> bool:
    if channel is Channel.SMS:
        return youth.phone is not None and youth.phone_unreachable_at is None
    if youth.email is None or youth.email_unreachable_at is not None:
        return False
    return not (youth.outreach_email_opted_out_at and unsubscribe.is_outreach(template))


def _nothing_to_do(youth: Youth | None, message: OutboxMessage, now: datetime) -> bool:
    """The first message no longer needs following up."""
    if youth is None:
        return True
    if message.expires_at is not None and message.expires_at <= now:
        return True  # a reminder of an appointment that has started
    current = youth.phone if message.channel is Channel.SMS else youth.email
    if current != message.recipient:
        return True  # the youth changed it since: the new one was never tried wrong
    if youth.last_activity_at is not None and youth.last_activity_at > message.created_at:
        return True  # they came to their space since: they have seen it
    return unsubscribe.is_outreach(message.template) and youth.outreach_opted_out_at is not None


def _queue_fallback(
    session: Session,
    youth: Youth,
    original: OutboxMessage,
    channel: Channel,
    *,
    base_url: str,
    now: datetime,
    quiet: QuietHours,
) -> OutboxMessage:
    link = base_url.rstrip("/") + _page(original.template)
    with i18n.using_locale(youth.language):
        if channel is Channel.EMAIL:
            recipient, subject = youth.email, i18n.gettext(EMAIL_SUBJECT)
            body = i18n.gettext(EMAIL_TEXT, link=link)
        else:
            recipient, subject = youth.phone, None
            body = i18n.gettext(sms_texts.EMAIL_FALLBACK, link=link)
    assert recipient is not None
    return outbox.enqueue(
        session,
        channel=channel,
        recipient=recipient,
        # The first message's template: an outreach email keeps its stop link.
        template=original.template,
        subject=subject,
        body_text=body,
        idempotency_key=fallback_key(original.id),
        youth_id=youth.id,
        language=youth.language,
        now=now,
        not_before=quiet.next_sending_time(now),
        expires_at=original.expires_at,
    )


def _take(
    session: Session,
    original: OutboxMessage,
    *,
    base_url: str,
    now: datetime,
    quiet: QuietHours,
    report: PassReport,
) -> None:
    """One first message that did not reach the youth, taken once."""
    assert original.youth_id is not None
    youth = session.get(Youth, original.youth_id)
    record = DeliveryFallback(
        original_id=original.id,
        youth_id=original.youth_id,
        failed_channel=original.channel,
        undelivered=original.status is not OutboxStatus.FAILED,
    )
    try:
        with session.begin_nested():
            session.add(record)
            session.flush()
    except IntegrityError:
        return  # another pass (or the webhook) took it at the same moment
    if _nothing_to_do(youth, original, now):
        record.skipped = True
        report.skipped += 1
        return
    assert youth is not None
    other = Channel.EMAIL if original.channel is Channel.SMS else Channel.SMS
    if not _usable(youth, other, original.template):
        # Nothing else to try: the youth cannot be reached by message.
        record.second_failure_at = now
        _flag(youth, now)
        report.second_failures.append(
            SecondFailure(record.id, youth.id, failures=(_failure(original),))
        )
        return
    message = _queue_fallback(
        session, youth, original, other, base_url=base_url, now=now, quiet=quiet
    )
    record.fallback_id = message.id
    report.queued.append(message.id)
    logger.info("delivery fallback: %s followed by %s on %s", original.id, message.id, other)


def _flag(youth: Youth, now: datetime) -> None:
    """The number is to be confirmed: no SMS until then, and the youth is asked at their
    next sign-in (auth/sign_in.py), unless that sign-in's code came by SMS (it works)."""
    if youth.phone is not None:
        youth.phone_unreachable_at = youth.phone_unreachable_at or now


def fall_back_now(
    session: Session, message: OutboxMessage, *, base_url: str, now: datetime | None = None
) -> OutboxMessage | None:
    """A failure just reported (a hard bounce): its fallback at once, when it is worth one
    and is a first message (a fallback's own failure waits for the pass, which opens the
    task). The fallback queued, or None."""
    now = now or utcnow()
    if (
        message.status is not OutboxStatus.FAILED
        or message.youth_id is None
        or message.idempotency_key.startswith(KEY_PREFIX)
        or not is_worth_a_fallback(message.template)
    ):
        return None
    report = PassReport()
    _take(
        session, message, base_url=base_url, now=now, quiet=quiet_hours.load(session), report=report
    )
    session.flush()
    return session.get(OutboxMessage, report.queued[0]) if report.queued else None


def first_delivered(
    session: Session, message: OutboxMessage, *, now: datetime | None = None
) -> int:
    """A "delivered" receipt for a first message that came late, after its fallback was
    queued (held for the morning by the quiet hours, say): the youth has it, so the
    fallback never leaves. A fallback already sent stays sent. Returns how many were
    cancelled (0 or 1)."""
    if message.status is not OutboxStatus.DELIVERED or message.idempotency_key.startswith(
        KEY_PREFIX
    ):
        return 0
    return outbox.cancel_queued(
        session, keys=[fallback_key(message.id)], now=now, detail="first message delivered"
    )


def run_pass(
    session: Session,
    *,
    base_url: str,
    delay: timedelta = DEFAULT_DELAY,
    receipts: bool = True,
    now: datetime | None = None,
    quiet: QuietHours | None = None,
) -> PassReport:
    """Follows up what did not reach the youth, and finds what failed twice. The caller
    commits (and opens the tasks of `second_failures` in the same transaction)."""
    now = now or utcnow()
    quiet = quiet or quiet_hours.load(session)
    report = PassReport()
    since = now - delay - LOOKBACK
    originals = session.scalars(
        select(OutboxMessage)
        .outerjoin(DeliveryFallback, DeliveryFallback.original_id == OutboxMessage.id)
        .where(
            DeliveryFallback.id.is_(None),
            OutboxMessage.youth_id.is_not(None),
            OutboxMessage.created_at >= since,
            ~OutboxMessage.idempotency_key.startswith(KEY_PREFIX, autoescape=True),
            or_(
                OutboxMessage.template.in_(list(PAGES)),
                OutboxMessage.template.startswith(unsubscribe.OUTREACH_PREFIX, autoescape=True),
            ),
            _not_reached(delay, now, receipts=receipts),
        )
        .order_by(OutboxMessage.created_at)
        .limit(BATCH)
        .execution_options(populate_existing=True)
    ).all()
    for original in originals:
        _take(session, original, base_url=base_url, now=now, quiet=quiet, report=report)
    _second_failures(session, delay=delay, receipts=receipts, now=now, since=since, report=report)
    session.flush()
    return report


def _second_failures(
    session: Session,
    *,
    delay: timedelta,
    receipts: bool,
    now: datetime,
    since: datetime,
    report: PassReport,
) -> None:
    rows = session.execute(
        select(DeliveryFallback, OutboxMessage)
        .join(OutboxMessage, OutboxMessage.id == DeliveryFallback.fallback_id)
        .where(
            DeliveryFallback.second_failure_at.is_(None),
            DeliveryFallback.created_at >= since,
            _not_reached(delay, now, receipts=receipts),
        )
        .limit(BATCH)
        .execution_options(populate_existing=True)
    ).all()
    for record, fallback in rows:
        # One pass records it, whatever the others running at the same moment do.
        taken = session.execute(
            update(DeliveryFallback)
            .where(DeliveryFallback.id == record.id, DeliveryFallback.second_failure_at.is_(None))
            .values(second_failure_at=now)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            continue
        original = session.get(OutboxMessage, record.original_id)
        youth = session.get(Youth, record.youth_id)
        if original is None or youth is None:
            continue
        _flag(youth, now)
        report.second_failures.append(
            SecondFailure(record.id, youth.id, failures=(_failure(original), _failure(fallback)))
        )
