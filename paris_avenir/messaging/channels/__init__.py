"""Delivery channels. Each raises TemporaryFailure (retry later) or PermanentFailure (never
retry: the address or number is wrong) and never puts a recipient in an error message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit

from paris_avenir.config import Settings


class DeliveryError(Exception):
    permanent = False
    # Whether the failure says the recipient's address or number is wrong (flags the youth
    # "injoignable"), and whether the operator must fix something on our side.
    flags_recipient = False
    alerts_operator = False


class TemporaryFailure(DeliveryError):
    pass


class PermanentFailure(DeliveryError):
    permanent = True
    flags_recipient = True


class OutcomeUnknown(TemporaryFailure):
    """The request may have reached the provider (no answer within the timeout, a
    connection broken after sending): whether it took the message is unknown, so the
    message is looked up at that very provider before it may leave anywhere else. Every
    other failure is an answer (or no connection at all): the provider did not take it."""


class ProviderRefusedRequest(TemporaryFailure):
    """The provider refused our request itself (a bad sender setting, a missing parameter,
    the API key): the recipient is not at fault, the operator must fix the settings, and the
    message is retried with backoff so that it leaves once they are fixed."""

    alerts_operator = True
    PREFIX = "the provider refused our request"

    def __init__(self, detail: str) -> None:
        super().__init__(f"{self.PREFIX}: {detail}")


class MessageRefused(PermanentFailure):
    """The provider will never deliver this message, for a reason that is not the number
    (rejected or skipped by the provider): not retried, nobody flagged."""

    flags_recipient = False


class SmsSender(Protocol):
    def send_sms(self, *, to: str, text: str, reference: str, tag: str) -> str | None:
        """Send one SMS to an E.164 number; return the provider's message id."""
        ...

    def find_sent(self, *, to: str, reference: str) -> str | None:
        """After a crash between sending and recording: the provider's id of the SMS sent
        with this reference, or None if the provider never got it. Raises TemporaryFailure
        when the provider cannot tell (the message then waits rather than risk a duplicate)."""
        ...


@dataclass(frozen=True)
class OutgoingEmail:
    """One email as the outbox hands it to the sender. `reference` makes its Message-ID
    (so a resend after a crash is recognisable); `unsubscribe_url`: the one-click
    unsubscribe link of an outreach email (List-Unsubscribe, RFC 8058)."""

    to: str
    subject: str
    text: str
    html: str | None
    reference: str
    attachment: tuple[str, str, str] | None = None
    unsubscribe_url: str | None = None


class EmailSender(Protocol):
    def send_email(self, email: OutgoingEmail, *, now: datetime | None = None) -> str | None:
        """Send one email; return its Message-ID. `now`: its Date header."""
        ...


@dataclass
class Channels:
    sms: SmsSender
    email: EmailSender
    # For the links an email gets when it leaves (the one-click unsubscribe of outreach
    # emails): empty in tests that build channels by hand, then no such link is added.
    base_url: str = ""
    secret_key: str = ""
    # Messages a dispatcher pass has at the provider at once (Settings.send_concurrency;
    # channels built by hand send one at a time).
    send_concurrency: int = 1


SMS_PROVIDER_OF_BACKEND = {"http": "brevo", "primotexto": "primotexto", "file": "file"}


def provider_names(settings: Settings) -> dict[str, str]:
    """Which provider each channel ("sms", "email") goes through, as build_channels picks it:
    the provider label of /metrics (with the failover, the primary's; the SMS series by
    provider then read each message's own, sms_failover.counts_by_provider)."""
    sms = SMS_PROVIDER_OF_BACKEND.get(settings.sms_backend, settings.sms_failover_primary)
    return {"sms": sms, "email": "smtp"}


def _sms_provider(settings: Settings, name: str) -> SmsSender:
    from paris_avenir.messaging.channels.sms_brevo import BrevoSmsSender
    from paris_avenir.messaging.channels.sms_primotexto import PrimotextoSmsSender

    if name == "primotexto":
        return PrimotextoSmsSender(
            api_url=settings.primotexto_api_url,
            api_key=settings.primotexto_api_key,
            sender=settings.primotexto_sender or settings.sms_sender,
        )
    return BrevoSmsSender(
        api_url=settings.sms_api_url, api_key=settings.sms_api_key, sender=settings.sms_sender
    )


def build_channels(settings: Settings) -> Channels:
    from paris_avenir.messaging.channels.email_smtp import SmtpEmailSender
    from paris_avenir.messaging.channels.sms_failover import SmsFailover
    from paris_avenir.messaging.channels.sms_file import FileSmsSender

    sms: SmsSender
    if settings.sms_backend == "http":
        sms = _sms_provider(settings, "brevo")
    elif settings.sms_backend == "primotexto":
        sms = _sms_provider(settings, "primotexto")
    elif settings.sms_backend == "failover":
        primary = settings.sms_failover_primary
        secondary = "primotexto" if primary == "brevo" else "brevo"
        sms = SmsFailover(
            {name: _sms_provider(settings, name) for name in (primary, secondary)},
            primary=primary,
            secondary=secondary,
            policy=SmsFailover.policy_of(settings),
        )
    else:
        sms = FileSmsSender(settings.sms_file)
    email = SmtpEmailSender(
        settings.smtp_url,
        sender=settings.mail_from,
        domain=urlsplit(settings.base_url).hostname or "localhost",
    )
    return Channels(
        sms=sms,
        email=email,
        base_url=settings.base_url,
        secret_key=settings.secret_key,
        send_concurrency=settings.send_concurrency,
    )
