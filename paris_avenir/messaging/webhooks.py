"""Webhooks of the SMS provider (Brevo): delivery receipts and inbound replies (STOP).

Authentication: of the three ways Brevo documents for securing a webhook (its IP ranges,
a user and password in the URL, a bearer token), the bearer token is the strongest: a
secret of ours, sent in a header (never in the URL, so never in an access log), compared in
constant time. Declare the webhook with `auth: {"type": "bearer", "token": …}` (docs/sms.md).
Brevo's other option, a user and password in the webhook's URL, arrives as HTTP Basic
authentication: accepted when the password is the same token (any user name). Anything
else answers 401 and changes nothing.

Brevo's `batched` option sends a JSON array of events: each is taken as if alone.
Exempt from CSRF (no cookie is involved).
Disabled (404) until PARIS_AVENIR_SMS_WEBHOOK_TOKEN is set.

Each event is taken once: its key is unique in `provider_event`, so a replayed or retried
event has no second effect, even when 30 copies arrive at the same moment.

A STOP applies to the number that sent it and to no other: the number our SMS went to when
the reply names that SMS (Brevo's messageId), else the inbound's sender (`from`) — never a
number read from any other field. A reply whose sender contradicts the SMS it answers is
ignored.

A receipt that fails a message (a hard bounce, a blacklisted or rejected number) queues its
fallback on the other channel at once (messaging/fallback.py).

Any other reply is an answer to the référent (messaging.inbound): into the conversation of
the one youth whose number sent it, or into the supervisors' queue when the number is
several youths' or nobody's — never into a file chosen by guess. Its sender is found the
same way as a STOP's; a contradicted one counts as nobody's.
"""

from __future__ import annotations

import base64
import json
import logging
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from paris_avenir.config import Settings
from paris_avenir.db import SessionDep, utcnow
from paris_avenir.kit import phone as phones
from paris_avenir.kit.crypto import constant_time_equals, keyed_hash
from paris_avenir.messaging import fallback, inbound, outbox
from paris_avenir.messaging.models import OutboxMessage, OutboxStatus, ProviderEvent
from paris_avenir.web.routing import Route
from paris_avenir.youths import service as youth_service
from paris_avenir.youths.models import Channel

logger = logging.getLogger(__name__)

router = APIRouter(route_class=Route, prefix="/webhooks")

# The SMS events Brevo's webhooks send (its definition: accepted, delivered, softBounce,
# hardBounce, unsubscribe, reply, subscribe, sent, blacklisted, skip), lower-cased. Only
# `sent` and `delivered` say the SMS left; `accepted` (taken, not yet sent), `softbounce`
# (Brevo retries) and `subscribe` change nothing. A hard bounce or a blacklisted number
# fails the message and flags the number; a skipped or rejected message fails, nobody
# flagged.
RECEIPT_EVENTS = {
    "sent": OutboxStatus.SENT,
    "delivered": OutboxStatus.DELIVERED,
    "hardbounce": OutboxStatus.FAILED,
    "hard_bounce": OutboxStatus.FAILED,
    "blacklisted": OutboxStatus.FAILED,
    "rejected": OutboxStatus.FAILED,
    "skip": OutboxStatus.FAILED,
    "skipped": OutboxStatus.FAILED,
}
NOT_THE_NUMBER = {"rejected", "skip", "skipped"}
MAX_BATCH = 500
REPLY_EVENTS = {"reply", "replied", "replies", "inbound"}
UNSUBSCRIBE_EVENTS = {"unsubscribe", "unsubscribed"}
# What a youth may answer to stop messages, read leniently: case, accents and punctuation
# do not matter ("Stop.", "arrêt", "ARRET !"). A keyword opts out when the reply is that
# keyword with at most a politeness around it ("stop svp", "STOP merci"); a sentence that
# merely uses the word ("stop, j'arrive", "l'arrêt de bus") is an answer, not an opt-out.
STOP_KEYWORDS = {
    "stop",
    "stopsms",
    "arret",
    "arreter",
    "arretez",
    "desinscription",
    "desinscrire",
    "desabonnement",
    "desabonner",
    "unsubscribe",
}
STOP_COURTESIES = {"svp", "stp", "merci", "please", "sms", "messages", "message", "s", "il"}
STOP_COURTESIES |= {"vous", "plait", "te", "moi", "me", "les", "des", "de", "a", "tout"}
# Phrases that say it whatever surrounds them.
STOP_PHRASES = ("ne plus recevoir", "ne veux plus recevoir", "ne souhaite plus recevoir")


def normalise_reply(text: str) -> str:
    """Lower case, no accents, words separated by single spaces, no punctuation."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    letters = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join("".join(char if char.isalnum() else " " for char in letters).split())


def is_stop_reply(text: str) -> bool:
    words = normalise_reply(text).split()
    if not words:
        return False
    joined = " ".join(words)
    if any(phrase in joined for phrase in STOP_PHRASES):
        return True
    if words[0] not in STOP_KEYWORDS and not (len(words) > 1 and words[1] in STOP_KEYWORDS):
        return False
    # The keyword first, or after one courtesy ("merci stop"); everything else courtesy.
    rest = words[1:] if words[0] in STOP_KEYWORDS else [words[0], *words[2:]]
    return len(rest) <= 4 and all(word in STOP_COURTESIES or word in STOP_KEYWORDS for word in rest)


def _authenticate(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    expected = settings.sms_webhook_token
    if not expected:
        raise HTTPException(status_code=404)
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(given.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            decoded = ""
        given = decoded.partition(":")[2]
    elif scheme.lower() != "bearer":
        given = ""
    if not given or not constant_time_equals(given.strip(), expected):
        raise HTTPException(status_code=401, headers={"WWW-Authenticate": "Bearer"})
    return settings


def _first(payload: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if payload.get(key) not in (None, ""):
            return payload[key]
    return None


def _event_key(secret_key: str, event: str, payload: dict[str, Any]) -> str:
    """What identifies one event, whatever else the provider adds or a retry changes.
    Brevo's `id` is the webhook's, the same for every call: it identifies nothing."""
    identity = {
        "event": event,
        "event_id": _first(payload, "eventId", "event_id", "uuid"),
        "message": _first(payload, "messageId", "message_id"),
        "at": _first(payload, "ts_event", "ts_epoch", "ts", "date"),
        "from": _first(payload, "from"),
        "reply": _first(payload, "reply", "text", "content"),
    }
    return keyed_hash(
        secret_key, json.dumps(identity, sort_keys=True, default=str), purpose="sms-webhook-event"
    )


def _first_time(session: Session, key: str, event: str) -> bool:
    """Takes the event's key; False if it was already taken (a replay). Two identical
    events at once: the second waits on the unique key and then finds it taken."""
    try:
        with session.begin_nested():
            session.add(ProviderEvent(event_key=key, event=event[:40]))
            session.flush()
    except IntegrityError:
        return False
    return True


def _e164(raw: Any) -> str | None:
    number = str(raw).strip()
    try:
        return phones.normalise_phone(number if number.startswith("+") else f"+{number}")
    except phones.InvalidPhoneNumber:
        return None


def _sender(session: Session, payload: dict[str, Any]) -> str | None:
    """The number that sent this reply, and only that one (see the module's docstring)."""
    stated = _first(payload, "from")
    sender = _e164(stated) if stated is not None else None
    message_id = _first(payload, "messageId", "message_id")
    answered = None
    if message_id is not None:
        answered = session.scalar(
            select(OutboxMessage).where(
                OutboxMessage.provider_message_id == str(message_id),
                OutboxMessage.channel == Channel.SMS,
            )
        )
    if answered is None:
        return sender
    if sender is not None and sender != answered.recipient:
        return None  # a sender that is not who our SMS went to: believe neither
    return answered.recipient


def _received_at(payload: dict[str, Any]) -> datetime:
    """When the youth sent it: Brevo's `ts_event` (seconds, UTC) when it is plausible (not
    in the future, not older than a week), else now."""
    now = utcnow()
    raw = payload.get("ts_event")
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        try:
            at = datetime.fromtimestamp(raw, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return now
        if now - timedelta(days=7) <= at <= now:
            return at
    return now


def _handle(session: Session, settings: Settings, payload: dict[str, Any]) -> JSONResponse:
    event = str(_first(payload, "event", "msg_status") or "").strip().lower()
    is_reply = event in REPLY_EVENTS or event in UNSUBSCRIBE_EVENTS
    if event not in RECEIPT_EVENTS and not is_reply:
        return JSONResponse({"status": "ignored"})
    if not _first_time(session, _event_key(settings.secret_key, event, payload), event):
        logger.info("sms webhook: %s event already taken, ignored", event)
        return JSONResponse({"status": "duplicate"})
    if event in RECEIPT_EVENTS:
        message_id = _first(payload, "messageId", "message_id")
        if message_id is not None:
            message = outbox.apply_receipt(
                session,
                str(message_id),
                RECEIPT_EVENTS[event],
                detail=f"provider event: {event}",
                flags_recipient=event not in NOT_THE_NUMBER,
            )
            if message is not None and message.status is OutboxStatus.FAILED:
                # Bounced: the notice goes by email now, not at the next fallback pass.
                fallback.fall_back_now(session, message, base_url=settings.base_url)
            elif message is not None and message.status is OutboxStatus.DELIVERED:
                # Delivered late: a fallback still waiting to leave never does.
                fallback.first_delivered(session, message)
        return JSONResponse({"status": "ok"})
    text = str(_first(payload, "reply", "text", "content") or "")
    if event in UNSUBSCRIBE_EVENTS or is_stop_reply(text):
        sender = _sender(session, payload)
        if sender is None:
            logger.info("sms webhook: a STOP whose sender is unknown or contradicted, ignored")
            return JSONResponse({"status": "ignored"})
        for youth in youth_service.youths_with_phone(session, sender):
            # Read again under a row lock: two different STOPs at once opt out once.
            session.refresh(youth, with_for_update=True)
            youth_service.opt_out_of_outreach(session, youth, via="sms_stop")
        return JSONResponse({"status": "ok"})
    stated = _first(payload, "from", "to")
    outcome = inbound.receive_reply(
        session,
        sender=_sender(session, payload),
        text=text,
        at=_received_at(payload),
        shown=_e164(stated) if stated is not None else None,
    )
    logger.info("sms webhook: a reply, %s", outcome.value)
    return JSONResponse({"status": "ok"})


async def _json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise HTTPException(status_code=400) from None


# The caller is authenticated before the body is read (dependencies resolve in order).
AuthenticatedSettings = Annotated[Settings, Depends(_authenticate)]
JsonBody = Annotated[Any, Depends(_json_body)]


@router.post("/sms/brevo")
def brevo_sms_event(
    settings: AuthenticatedSettings, payload: JsonBody, session: SessionDep
) -> JSONResponse:
    """A plain `def`: the database work runs on a thread, so a duplicate waiting on the unique
    key does not block the event loop (and with it the commit of the copy it waits for)."""
    # One event, or Brevo's batched webhook: an array of them.
    events = payload if isinstance(payload, list) else [payload]
    if not events or len(events) > MAX_BATCH or not all(isinstance(e, dict) for e in events):
        raise HTTPException(status_code=400)
    if isinstance(payload, dict):
        return _handle(session, settings, payload)
    answers = [_handle(session, settings, event) for event in events]
    return JSONResponse(
        {"status": "ok", "events": [json.loads(bytes(answer.body))["status"] for answer in answers]}
    )
