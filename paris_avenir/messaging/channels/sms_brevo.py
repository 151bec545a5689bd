"""SMS through Brevo's transactional SMS API (POST /v3/transactionalSMS/send; the older
/v3/transactionalSMS/sms is deprecated and answers the same request).

Why Brevo: a French company hosting its data in the EU, already used by French public
digital services for transactional SMS, with delivery webhooks and inbound replies (STOP).
The adapter is small; another provider is another class with the same `send_sms`.

What Brevo's answers mean (its published API definition, kept in tests/brevo/):
- 201: the message is taken; `messageId` identifies it in events and webhooks.
- 400 with `{"code", "message"}`: an `invalid_parameter` about the recipient means the
  number is wrong (permanent, the youth's number is flagged); any other 400 is a request
  error of ours (sender, missing parameter…): nobody is flagged, the operator is alerted and
  the message is retried once the settings are fixed. 401/402/403 likewise (key, credits).
- The statistics lookup (`find_sent`): only `sent` or `delivered` means the SMS left;
  `accepted` means Brevo has it but not yet sent (ask again later, never send twice);
  `hardBounces` and `blocked` are permanent for that number; `rejected` and `skipped` are
  permanent for that message only; `softBounces`/`bounces` (phone off, network) are retried.
"""

from __future__ import annotations

from typing import Any

import httpx

from paris_avenir.messaging.channels import (
    DeliveryError,
    MessageRefused,
    OutcomeUnknown,
    PermanentFailure,
    ProviderRefusedRequest,
    TemporaryFailure,
)
from paris_avenir.messaging.sms_segments import is_gsm7

# Statuses that say our request (settings, key, credits) is wrong, not the recipient.
REQUEST_ERROR_STATUSES = {400, 401, 402, 403, 404, 405, 406, 422}
# What in a 400's message says the recipient's number is what is wrong.
RECIPIENT_WORDS = ("recipient", "phone", "mobile", "number", "numéro")
SENT_EVENTS = {"sent", "delivered"}
PENDING_EVENTS = {"accepted"}
NUMBER_FAILURE_EVENTS = {"hardbounces", "hardbounce", "blocked"}
MESSAGE_FAILURE_EVENTS = {"rejected", "skipped"}
RETRYABLE_EVENTS = {"softbounces", "softbounce", "bounces"}
# A few seconds each, not the minutes a hung provider could take: a send holds one of the
# outbox worker's threads until it answers or times out.
TIMEOUT = httpx.Timeout(5.0, connect=3.0)
# How far back find_sent() looks: a message interrupted mid-send is recovered within minutes.
LOOKUP_DAYS = 7


def reference_tag(reference: str) -> str:
    return f"ref:{reference}"


def refusal(response: httpx.Response) -> DeliveryError:
    """What a 4xx answer means, read from its body (never repeating the body, which may
    name the number)."""
    code, text = "", ""
    try:
        body = response.json()
        if isinstance(body, dict):
            code = str(body.get("code") or "")
            text = str(body.get("message") or "").lower()
    except ValueError:
        pass
    safe_code = code if code.replace("_", "").isalpha() and len(code) <= 40 else "?"
    if (
        response.status_code == 400
        and code == "invalid_parameter"
        and any(word in text for word in RECIPIENT_WORDS)
    ):
        return PermanentFailure("SMS provider refused the number (400 invalid_parameter)")
    return ProviderRefusedRequest(
        f"SMS {response.status_code} {safe_code}; check the SMS settings (sender, key, credits)"
    )


def classify_events(events: list[Any]) -> str | None:
    """The provider's events for one reference: the messageId if the SMS left, None if the
    provider never got it or it may be sent again; raises what a failure means."""
    by_kind: dict[str, str] = {}
    for event in events:
        if not isinstance(event, dict) or event.get("messageId") is None:
            continue
        kind = str(event.get("event") or "").lower()
        by_kind.setdefault(kind, str(event["messageId"]))
    for kind in SENT_EVENTS:
        if kind in by_kind:
            return by_kind[kind]
    if by_kind.keys() & NUMBER_FAILURE_EVENTS:
        raise PermanentFailure("SMS provider could not deliver to this number (hard bounce)")
    refused = sorted(by_kind.keys() & MESSAGE_FAILURE_EVENTS)
    if refused:
        raise MessageRefused(f"SMS provider did not send the message ({refused[0]})")
    if by_kind.keys() & PENDING_EVENTS:
        raise TemporaryFailure("SMS provider has the message but has not sent it yet")
    # Soft bounces (phone off, network) or nothing at all: sending again is the retry.
    return None


class BrevoSmsSender:
    name = "brevo"

    def __init__(
        self,
        *,
        api_url: str,
        api_key: str,
        sender: str,
        timeout: httpx.Timeout | float = TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_url = api_url
        self.sender = sender
        self.client = httpx.Client(
            timeout=timeout,
            transport=transport,
            headers={"api-key": api_key, "accept": "application/json"},
        )

    def send_sms(self, *, to: str, text: str, reference: str, tag: str) -> str | None:
        payload = {
            "sender": self.sender,
            "recipient": to.lstrip("+"),  # Brevo wants the international number, no "+"
            "content": text,
            "type": "transactional",
            # The second tag lets find_sent() ask Brevo whether this very message left.
            "tag": [tag, reference_tag(reference)],
            "unicodeEnabled": not is_gsm7(text),
        }
        try:
            response = self.client.post(self.api_url, json=payload)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            # No connection: Brevo never saw the request.
            raise TemporaryFailure(f"SMS provider unreachable ({type(error).__name__})") from None
        except httpx.HTTPError as error:
            # Sent, but no answer: Brevo may have taken it (looked up before anything else).
            raise OutcomeUnknown(f"SMS provider did not answer ({type(error).__name__})") from None
        if response.status_code in REQUEST_ERROR_STATUSES:
            raise refusal(response)
        if response.status_code >= 300:
            raise TemporaryFailure(f"SMS provider answered {response.status_code}")
        try:
            message_id = response.json().get("messageId")
        except ValueError:
            message_id = None
        return str(message_id) if message_id is not None else None

    def find_sent(self, *, to: str, reference: str) -> str | None:
        # GET /v3/transactionalSMS/statistics/events, filtered by our reference tag.
        events_url = self.api_url.rsplit("/transactionalSMS/", 1)[0]
        events_url += "/transactionalSMS/statistics/events"
        params: dict[str, str | int] = {
            "tags": reference_tag(reference),
            "phoneNumber": to.lstrip("+"),
            "days": LOOKUP_DAYS,
            "limit": 10,
        }
        try:
            response = self.client.get(events_url, params=params)
        except httpx.HTTPError as error:
            raise TemporaryFailure(f"SMS provider unreachable ({type(error).__name__})") from None
        if response.status_code >= 300:
            raise TemporaryFailure(f"SMS provider answered {response.status_code}")
        try:
            events = response.json().get("events") or []
        except ValueError:
            raise TemporaryFailure("SMS provider answered something unreadable") from None
        return classify_events(events)

    def close(self) -> None:
        self.client.close()
