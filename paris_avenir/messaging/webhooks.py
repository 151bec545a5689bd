"""Webhooks of the SMS provider (Brevo): delivery receipts and inbound replies (STOP).

Authenticated by a shared secret the provider sends as `Authorization: Bearer …`; exempt
from CSRF (no cookie is involved). Disabled (404) until PARIS_AVENIR_SMS_WEBHOOK_TOKEN is set.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from paris_avenir.config import Settings
from paris_avenir.db import SessionDep
from paris_avenir.kit import phone as phones
from paris_avenir.kit.crypto import constant_time_equals
from paris_avenir.messaging import outbox
from paris_avenir.messaging.models import OutboxStatus
from paris_avenir.youths import service as youth_service

router = APIRouter(prefix="/webhooks")

RECEIPT_EVENTS = {
    "sent": OutboxStatus.SENT,
    "accepted": OutboxStatus.SENT,
    "delivered": OutboxStatus.DELIVERED,
    "hardbounce": OutboxStatus.FAILED,
    "hard_bounce": OutboxStatus.FAILED,
    "rejected": OutboxStatus.FAILED,
    "blacklisted": OutboxStatus.FAILED,
}
REPLY_EVENTS = {"reply", "replied", "inbound"}
UNSUBSCRIBE_EVENTS = {"unsubscribe", "unsubscribed"}
# What a youth may answer to stop messages: the French and English usual words.
STOP_WORDS = {"STOP", "STOP SMS", "ARRET", "ARRÊT", "STOPSMS", "UNSUBSCRIBE"}


def _authenticate(request: Request) -> None:
    settings: Settings = request.app.state.settings
    expected = settings.sms_webhook_token
    if not expected:
        raise HTTPException(status_code=404)
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not given or not constant_time_equals(given, expected):
        raise HTTPException(status_code=401)


def _first(payload: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if payload.get(key) not in (None, ""):
            return payload[key]
    return None


@router.post("/sms/brevo")
async def brevo_sms_event(request: Request, session: SessionDep) -> JSONResponse:
    _authenticate(request)
    try:
        payload = await request.json()
    except ValueError:
        raise HTTPException(status_code=400) from None
    if not isinstance(payload, dict):
        raise HTTPException(status_code=400)
    event = str(_first(payload, "event", "msg_status") or "").strip().lower()
    if event in RECEIPT_EVENTS:
        message_id = _first(payload, "messageId", "message_id", "id")
        if message_id is not None:
            outbox.apply_receipt(
                session, str(message_id), RECEIPT_EVENTS[event], detail=f"provider event: {event}"
            )
        return JSONResponse({"status": "ok"})
    if event in REPLY_EVENTS or event in UNSUBSCRIBE_EVENTS:
        number = _first(payload, "from", "phone_number", "to", "msisdn")
        text = str(_first(payload, "reply", "text", "content") or "")
        if number and (event in UNSUBSCRIBE_EVENTS or text.strip().upper() in STOP_WORDS):
            try:
                e164 = phones.normalise_phone(
                    str(number) if str(number).startswith("+") else f"+{number}"
                )
            except phones.InvalidPhoneNumber:
                return JSONResponse({"status": "ignored"})
            for youth in youth_service.youths_with_phone(session, e164):
                youth_service.opt_out_of_outreach(session, youth, via="sms_stop")
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": "ignored"})
