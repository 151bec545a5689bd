"""Telling a youth that something happened (a message, a decision), through the outbox:
on their preferred channel if it works, in their language, never in quiet hours, and
once per batch (three messages in a row are one notification)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from paris_avenir.db import utcnow
from paris_avenir.kit import quiet_hours
from paris_avenir.kit.quiet_hours import QuietHours
from paris_avenir.messaging import message_templates, outbox, sms_texts, unsubscribe
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.web import i18n
from paris_avenir.youths.models import Channel, Youth

# Confirmations of what the youth just did: they leave at once, even in quiet hours (quiet
# hours are for what we initiate). Sign-in and contact codes are queued elsewhere, likewise.
CONFIRMATIONS = frozenset({"appointment_confirmation"})


def reachable_channel(youth: Youth, wanted: Channel | None = None) -> Channel | None:
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


def notify(
    session: Session,
    youth: Youth,
    *,
    template: str,
    key: str,
    sms_text: str,
    email_subject: str,
    email_text: str,
    now: datetime | None = None,
    not_before: datetime | None = None,
    expires_at: datetime | None = None,
    attachment: tuple[str, str, str] | None = None,
    exact_time: bool = False,
    channel: Channel | None = None,
    quiet: QuietHours | None = None,
) -> OutboxMessage | None:
    """Queue the message on the youth's channel, outside the admin's quiet hours unless
    `exact_time` (the caller already chose an allowed moment, like an early reminder) or
    it confirms what the youth just did (CONFIRMATIONS: it leaves at once). An outreach
    email to a youth who unsubscribed from them goes as an SMS if one can, else not at all.
    `quiet` saves a query when the caller already has the window."""
    channel = channel or reachable_channel(youth)  # a step may ask for its own channel
    if (
        channel is Channel.EMAIL
        and youth.outreach_email_opted_out_at is not None
        and unsubscribe.is_outreach(template)
    ):
        # Unsubscribed from outreach emails (the link in one of them): an SMS if it can go.
        usable_sms = youth.phone is not None and youth.phone_unreachable_at is None
        channel = Channel.SMS if usable_sms else None
    if channel is None:
        return None
    wanted = max(filter(None, (now or utcnow(), not_before)))
    confirmation = template in CONFIRMATIONS
    quiet = quiet or quiet_hours.load(session)
    send_at = wanted if exact_time or confirmation else quiet.next_sending_time(wanted)
    if channel is Channel.SMS:
        assert youth.phone is not None
        return outbox.enqueue(
            session,
            channel=channel,
            recipient=youth.phone,
            template=template,
            body_text=sms_text,
            idempotency_key=key,
            youth_id=youth.id,
            language=youth.language,
            now=now,
            not_before=send_at,
            expires_at=expires_at,
            respects_quiet_hours=not confirmation,
        )
    assert youth.email is not None
    return outbox.enqueue(
        session,
        channel=channel,
        recipient=youth.email,
        template=template,
        subject=email_subject,
        body_text=email_text,
        idempotency_key=key,
        youth_id=youth.id,
        language=youth.language,
        now=now,
        not_before=send_at,
        expires_at=expires_at,
        attachment=attachment,
        respects_quiet_hours=not confirmation,
    )


def notify_new_message(
    session: Session,
    youth: Youth,
    *,
    thread_id: uuid.UUID,
    first_unread_id: uuid.UUID,
    base_url: str,
    now: datetime | None = None,
) -> OutboxMessage | None:
    link = f"{base_url.rstrip('/')}/mon-espace/messages"
    with i18n.using_locale(youth.language):
        sms = i18n.gettext(sms_texts.NEW_MESSAGE, link=link)
        subject = i18n.gettext("Nouveau message de votre référent")
        text = i18n.gettext(
            "Bonjour,\n\nVous avez un nouveau message de votre référent dans votre espace "
            "Paris avenir.\n\nLisez-le ici : %(link)s",
            link=link,
        )
    sms = message_templates.render_sms(session, "new_message", youth.language, sms, link=link)
    return notify(
        session,
        youth,
        template="new_message",
        key=f"new-message:{thread_id}:{first_unread_id}",
        sms_text=sms,
        email_subject=subject,
        email_text=text,
        now=now,
    )


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
