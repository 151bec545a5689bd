"""Telling a youth that something happened (a message, a decision), through the outbox:
on their preferred channel if it works, in their language, never in quiet hours, and
once per batch (three messages in a row are one notification).

Each message is a `Notice`, declared next to the domain that sends it (`*/notices.py`):
its texts are gettext msgids, filled in the youth's language by `notify()`, which also puts
the admin's SMS text in place of the built-in one (message_templates), picks the channel
and applies the quiet hours. One-time codes (auth/codes.py) and the warning to a previous
phone or address (`notify_previous_contact`) are security messages with their own path.

Discreet by default: a notice's `sms`, `subject` and `text` are what every youth receives
unless they chose "messages détaillés" on their profile (Youth.detailed_messages), and they
never say "psychologue", "ASE", an aid's name or an amount — the lock screen of a shared
phone shows them (tests/test_discreet_messages.py holds the forbidden words, in every
language). A notice with something more to say declares it in `detailed`, sent only to a
youth who chose it; a notice without `detailed` has one text, the discreet one, for all.
Psychologist appointments follow the same rule: discreet unless the youth chose otherwise."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from babel.support import LazyProxy
from sqlalchemy.orm import Session

from paris_avenir.kit import quiet_hours
from paris_avenir.kit.quiet_hours import QuietHours
from paris_avenir.messaging import message_templates, outbox, sms_texts, unsubscribe
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.web import i18n
from paris_avenir.youths.models import Channel, Youth

# A value put into a text: a string, a lazy label (read in the youth's language), or a
# function of the youth's language (a date in their words).
Value = str | LazyProxy | Callable[[str], str]
Attachment = tuple[str, str, str]  # file name, content type, body


@dataclass(frozen=True)
class Detailed:
    """What a notice says instead to a youth who chose "messages détaillés": what the
    request or appointment is about (an aid's name), never an amount in the SMS. Each msgid
    left None keeps the discreet one; `values` are added to (or replace) the notice's."""

    sms: str | None = None
    subject: str | None = None
    text: str | None = None
    values: Mapping[str, Value] = field(default_factory=dict)


@dataclass(frozen=True)
class Notice:
    """One message to a youth. `sms`, `subject` and `text` are msgids (N_), filled with
    `values` in the youth's language; `sms_values` are what the SMS says differently (a
    shorter link). `template` names it in the outbox and, when the admin's page offers it
    (message_templates.SPECS), is the key of the admin's SMS text. `key` makes it leave once."""

    template: str
    key: str
    sms: str
    subject: str
    text: str | None = None  # None: the email says the SMS's words
    values: Mapping[str, Value] = field(default_factory=dict)
    sms_values: Mapping[str, Value] = field(default_factory=dict)
    attachment: Callable[[], Attachment] | None = None  # built in the youth's language
    not_before: datetime | None = None
    expires_at: datetime | None = None
    # The caller already chose an allowed moment (an early reminder): no quiet-hours shift.
    exact_time: bool = False
    # Confirms what the youth just did: it leaves at once, even in quiet hours (quiet hours
    # are for what we initiate).
    confirmation: bool = False
    channel: Channel | None = None  # an outreach step may ask for its own channel
    # The words for a youth who chose "messages détaillés"; None: the discreet words for all.
    detailed: Detailed | None = None


@dataclass(frozen=True)
class Words:
    """A notice in one language: what each channel would carry."""

    sms: str
    subject: str
    text: str
    sms_values: Mapping[str, str]  # what the admin's SMS text is filled with


def _resolve(value: Value, language: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, LazyProxy):
        return str(value)
    return value(language)


def _fill(msgid: str, values: Mapping[str, str]) -> str:
    """The msgid translated, given the values it names (as a hand-written gettext call)."""
    return i18n.gettext(msgid, **{n: v for n, v in values.items() if f"%({n})" in msgid})


def render(notice: Notice, language: str, *, detailed: bool = False) -> Words:
    """The notice's built-in words in `language` (French where it has no translation): the
    discreet ones, or its detailed ones when `detailed` (the youth's choice) and it has some."""
    if detailed and notice.detailed is not None:
        more = notice.detailed
        notice = replace(
            notice,
            sms=more.sms or notice.sms,
            subject=more.subject or notice.subject,
            text=more.text or notice.text,
            values={**notice.values, **more.values},
        )
    with i18n.using_locale(language):
        values = {name: _resolve(value, language) for name, value in notice.values.items()}
        sms_values = values | {
            name: _resolve(value, language) for name, value in notice.sms_values.items()
        }
        sms = _fill(notice.sms, sms_values)
        return Words(
            sms=sms,
            subject=_fill(notice.subject, values),
            text=_fill(notice.text, values) if notice.text else sms,
            sms_values=sms_values,
        )


class Addressee(Protocol):
    """What a message needs to know of its youth: a Youth, or a light row of its columns
    (the outreach cycle loads no more)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def language(self) -> str: ...
    @property
    def preferred_channel(self) -> Channel: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def phone_unreachable_at(self) -> datetime | None: ...
    @property
    def email(self) -> str | None: ...
    @property
    def email_unreachable_at(self) -> datetime | None: ...
    @property
    def outreach_email_opted_out_at(self) -> datetime | None: ...
    @property
    def detailed_messages(self) -> bool: ...


def reachable_channel(youth: Addressee, wanted: Channel | None = None) -> Channel | None:
    """The wanted channel (by default the youth's preferred one) if it can work, otherwise
    the other one; None when neither can."""
    wanted = wanted or youth.preferred_channel
    usable = {
        Channel.SMS: youth.phone is not None and youth.phone_unreachable_at is None,
        Channel.EMAIL: youth.email is not None and youth.email_unreachable_at is None,
    }
    if usable[wanted]:
        return wanted
    other = Channel.EMAIL if wanted is Channel.SMS else Channel.SMS
    return other if usable[other] else None


def _channel(youth: Addressee, notice: Notice) -> Channel | None:
    channel = notice.channel or reachable_channel(youth)
    if (
        channel is Channel.EMAIL
        and youth.outreach_email_opted_out_at is not None
        and unsubscribe.is_outreach(notice.template)
    ):
        # Unsubscribed from outreach emails (the link in one of them): an SMS if it can go.
        usable_sms = youth.phone is not None and youth.phone_unreachable_at is None
        channel = Channel.SMS if usable_sms else None
    return channel


def notify(
    session: Session,
    youth: Addressee,
    notice: Notice,
    *,
    now: datetime,
    quiet: QuietHours | None = None,
) -> OutboxMessage | None:
    """Queue the notice in the youth's language on their channel (the other one if it
    cannot work; None when neither can), with the admin's SMS text when there is one,
    outside the admin's quiet hours unless `exact_time` or `confirmation`. An outreach
    email to a youth who unsubscribed from them goes as an SMS if one can, else not at all.
    `quiet` saves a query when the caller already has the window."""
    message = _message(
        youth,
        notice,
        now=now,
        quiet=lambda: quiet or quiet_hours.load(session),
        admin_text=lambda template, language: message_templates.override(
            session, template, language
        ),
    )
    return None if message is None else outbox.enqueue(session, **message)


def notify_many(
    session: Session,
    notices: Sequence[tuple[Addressee, Notice]],
    *,
    now: datetime,
    quiet: QuietHours,
) -> list[uuid.UUID | None]:
    """notify() for a batch: the admin's texts read once per template and language, the
    messages queued in one INSERT. The outbox message of each notice (None when neither
    channel can work), in order."""
    admin_texts: dict[tuple[str, str], str | None] = {}

    def admin_text(template: str, language: str) -> str | None:
        if (template, language) not in admin_texts:
            admin_texts[template, language] = message_templates.override(
                session, template, language
            )
        return admin_texts[template, language]

    messages = [
        _message(youth, notice, now=now, quiet=lambda: quiet, admin_text=admin_text)
        for youth, notice in notices
    ]
    queued = outbox.enqueue_many(session, [message for message in messages if message])
    return [queued.get(message["idempotency_key"]) if message else None for message in messages]


def _message(
    youth: Addressee,
    notice: Notice,
    *,
    now: datetime,
    quiet: Callable[[], QuietHours],
    admin_text: Callable[[str, str], str | None],
) -> dict[str, Any] | None:
    """What notify() queues (outbox.enqueue's arguments), or None when no channel works."""
    channel = _channel(youth, notice)
    if channel is None:
        return None
    words = render(notice, youth.language, detailed=youth.detailed_messages)
    if channel is Channel.SMS:
        recipient, subject, body, attachment = youth.phone, None, words.sms, None
        if notice.template in message_templates.SPECS:  # the admin may have rewritten it
            body = message_templates.fill(
                admin_text(notice.template, youth.language), body, **words.sms_values
            )
    else:
        recipient, subject, body = youth.email, words.subject, words.text
        with i18n.using_locale(youth.language):
            attachment = notice.attachment() if notice.attachment else None
    assert recipient is not None
    wanted = max(filter(None, (now, notice.not_before)))
    immediate = notice.exact_time or notice.confirmation
    return {
        "channel": channel,
        "recipient": recipient,
        "template": notice.template,
        "subject": subject,
        "body_text": body,
        "idempotency_key": notice.key,
        "youth_id": youth.id,
        "language": youth.language,
        "now": now,
        "not_before": wanted if immediate else quiet().next_sending_time(wanted),
        "expires_at": notice.expires_at,
        "attachment": attachment,
        "respects_quiet_hours": not notice.confirmation,
    }


def notify_previous_contact(
    session: Session,
    youth: Youth,
    *,
    changed: Channel,
    channel: Channel,
    recipient: str,
    key: str,
    now: datetime | None = None,
) -> OutboxMessage:
    """Tell the youth, at a number or address they had before, that their phone (`changed`
    SMS) or email was just changed (an import changed it): right away whatever the quiet
    hours, since whoever changed it could otherwise sign in first. Fixed words in the
    youth's language; an admin cannot rewrite them."""
    with i18n.using_locale(youth.language):
        subject = None
        if channel is Channel.SMS:
            body = i18n.gettext(
                sms_texts.PHONE_CHANGED if changed is Channel.SMS else sms_texts.EMAIL_CHANGED
            )
        elif changed is Channel.SMS:
            subject = i18n.gettext("Votre numéro a été changé sur Paris avenir")
            body = i18n.gettext(
                "Bonjour,\n\nLe numéro de téléphone de votre espace Paris avenir a été changé : "
                "les messages et les codes de connexion vont maintenant à un autre numéro.\n\n"
                "Si ce n’est pas vous, appelez votre référent ou venez au guichet."
            )
        else:
            subject = i18n.gettext("Votre adresse e-mail a été changée sur Paris avenir")
            body = i18n.gettext(
                "Bonjour,\n\nL’adresse e-mail de votre espace Paris avenir a été changée : "
                "les messages et les codes de connexion n’arrivent plus à cette adresse.\n\n"
                "Si ce n’est pas vous, appelez votre référent ou venez au guichet."
            )
    return outbox.enqueue(
        session,
        channel=channel,
        recipient=recipient,
        template="contact_changed",
        subject=subject,
        body_text=body,
        idempotency_key=key,
        youth_id=youth.id,
        language=youth.language,
        urgent=True,
        respects_quiet_hours=False,
        now=now,
    )
