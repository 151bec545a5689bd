"""The watch's codes in words, for staff pages, the statistics and the command line (staff
pages show words, never enum values). The back office reads French."""

from __future__ import annotations

from paris_avenir.outreach.models import OutreachReason, OutreachResponse
from paris_avenir.web.i18n import N_, gettext
from paris_avenir.youths.models import Channel

REASON_LABELS: dict[OutreachReason, str] = {
    OutreachReason.INACTIVITY: N_("Silencieux depuis longtemps"),
    OutreachReason.CHECK_IN: N_("« Comment ça va ? »"),
    OutreachReason.DOCUMENTS_AWAITED: N_("Document attendu"),
    OutreachReason.MISSED_APPOINTMENT: N_("Rendez-vous manqué"),
    OutreachReason.BIRTHDAY_21: N_("Bientôt 21 ans"),
    OutreachReason.BIRTHDAY_25: N_("Bientôt 25 ans"),
    OutreachReason.ALLOCATION_RENEWAL: N_("Renouvellement de l’allocation"),
    OutreachReason.FOLLOW_UP_INTERVIEW: N_("Entretien des 6 mois"),
    OutreachReason.INVITATION: N_("Invitation à ouvrir son espace"),
    OutreachReason.PAPER_EXPIRY: N_("Papier qui expire"),
}
RESPONSE_LABELS: dict[OutreachResponse, str] = {
    OutreachResponse.SIGN_IN: N_("s’est connecté"),
    OutreachResponse.ALL_GOOD: N_("a répondu « Tout va bien »"),
    OutreachResponse.NEEDS_HELP: N_("a répondu « J’ai besoin d’aide »"),
    OutreachResponse.MESSAGE: N_("a écrit un message"),
    OutreachResponse.BOOKING: N_("a pris rendez-vous"),
    OutreachResponse.STAFF_CONTACT: N_("joint par l’équipe"),
}
CHANNEL_LABELS: dict[Channel, str] = {Channel.SMS: N_("SMS"), Channel.EMAIL: N_("e-mail")}
STEP_LABELS = {1: N_("1re relance"), 2: N_("2e relance"), 3: N_("3e étape")}
# A paper's reminders (outreach/papers.py): how long before it expires.
PAPER_STEP_LABELS = {1: N_("4 mois avant"), 2: N_("2 mois avant"), 3: N_("1 mois avant")}


def reason_label(reason: OutreachReason) -> str:
    return gettext(REASON_LABELS[reason])


def response_label(response: OutreachResponse) -> str:
    return gettext(RESPONSE_LABELS[response])


def channel_label(channel: Channel | None) -> str:
    # No channel: the step is a task for the référent (a call, or finding the youth).
    return gettext(CHANNEL_LABELS[channel]) if channel else gettext("tâche pour le référent")


def step_label(reason: OutreachReason, step: int) -> str:
    """Only the inactivity watch has steps worth naming; the other reasons have one."""
    if reason is OutreachReason.PAPER_EXPIRY:
        return gettext(PAPER_STEP_LABELS.get(step, "%(step)s"), step=step)
    if reason is not OutreachReason.INACTIVITY:
        return ""
    return gettext(STEP_LABELS.get(step, "%(step)s"), step=step)


def nothing_works(reason: OutreachReason) -> str:
    """Why an "Injoignable" task opened, for the référent."""
    return gettext("Relance « %(reason)s » : aucun canal ne marche.", reason=reason_label(reason))
