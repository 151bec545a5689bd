"""A youth's situation in words, for staff pages (the back office reads French; the youth's
own pages ask these questions in their words, in aid_requests/kinds)."""

from __future__ import annotations

from paris_avenir.web import i18n
from paris_avenir.web.i18n import N_
from paris_avenir.youths.models import Channel, EmploymentSituation, HousingSituation

HOUSING_LABELS: dict[HousingSituation, str] = {
    HousingSituation.STABLE: N_("Logement stable (bail ou logement social)"),
    HousingSituation.TEMPORARY: N_("Hébergé (amis, famille, foyer, hôtel)"),
    HousingSituation.EMERGENCY: N_("Hébergement d’urgence (115, centre)"),
    HousingSituation.STREET: N_("À la rue"),
    HousingSituation.UNKNOWN: N_("Non renseigné"),
}
EMPLOYMENT_LABELS: dict[EmploymentSituation, str] = {
    EmploymentSituation.PERMANENT_JOB: N_("CDI"),
    EmploymentSituation.TEMPORARY_JOB: N_("CDD ou intérim"),
    EmploymentSituation.APPRENTICESHIP: N_("Apprentissage"),
    EmploymentSituation.STUDENT: N_("Études"),
    EmploymentSituation.TRAINING: N_("Formation"),
    EmploymentSituation.JOB_SEEKING: N_("Cherche du travail"),
    EmploymentSituation.NONE: N_("Sans activité"),
    EmploymentSituation.UNKNOWN: N_("Non renseigné"),
}
CHANNEL_LABELS: dict[Channel, str] = {Channel.SMS: N_("SMS"), Channel.EMAIL: N_("E-mail")}


def housing_label(value: HousingSituation) -> str:
    return i18n.gettext(HOUSING_LABELS[value])


def employment_label(value: EmploymentSituation) -> str:
    return i18n.gettext(EMPLOYMENT_LABELS[value])


def channel_label(value: Channel) -> str:
    return i18n.gettext(CHANNEL_LABELS[value])


def language_name(code: str) -> str:
    """The language in its own name ("دری"), and in French for staff who do not read it."""
    own = dict(i18n.LANGUAGES).get(code, code)
    french = {
        "fr": "français",
        "en": "anglais",
        "ar": "arabe",
        "fa_AF": "dari",
        "ps": "pachto",
        "ti": "tigrigna",
    }
    return f"{french[code]} ({own})" if code in french and code != "fr" else french.get(code, own)
