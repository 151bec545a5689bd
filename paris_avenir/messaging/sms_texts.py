# ruff: noqa: E501  (one SMS per line: easier to read and to compare with its translations)
"""Every SMS the platform sends, in one place, so that each one can be measured in every
language (tests/test_sms_texts.py): French and English must fit one GSM-7 segment, the
other languages at most two UCS-2 segments.

Links are as short as the journey allows (a list page rather than an item) because the
link takes half of the room. The French is written with its accents: `fit_gsm7` turns
"bientôt" into "bientot" when sending, so the text stays in GSM-7.

Discreet unless marked `detailed`: an SMS shows on the lock screen of a phone that is often
shared, so every text here is what all youths receive and never says "psychologue", "ASE",
an aid's name or an amount (tests/test_discreet_messages.py). A text marked `detailed` goes
only to a youth who chose "messages détaillés" on their profile; it may name the aid, never
an amount. Where a text has no detailed twin, the discreet text is the only one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from paris_avenir.web import i18n
from paris_avenir.web.i18n import N_

# Links of the length the platform writes (base URL of the example deployment).
EXAMPLE_BASE_URL = "https://paris-avenir.example.org"
_SIGN_IN_LINK = EXAMPLE_BASE_URL + "/lien/" + "x" * 43
_CHECK_IN_LINK = EXAMPLE_BASE_URL + "/point/" + "x" * 57


@dataclass(frozen=True)
class SmsText:
    key: str
    text: str
    example: dict[str, str]
    # Sent only to a youth who chose "messages détaillés" (may name the aid, no amount).
    detailed: bool = False


SIGN_IN_CODE = N_(
    "Paris avenir : votre code est %(code)s. Il marche 10 minutes. Ne le donnez à personne."
)
NEW_MESSAGE = N_("Paris avenir : un nouveau message de votre référent. Lisez-le ici : %(link)s")
REQUEST_UPDATE = N_("Paris avenir : du nouveau sur votre demande. Regardez ici : %(link)s")
# A decision says which one: the youth knows before opening the link.
REQUEST_GRANTED = N_(
    "Paris avenir : bonne nouvelle, votre demande est acceptée. Voir ici : %(link)s"
)
REQUEST_REFUSED = N_("Paris avenir : votre référent a répondu à votre demande. Voir ici : %(link)s")
APPOINTMENT_CONFIRMED = N_(
    "Paris avenir : rendez-vous le %(when)s. C’est confirmé. Voir : %(link)s"
)
APPOINTMENT_CANCELLED = N_(
    "Paris avenir : votre rendez-vous du %(when)s est annulé. Voir : %(link)s"
)
APPOINTMENT_REMINDER = N_("Paris avenir : rappel, rendez-vous le %(when)s. Voir : %(link)s")
INTERVIEW_INVITATION = N_("Paris avenir : entretien des 6 mois. Choisissez la date ici : %(link)s")
INVITATION = N_("Paris avenir : votre espace est ouvert. Entrez ici : %(link)s")
# An email of ours bounced: the SMS that follows it (messaging/fallback.py).
EMAIL_FALLBACK = N_("Paris avenir : notre e-mail ne vous est pas arrivé. Lisez-le ici : %(link)s")
CHECK_IN = N_("Paris avenir : tout va bien ? Répondez en 1 clic : %(link)s")
INACTIVITY = N_(
    "Paris avenir : cela fait longtemps ! Votre référent peut vous aider. Votre espace : %(link)s"
)
DOCUMENTS_AWAITED = N_(
    "Paris avenir : il manque un document pour votre demande. Ajoutez-le ici : %(link)s"
)
MISSED_APPOINTMENT = N_(
    "Paris avenir : nous ne vous avons pas vu au rendez-vous. Prenez-en un autre ici : %(link)s"
)
BIRTHDAY_21 = N_(
    "Paris avenir : bientôt 21 ans. Le passe Navigo gratuit va s’arrêter. Parlez-en à votre référent : %(link)s"
)
BIRTHDAY_25 = N_(
    "Paris avenir : bientôt 25 ans. Votre référent prépare la suite avec vous : %(link)s"
)
# The discreet twins of the two above (what every youth receives unless they chose
# "messages détaillés"): no aid named.
BIRTHDAY_21_DISCREET = N_(
    "Paris avenir : bientôt 21 ans. Des choses changent. Parlez-en à votre référent : %(link)s"
)
ALLOCATION_RENEWAL_DISCREET = N_(
    "Paris avenir : une de vos aides est à renouveler. C’est ici : %(link)s"
)
ALLOCATION_RENEWAL = N_("Paris avenir : pensez à renouveler votre allocation. C’est ici : %(link)s")
# To the previous number, when an import changed the phone or email: not rewritable.
PHONE_CHANGED = N_(
    "Paris avenir : votre numéro a été changé. Si ce n’est pas vous, appelez votre référent ou venez au guichet."
)
EMAIL_CHANGED = N_(
    "Paris avenir : votre adresse e-mail a été changée. Si ce n’est pas vous, appelez votre référent ou venez au guichet."
)
# One-tap answers (appointments/answer_links.py): the confirmation and the reminders carry
# the appointment's signed link, which is long, so the date is short (`day`, "mer. 30/9 à
# 14:30", replaced per language in the tests) and the words few.
APPOINTMENT_BOOKED_ANSWER = N_("Paris avenir : rendez-vous %(day)s confirmé. Annuler : %(link)s")
APPOINTMENT_REMINDER_ANSWER = N_(
    "Paris avenir : rappel, rendez-vous %(day)s. Vous venez ? %(link)s"
)
# Papers that expire (outreach/papers.py): 4, 2 and 1 month before; the link opens the
# vault, which says what to prepare and books the guichet « démarches ».
PAPER_EXPIRY_PERMIT = N_(
    "Paris avenir : votre titre de séjour expire le %(date)s. Préparez le renouvellement : %(link)s"
)
PAPER_EXPIRY_IDENTITY = N_(
    "Paris avenir : votre pièce d’identité expire le %(date)s. Pensez à la renouveler : %(link)s"
)
# The discreet words (the default): which paper is not said on the lock screen — a phone
# is often shared, and a titre de séjour says more than a date.
PAPER_EXPIRY_DISCREET = N_(
    "Paris avenir : un de vos papiers expire le %(date)s. Ce qu’il faut préparer : %(link)s"
)

_LONGEST_WHEN = "mercredi 30 septembre à 14:30"  # replaced per language in the tests
_ANSWER_LINK = EXAMPLE_BASE_URL + "/r/" + "x" * 57  # kit.crypto.signed_id's length
ALL: tuple[SmsText, ...] = (
    SmsText("sign_in_code", SIGN_IN_CODE, {"code": "123456"}),
    SmsText("new_message", NEW_MESSAGE, {"link": EXAMPLE_BASE_URL + "/mon-espace/messages"}),
    SmsText(
        "request_update",
        REQUEST_UPDATE,
        {"link": EXAMPLE_BASE_URL + "/mon-espace/demandes/" + "x" * 36},
    ),
    SmsText(
        "request_granted",
        REQUEST_GRANTED,
        {"link": EXAMPLE_BASE_URL + "/mon-espace/demandes/" + "x" * 36},
    ),
    SmsText(
        "request_refused",
        REQUEST_REFUSED,
        {"link": EXAMPLE_BASE_URL + "/mon-espace/demandes/" + "x" * 36},
    ),
    SmsText(
        "request_documents",
        DOCUMENTS_AWAITED,
        {"link": EXAMPLE_BASE_URL + "/mon-espace/pieces"},
    ),
    SmsText(
        "appointment_confirmed",
        APPOINTMENT_CONFIRMED,
        {"when": _LONGEST_WHEN, "link": EXAMPLE_BASE_URL + "/mon-espace/rendez-vous"},
    ),
    SmsText(
        "appointment_cancellation",
        APPOINTMENT_CANCELLED,
        {"when": _LONGEST_WHEN, "link": EXAMPLE_BASE_URL + "/mon-espace/rendez-vous"},
    ),
    SmsText(
        "appointment_reminder",
        APPOINTMENT_REMINDER,
        {"when": _LONGEST_WHEN, "link": EXAMPLE_BASE_URL + "/mon-espace/rendez-vous"},
    ),
    SmsText("interview_invitation", INTERVIEW_INVITATION, {"link": _SIGN_IN_LINK}),
    SmsText("invitation", INVITATION, {"link": _SIGN_IN_LINK}),
    SmsText(
        "email_fallback", EMAIL_FALLBACK, {"link": EXAMPLE_BASE_URL + "/mon-espace/rendez-vous"}
    ),
    SmsText("check_in", CHECK_IN, {"link": _CHECK_IN_LINK}),
    SmsText("inactivity", INACTIVITY, {"link": EXAMPLE_BASE_URL + "/mon-espace"}),
    SmsText(
        "documents_awaited", DOCUMENTS_AWAITED, {"link": EXAMPLE_BASE_URL + "/mon-espace/demandes"}
    ),
    SmsText(
        "missed_appointment",
        MISSED_APPOINTMENT,
        {"link": EXAMPLE_BASE_URL + "/mon-espace/rendez-vous"},
    ),
    SmsText("birthday_21", BIRTHDAY_21, {"link": EXAMPLE_BASE_URL + "/mon-espace"}, detailed=True),
    SmsText(
        "birthday_21_discreet",
        BIRTHDAY_21_DISCREET,
        {"link": EXAMPLE_BASE_URL + "/mon-espace/droits"},
    ),
    SmsText("birthday_25", BIRTHDAY_25, {"link": EXAMPLE_BASE_URL + "/mon-espace"}),
    SmsText(
        "allocation_renewal",
        ALLOCATION_RENEWAL,
        {"link": EXAMPLE_BASE_URL + "/mon-espace/droits/allocation"},
        detailed=True,
    ),
    SmsText(
        "allocation_renewal_discreet",
        ALLOCATION_RENEWAL_DISCREET,
        {"link": EXAMPLE_BASE_URL + "/mon-espace/droits"},
    ),
    SmsText("phone_changed", PHONE_CHANGED, {}),
    SmsText("email_changed", EMAIL_CHANGED, {}),
    SmsText(
        "appointment_booked_answer",
        APPOINTMENT_BOOKED_ANSWER,
        {"day": "mer. 30/9 à 14:30", "link": _ANSWER_LINK},
    ),
    SmsText(
        "appointment_reminder_answer",
        APPOINTMENT_REMINDER_ANSWER,
        {"day": "mer. 30/9 à 14:30", "link": _ANSWER_LINK},
    ),
    SmsText(
        "paper_expiry_permit",
        PAPER_EXPIRY_PERMIT,
        {"date": "30/09/2027", "link": EXAMPLE_BASE_URL + "/mon-espace/documents"},
        detailed=True,
    ),
    SmsText(
        "paper_expiry_identity",
        PAPER_EXPIRY_IDENTITY,
        {"date": "30/09/2027", "link": EXAMPLE_BASE_URL + "/mon-espace/documents"},
        detailed=True,
    ),
    SmsText(
        "paper_expiry_discreet",
        PAPER_EXPIRY_DISCREET,
        {"date": "30/09/2027", "link": EXAMPLE_BASE_URL + "/mon-espace/documents"},
    ),
)


def render(text: str, language: str, **values: Any) -> str:
    """The SMS in the youth's language (French when that language has no translation)."""
    with i18n.using_locale(language):
        return i18n.gettext(text, **values)
