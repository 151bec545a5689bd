"""The reasons a référent picks when refusing a request or asking for a document: written
once in plain French and translated in every catalog, so the youth reads them in their own
language. Free text stays possible; it reaches the youth as written, marked as not
translated."""

from __future__ import annotations

from paris_avenir.web import i18n
from paris_avenir.web.i18n import N_

REFUSAL_REASONS: dict[str, str] = {
    "age": N_("Vous n’avez pas l’âge prévu pour cette aide."),
    "revenus": N_("Vos revenus sont au-dessus du plafond de cette aide."),
    "deja_aide": N_("Vous recevez déjà une aide pour la même chose."),
    "hors_ase": N_("Cette aide est pour les jeunes qui ont quitté l’ASE de Paris."),
    "pieces": N_("Les documents envoyés ne permettent pas d’accorder cette aide."),
}
DOCUMENT_REQUESTS: dict[str, str] = {
    "rib": N_("Il manque votre RIB (relevé d’identité bancaire)."),
    "identite": N_("Il manque votre pièce d’identité ou votre titre de séjour."),
    "ressources": N_("Il manque vos preuves de revenus des 3 derniers mois."),
    "illisible": N_("Un document est illisible : envoyez une photo plus nette."),
    "scolarite": N_("Il manque votre certificat de scolarité."),
}
NOT_TRANSLATED = N_("Message de votre référent, pas traduit :")


def for_youth(table: dict[str, str], code: str, free_text: str, language: str) -> str:
    """What the youth reads, in their language: the chosen reason translated, then the
    référent's own words as written, marked as not translated when the youth does not
    read French."""
    parts = []
    free_text = free_text.strip()
    with i18n.using_locale(language):
        if code in table:
            parts.append(i18n.gettext(table[code]))
        if free_text:
            if language == i18n.SOURCE_LOCALE:
                parts.append(free_text)
            else:
                parts.append(i18n.gettext(NOT_TRANSLATED) + " " + free_text)
    return " ".join(parts)


def choices(table: dict[str, str]) -> list[tuple[str, str]]:
    """(code, French text) for the staff's list."""
    return [(code, i18n.gettext(text)) for code, text in table.items()]
