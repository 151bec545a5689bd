"""A youth's meaningful activity: the one writer of `Youth.last_activity_at`, which the
whole watch measures quietness against, and the one place where what a youth (or a person
of the team) did is told to whoever needs it.

Youths sit below outreach, auth and staff, so this module cannot call them. They subscribe
instead (`on_activity`, `on_phone_reported_wrong`) when their module is imported — outreach
credits a response to the contact that preceded it, auth ends the sessions a code opened.
`paris_avenir.app` imports them all; tests/test_architecture.py checks both are subscribed.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from paris_avenir.youths.models import Youth


class Activity(enum.StrEnum):
    """What the youth did, or what was done with them, that counts as being in touch."""

    SIGN_IN = "sign_in"
    MESSAGE = "message"  # a message to the référent
    BOOKING = "booking"  # an appointment booked by the youth
    APPOINTMENT_MOVED = "appointment_moved"
    BOOKED_BY_STAFF = "booked_by_staff"  # booked with them (counter, phone)
    APPOINTMENT_CANCELLED = "appointment_cancelled"
    ATTENDED = "attended"  # counts from the appointment's start
    REQUEST = "request"  # a request started, filled in, submitted, completed
    DOCUMENT = "document"  # a document added to the vault
    CHECK_IN = "check_in"  # an answer to "Comment ça va ?"
    CONTACT_CHANGED = "contact_changed"
    PHONE_CONFIRMED = "phone_confirmed"
    PROFILE = "profile"
    STAFF_CONTACT = "staff_contact"  # a person of the team reached them
    DEMO = "demo"  # the demo data's invented past


@dataclass(frozen=True)
class ActivityEvent:
    youth: Youth
    kind: Activity
    at: datetime
    # The watch's contact this activity answers, when the caller knows it (a task opened
    # by a step of the watch and closed "joint·e").
    outreach_attempt_id: uuid.UUID | None = None


ActivityListener = Callable[[Session, ActivityEvent], None]
PhoneListener = Callable[[Session, Youth, datetime], None]

_activity_listeners: list[ActivityListener] = []
_phone_listeners: list[PhoneListener] = []


def on_activity(listener: ActivityListener) -> ActivityListener:
    """Subscribes `listener` to every recorded activity (idempotent, usable as decorator)."""
    if listener not in _activity_listeners:
        _activity_listeners.append(listener)
    return listener


def on_phone_reported_wrong(listener: PhoneListener) -> PhoneListener:
    if listener not in _phone_listeners:
        _phone_listeners.append(listener)
    return listener


def subscribers() -> tuple[list[str], list[str]]:
    """Who listens, by qualified name (for the architecture test and for reading)."""

    def name(listener: Callable[..., None]) -> str:
        return f"{listener.__module__}.{listener.__qualname__}"

    return [name(item) for item in _activity_listeners], [name(item) for item in _phone_listeners]


def record_activity(
    session: Session,
    youth: Youth,
    kind: Activity,
    now: datetime,
    *,
    outreach_attempt_id: uuid.UUID | None = None,
) -> None:
    """The youth was active, or reached, at `now`. Never moves backwards: an attended
    appointment counts from its start, which may precede a later sign-in."""
    if youth.last_activity_at is None or now > youth.last_activity_at:
        youth.last_activity_at = now
    event = ActivityEvent(youth, kind, now, outreach_attempt_id)
    for listener in _activity_listeners:
        listener(session, event)


def report_phone_wrong(session: Session, youth: Youth, now: datetime) -> None:
    """Someone else answers this number: no more SMS, no more sign-in code to it, and the
    sessions a code opened end (whoever holds the phone may hold them). The youth, signed in
    another way, confirms it or gives a new one."""
    if youth.phone is None:
        return
    youth.phone_unreachable_at = youth.phone_unreachable_at or now
    youth.phone_reported_wrong_at = now
    for listener in _phone_listeners:
        listener(session, youth, now)
