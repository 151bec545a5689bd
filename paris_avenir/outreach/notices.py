"""The messages of the non-recours watch (sent through notifications.notify): the
inactivity steps, the "Comment ça va ?" check-in and the other triggers. Their templates
are `outreach_<reason>`: the youth can stop them by email (messaging/unsubscribe.py)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Protocol

from paris_avenir.documents.models import DocumentKind
from paris_avenir.documents.service import KIND_LABELS
from paris_avenir.messaging import sms_texts
from paris_avenir.messaging.notifications import Detailed, Notice
from paris_avenir.outreach.models import OutreachReason
from paris_avenir.web.i18n import N_, gettext
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


# --- Papers that expire (outreach/papers.py) -------------------------------------------------
# The SMS says the date and links to the vault, which says what to prepare; the email says
# all of it, with the link that books the guichet « démarches ».
PAPER_BOOKING_PATH = "/mon-espace/rendez-vous/nouveau?motif=guichet"
PAPER_VAULT_PATH = "/mon-espace/documents"
PAPER_SMS = {
    DocumentKind.RESIDENCE_PERMIT: sms_texts.PAPER_EXPIRY_PERMIT,
    DocumentKind.IDENTITY: sms_texts.PAPER_EXPIRY_IDENTITY,
}
PAPER_INTROS = {
    DocumentKind.RESIDENCE_PERMIT: N_(
        "Votre titre de séjour expire le %(date)s. La préfecture demande le renouvellement 2 "
        "à 4 mois avant : c’est le moment de le préparer."
    ),
    DocumentKind.IDENTITY: N_(
        "Votre pièce d’identité expire le %(date)s. Les rendez-vous en mairie prennent "
        "souvent plusieurs semaines : c’est le moment de la renouveler."
    ),
}
PAPER_PREPARE_HEADING = N_("Ce qu’il faut préparer :")
PAPER_TO_PREPARE: dict[DocumentKind, tuple[str, ...]] = {
    DocumentKind.RESIDENCE_PERMIT: (
        N_("votre titre de séjour (ou récépissé) actuel et votre passeport"),
        N_("3 photos d’identité récentes"),
        N_("un justificatif de domicile de moins de 6 mois"),
        N_("vos fiches de paie, contrat de travail ou certificat de scolarité"),
        N_("un timbre fiscal : le guichet vous dit lequel"),
    ),
    DocumentKind.IDENTITY: (
        N_("votre pièce d’identité actuelle"),
        N_("1 photo d’identité récente"),
        N_("un justificatif de domicile de moins de 6 mois"),
    ),
}
PAPER_BOOKING_SENTENCE = N_(
    "Le guichet « démarches » vous aide à tout préparer, gratuitement. Prenez rendez-vous :"
)
PAPER_SUBJECT = N_("%(paper)s : expire le %(date)s")
# The discreet words, the default (messaging.notifications.Detailed): the SMS, the subject
# and the email's first lines (what a lock screen shows) never say which paper.
PAPER_SUBJECT_DISCREET = N_("Un de vos papiers expire le %(date)s")
PAPER_INTRO_DISCREET = N_(
    "Un de vos papiers expire le %(date)s : c’est le moment de préparer son renouvellement."
)
PAPER_EMAIL = N_("Bonjour %(name)s,\n\n%(intro)s\n\n%(prepare)s\n\n%(booking)s %(booking_link)s")


def paper_day(value: date) -> str:
    """A paper's date in a message: 31/03/2027, read the same in every language."""
    return value.strftime("%d/%m/%Y")


def paper_prepare_list(kind: DocumentKind) -> list[str]:
    """What to prepare for the renewal, in the current language."""
    return [gettext(item) for item in PAPER_TO_PREPARE.get(kind, ())]


def for_paper(
    youth: Named, attempt: Attempted, *, kind: DocumentKind, expires_on: date, base_url: str
) -> Notice:
    """A paper's reminder (4, 2 or 1 month before it expires), on the step's channel."""
    root = base_url.rstrip("/")
    kind = kind if kind in PAPER_SMS else DocumentKind.RESIDENCE_PERMIT
    day = paper_day(expires_on)

    def prepare(_language: str) -> str:
        lines = [gettext(PAPER_PREPARE_HEADING)]
        return "\n".join(lines + [f"- {item}" for item in paper_prepare_list(kind)])

    def intro(_language: str) -> str:
        return gettext(PAPER_INTROS[kind], date=day)

    def discreet_intro(_language: str) -> str:
        return gettext(PAPER_INTRO_DISCREET, date=day)

    return Notice(
        template=f"outreach_{OutreachReason.PAPER_EXPIRY.value}",
        key=f"outreach:{attempt.id}",
        sms=sms_texts.PAPER_EXPIRY_DISCREET,
        subject=PAPER_SUBJECT_DISCREET,
        text=PAPER_EMAIL,
        values={
            "name": youth.first_name,
            "date": day,
            "link": root + PAPER_VAULT_PATH,
            "intro": discreet_intro,
            "prepare": prepare,
            "booking": PAPER_BOOKING_SENTENCE,
            "booking_link": root + PAPER_BOOKING_PATH,
        },
        channel=attempt.channel,
        detailed=Detailed(
            sms=PAPER_SMS[kind],
            subject=PAPER_SUBJECT,
            values={"paper": KIND_LABELS[kind], "intro": intro},
        ),
    )
