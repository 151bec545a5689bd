"""The messages of the non-recours watch (sent through notifications.notify): the
inactivity steps, the "Comment ça va ?" check-in and the other triggers. Their templates
are `outreach_<reason>`: the youth can stop them by email (messaging/unsubscribe.py)."""

from __future__ import annotations

import uuid
from typing import Protocol

from paris_avenir.messaging import sms_texts
from paris_avenir.messaging.notifications import Detailed, Notice
from paris_avenir.outreach.models import OutreachReason
from paris_avenir.web.i18n import N_
from paris_avenir.youths.models import Channel

# A trigger's SMS and email subject; its email says the SMS's words.
TRIGGER_TEXTS: dict[OutreachReason, tuple[str, str]] = {
    OutreachReason.DOCUMENTS_AWAITED: (
        sms_texts.DOCUMENTS_AWAITED,
        N_("Il manque un document pour votre demande"),
    ),
    OutreachReason.MISSED_APPOINTMENT: (
        sms_texts.MISSED_APPOINTMENT,
        N_("Votre rendez-vous manqué"),
    ),
    OutreachReason.BIRTHDAY_21: (
        sms_texts.BIRTHDAY_21_DISCREET,
        N_("Bientôt 21 ans : ce qui change"),
    ),
    OutreachReason.BIRTHDAY_25: (
        sms_texts.BIRTHDAY_25,
        N_("Bientôt 25 ans : préparons la suite"),
    ),
    OutreachReason.ALLOCATION_RENEWAL: (
        sms_texts.ALLOCATION_RENEWAL_DISCREET,
        N_("Une aide à renouveler"),
    ),
}
# What a trigger says instead to a youth who chose "messages détaillés" (the aid named): its
# SMS, email subject and link. The others have one text, the discreet one above.
DETAILED_TRIGGER_TEXTS: dict[OutreachReason, tuple[str, str, str]] = {
    OutreachReason.BIRTHDAY_21: (
        sms_texts.BIRTHDAY_21,
        N_("Bientôt 21 ans : ce qui change"),
        "/mon-espace/droits",
    ),
    OutreachReason.ALLOCATION_RENEWAL: (
        sms_texts.ALLOCATION_RENEWAL,
        N_("Renouvelez votre allocation"),
        "/mon-espace/droits/allocation",
    ),
}
TRIGGER_PATHS = {
    OutreachReason.DOCUMENTS_AWAITED: "/mon-espace/demandes",
    OutreachReason.MISSED_APPOINTMENT: "/mon-espace/rendez-vous",
    OutreachReason.BIRTHDAY_21: "/mon-espace/droits",
    OutreachReason.BIRTHDAY_25: "/mon-espace/messages",
    OutreachReason.ALLOCATION_RENEWAL: "/mon-espace/droits",  # the aid's page names it
}


class Named(Protocol):
    @property
    def first_name(self) -> str: ...


class Attempted(Protocol):
    """An attempt recorded (OutreachAttempt), or about to be with its batch."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def reason(self) -> OutreachReason: ...
    @property
    def channel(self) -> Channel | None: ...


def for_attempt(
    youth: Named, attempt: Attempted, *, base_url: str, link: str | None = None
) -> Notice:
    """The message of a recorded attempt, on the channel the step chose; `link` is the
    check-in's one-tap link."""
    reason = attempt.reason
    text: str | None = None  # a trigger's email says the SMS's words
    detailed: Detailed | None = None
    values = {"name": youth.first_name, "link": f"{base_url.rstrip('/')}/mon-espace"}
    if reason is OutreachReason.CHECK_IN:
        sms, subject = sms_texts.CHECK_IN, N_("Comment ça va ?")
        text = N_(
            "Bonjour %(name)s,\n\nComment ça va ? Répondez en un clic, sans mot de passe : %(link)s"
        )
        values["link"] = str(link)
    elif reason in TRIGGER_TEXTS:
        sms, subject = TRIGGER_TEXTS[reason]
        values["link"] = base_url.rstrip("/") + TRIGGER_PATHS[reason]
        if reason in DETAILED_TRIGGER_TEXTS:
            detailed_sms, detailed_subject, path = DETAILED_TRIGGER_TEXTS[reason]
            detailed = Detailed(
                sms=detailed_sms,
                subject=detailed_subject,
                values={"link": base_url.rstrip("/") + path},
            )
    else:
        sms, subject = sms_texts.INACTIVITY, N_("Paris avenir : on pense à vous")
        text = N_(
            "Bonjour %(name)s,\n\nCela fait longtemps que nous n’avons pas eu de "
            "nouvelles. Votre référent peut vous aider : logement, argent, papiers, "
            "santé.\n\nVotre espace : %(link)s"
        )
    return Notice(
        template=f"outreach_{reason.value}",
        key=f"outreach:{attempt.id}",
        sms=sms,
        subject=subject,
        text=text,
        values=values,
        channel=attempt.channel,
        detailed=detailed,
    )
