"""SMS through Brevo's transactional SMS API (POST /v3/transactionalSMS/sms).

Why Brevo: a French company hosting its data in the EU, already used by French public
digital services for transactional SMS, with delivery webhooks and inbound replies (STOP).
The adapter is small; another provider is another class with the same `send_sms`.
"""

from __future__ import annotations

import httpx

from paris_avenir.messaging.channels import PermanentFailure, TemporaryFailure
from paris_avenir.messaging.sms_segments import is_gsm7

# 400: the request itself is wrong (invalid number, empty text): retrying cannot help.
PERMANENT_STATUSES = {400, 404, 422}
# A few seconds each, not the minutes a hung provider could take: a send holds one of the
# outbox worker's threads until it answers or times out.
TIMEOUT = httpx.Timeout(5.0, connect=3.0)
# How far back find_sent() looks: a message interrupted mid-send is recovered within minutes.
LOOKUP_DAYS = 7


def reference_tag(reference: str) -> str:
    return f"ref:{reference}"


class BrevoSmsSender:
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
        except httpx.HTTPError as error:
            raise TemporaryFailure(f"SMS provider unreachable ({type(error).__name__})") from None
        if response.status_code in PERMANENT_STATUSES:
            raise PermanentFailure(f"SMS provider refused the message ({response.status_code})")
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
        for event in events:
            if event.get("messageId") is not None:
                return str(event["messageId"])
        return None

    def close(self) -> None:
        self.client.close()
