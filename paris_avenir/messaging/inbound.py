"""SMS replies that are not a STOP: the youth answered one of our SMS (docs/sms.md).

A reply goes to a conversation only when its number is exactly one youth's: it becomes a
message of that youth's general thread, from the youth, marked "reçu par SMS", and counts
as their activity; the référent finds it unread in the file like any message of the youth.
A number that several youths share, or nobody's, never goes to a file: the reply waits in
the supervisors' queue (`InboundSms`), from which a supervisor attaches it to one of the
candidates (the back office checks that the youth is in their scope) or discards it.

Nothing here logs a number or a text. The webhook takes each provider event once
(`provider_event`), so a replayed reply adds nothing.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from paris_avenir.audit import service as audit
from paris_avenir.messaging import service
from paris_avenir.messaging.models import InboundSms, InboundSmsStatus, Message
from paris_avenir.youths import service as youth_service
from paris_avenir.youths.activity import Activity, record_activity
from paris_avenir.youths.models import Youth

ERASED = ""


class Outcome(enum.StrEnum):
    THREAD = "thread"  # in the one youth's conversation
    QUEUED = "queued"  # in the supervisors' queue
    EMPTY = "empty"  # nothing to keep


def last_digits(e164: str | None) -> str:
    digits = "".join(char for char in (e164 or "") if char.isdigit())
    return digits[-2:] if len(digits) >= 2 else ""


def masked_number(last: str) -> str:
    """All but the last two digits hidden: "•• •• •• •• 12"."""
    return f"•• •• •• •• {last}" if last else "•• •• •• •• ••"


def _post_from_youth(session: Session, youth: Youth, text: str, at: datetime) -> Message:
    thread = service.general_thread(session, youth.id)
    message = service.post_message(
        session,
        thread,
        body=text[: service.MAX_BODY],
        author_staff_id=None,
        received_by_sms=True,
        now=at,
    )
    record_activity(session, youth, Activity.MESSAGE, at)
    return message


def receive_reply(
    session: Session, *, sender: str | None, text: str, at: datetime, shown: str | None = None
) -> Outcome:
    """A reply from `sender` (E.164, or None when it cannot be trusted: then nobody's).
    `shown`: the number the event states, when `sender` is None, for its last two digits
    only (never to match a file)."""
    text = text.strip()
    if not text:
        return Outcome.EMPTY
    youths = [
        youth
        for youth in (youth_service.youths_with_phone(session, sender) if sender else [])
        if youth.anonymised_at is None
    ]
    if len(youths) == 1:
        _post_from_youth(session, youths[0], text, at)
        return Outcome.THREAD
    session.add(
        InboundSms(
            received_at=at,
            sender_last_digits=last_digits(sender or shown),
            body=text[: service.MAX_BODY],
            candidate_ids=sorted(str(youth.id) for youth in youths),
            status=InboundSmsStatus.WAITING,
        )
    )
    session.flush()
    return Outcome.QUEUED


def candidates(item: InboundSms) -> set[uuid.UUID]:
    return {uuid.UUID(raw) for raw in item.candidate_ids}


def waiting(session: Session) -> list[InboundSms]:
    """Every reply still to attach or discard, oldest first (the back office filters them
    by scope before anyone sees one)."""
    return list(
        session.scalars(
            select(InboundSms)
            .where(InboundSms.status == InboundSmsStatus.WAITING)
            .order_by(InboundSms.received_at, InboundSms.created_at)
        )
    )


def _resolve(
    session: Session, item: InboundSms, status: InboundSmsStatus, *, by_id: uuid.UUID, now: datetime
) -> bool:
    """One conditional update: two supervisors clicking at once resolve it once."""
    result = session.execute(
        update(InboundSms)
        .where(InboundSms.id == item.id, InboundSms.status == InboundSmsStatus.WAITING)
        .values(status=status, resolved_at=now, resolved_by_id=by_id, modified_at=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(item)
    return int(result.rowcount) == 1  # type: ignore[attr-defined]


def attach(
    session: Session,
    item: InboundSms,
    youth: Youth,
    *,
    by_id: uuid.UUID,
    now: datetime,
    ip_address: str | None = None,
) -> Message | None:
    """The supervisor says whose reply this is: it joins that youth's conversation as if it
    had been matched on arrival (dated when it arrived). `youth` must be a candidate and in
    the caller's scope (checked by the back office); None when someone resolved it first."""
    if youth.id not in candidates(item):
        raise ValueError("not a candidate of this reply")
    text = item.body
    if not _resolve(session, item, InboundSmsStatus.ATTACHED, by_id=by_id, now=now):
        return None
    message = _post_from_youth(session, youth, text, item.received_at)
    item.message_id = message.id
    item.body = ERASED  # it lives on in the message only
    audit.record(
        session,
        "inbound_sms.attach",
        actor_staff_id=by_id,
        youth_id=youth.id,
        object_type="message",
        object_id=message.id,
        ip_address=ip_address,
        now=now,
    )
    return message


def discard(
    session: Session,
    item: InboundSms,
    *,
    by_id: uuid.UUID,
    now: datetime,
    ip_address: str | None = None,
) -> bool:
    """Nobody's reply (a wrong number, a spam): its text is erased at once."""
    if not _resolve(session, item, InboundSmsStatus.DISCARDED, by_id=by_id, now=now):
        return False
    item.body = ERASED
    audit.record(
        session,
        "inbound_sms.discard",
        actor_staff_id=by_id,
        object_type="inbound_sms",
        object_id=item.id,
        ip_address=ip_address,
        now=now,
    )
    return True


def youths_of(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Youth]:
    wanted = set(ids)
    if not wanted:
        return {}
    return {youth.id: youth for youth in session.scalars(select(Youth).where(Youth.id.in_(wanted)))}
