"""SMS through Primotexto's notification API (POST /v2/notification/messages/send).

Why Primotexto: the provider rdv-insertion (GIP de l'inclusion) sends through when Brevo
cannot (its `sms_provider` "primotexto", FORCE_PRIMOTEXTO), a French company, with a
documented HTTP API for transactional ("notification") SMS. Its published documentation
(the parts we use are transcribed in tests/primotexto/, with their addresses) says:

- Authentication: the header `X-Primotexto-ApiKey`.
- The request: JSON `number` (+33… or 06…), `message`, optional `sender` (3 to 11 letters
  or digits), `campaignName` (a pool of sends, for statistics) and `category` ("the search
  key of your sends, for stats, blacklists, callbacks"); 200 `{"creditsUsed", "snapshotId"}`.
- An error answers a JSON `{"code": N}` (the HTTP status of an error is not documented:
  any answer other than 200 is read by its code).
- Statistics by category: GET /v2/messages/stats?category=… counts what left (sent,
  submitted, delivered, errors, bounced…). Each message gets a category of its own made
  from our reference, so that `find_sent` asks "did this very message leave?".
- No delivery webhook is documented (replies and statuses are fetched, not pushed): no
  receipt route; the message stays "sent" (docs/sms.md).
- The characters it takes are a list close to GSM 7-bit (no Arabic, no Dari, no Tigrinya):
  `accepts()` says whether a text can go through it; the failover keeps the others on the
  provider that can carry them.

Ids: the snapshotId is stored as "primotexto:<id>" (and a message recovered by its category
as "primotexto:<category>"), so that it never matches another provider's receipt.
"""

from __future__ import annotations

import hashlib
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

NAME = "primotexto"
ID_PREFIX = f"{NAME}:"
TIMEOUT = httpx.Timeout(5.0, connect=3.0)
# The characters its documentation allows in `message` (besides the line break and the
# space, which it sends).
ALLOWED = set(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    "@£_!$\"#èé%ù&ìò()*:+;,<-=ÑñÅ.>Üüåé/?à|^¤{}~\\'"
    " \n\r"
)
# Its error codes (the documentation's list, as the Symfony Notifier bridge names them).
NUMBER_CODES = {
    10: "no phone number",
    11: "invalid phone number",
    13: "number bounced (user blacklist)",
    14: "number bounced (global blacklist)",
    19: "fixed line number",
}
MESSAGE_CODES = {
    12: "number unsubscribed (STOP)",
    30: "no message content",
    31: "invalid characters in the message",
    32: "message too long",
}
NOT_FOUND_CODE = 16  # "no message for this query": the lookup found nothing
REQUEST_CODES = {
    20: "invalid characters in the sender",
    21: "sender too short",
    22: "sender too long",
    23: "fully numeric sender not allowed",
    40: "invalid campaign name",
    45: "invalid category",
    61: "invalid date format",
    62: "invalid scheduled date",
    70: "API access disabled",
    71: "insufficient credits",
    72: "authentication failed",
    73: "invalid JSON",
    76: "quota exceeded",
    90: "country not supported",
    91: "international mode needed",
    92: "blocked account",
    93: "user not found",
}


def accepts(text: str) -> bool:
    return all(character in ALLOWED for character in text)


def category_of(reference: str) -> str:
    """The message's own category: letters and digits only, from our reference (which may
    hold characters a category may not, and is not a name of anybody)."""
    return "pa" + hashlib.sha256(reference.encode()).hexdigest()[:30]


def error_code(response: httpx.Response) -> int | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict):
        try:
            return int(body.get("code"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
    return None


def refusal(response: httpx.Response) -> DeliveryError:
    """What an answer other than 200 means, by its documented code (the body may repeat the
    number: never quoted)."""
    code = error_code(response)
    if response.status_code >= 500 or code is None or code == 1000:
        # A fault at the provider: it did not take the message (no snapshotId).
        return TemporaryFailure(f"SMS provider answered {response.status_code} ({code or '?'})")
    if code in NUMBER_CODES:
        return PermanentFailure(f"SMS provider refused the number ({code} {NUMBER_CODES[code]})")
    if code in MESSAGE_CODES:
        return MessageRefused(f"SMS provider refused the message ({code} {MESSAGE_CODES[code]})")
    what = REQUEST_CODES.get(code, "request refused")
    return ProviderRefusedRequest(f"SMS {response.status_code} code {code} ({what})")


def _transport_error(error: httpx.HTTPError) -> DeliveryError:
    """No connection: the provider never saw the request. Anything later (a timeout while
    waiting for the answer, a broken connection): it may have taken the message."""
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
        return TemporaryFailure(f"SMS provider unreachable ({type(error).__name__})")
    return OutcomeUnknown(f"SMS provider did not answer ({type(error).__name__})")


class PrimotextoSmsSender:
    name = NAME

    def __init__(
        self,
        *,
        api_url: str,
        api_key: str,
        sender: str,
        timeout: httpx.Timeout | float = TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.sender = sender
        self.client = httpx.Client(
            timeout=timeout,
            transport=transport,
            headers={"X-Primotexto-ApiKey": api_key, "Accept": "application/json"},
        )

    def accepts(self, text: str) -> bool:
        return accepts(text)

    def send_sms(self, *, to: str, text: str, reference: str, tag: str) -> str | None:
        if not accepts(text):
            raise MessageRefused("SMS provider cannot carry these characters (Primotexto)")
        payload: dict[str, Any] = {
            "number": to,
            "message": text,
            "campaignName": tag,
            "category": category_of(reference),
        }
        if self.sender:
            payload["sender"] = self.sender
        try:
            response = self.client.post(f"{self.api_url}/notification/messages/send", json=payload)
        except httpx.HTTPError as error:
            raise _transport_error(error) from None
        if response.status_code != 200:
            raise refusal(response)
        try:
            snapshot = response.json().get("snapshotId")
        except (ValueError, AttributeError):
            snapshot = None
        return f"{ID_PREFIX}{snapshot}" if snapshot is not None else None

    def find_sent(self, *, to: str, reference: str) -> str | None:
        category = category_of(reference)
        try:
            response = self.client.get(
                f"{self.api_url}/messages/stats", params={"category": category}
            )
        except httpx.HTTPError as error:
            raise TemporaryFailure(f"SMS provider unreachable ({type(error).__name__})") from None
        if response.status_code != 200:
            if error_code(response) == NOT_FOUND_CODE:
                return None
            raise TemporaryFailure(f"SMS provider answered {response.status_code}")
        try:
            stats = response.json()
        except ValueError:
            raise TemporaryFailure("SMS provider answered something unreadable") from None
        if not isinstance(stats, dict):
            raise TemporaryFailure("SMS provider answered something unreadable")

        def count(key: str) -> int:
            value = stats.get(key)
            return int(value) if isinstance(value, int | float) else 0

        if count("bounced") and not count("delivered"):
            raise PermanentFailure("SMS provider could not deliver to this number (bounced)")
        if any(count(key) for key in ("sent", "submitted", "delivered", "errors")):
            # It left (an error after leaving is a delivery failure, not a reason to send
            # it twice).
            return ID_PREFIX + category
        return None

    def close(self) -> None:
        self.client.close()
