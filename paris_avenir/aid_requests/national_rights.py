"""National rights that care leavers often miss, with the official service to use."""

from __future__ import annotations

from dataclasses import dataclass

from paris_avenir.web.i18n import gettext as _


@dataclass(frozen=True)
class NationalRight:
    name: str
    gives: str
    where: str  # the official service
    url: str


def national_rights() -> list[NationalRight]:
    return [
        NationalRight(
            _("Aide au logement (APL)"),
            _("La CAF paie une partie de votre loyer."),
            _("Caisse d’allocations familiales (CAF)"),
            "https://www.caf.fr",
        ),
        NationalRight(
            _("Prime d’activité"),
            _("Un complément d’argent si vous travaillez avec un petit salaire."),
            _("Caisse d’allocations familiales (CAF)"),
            "https://www.caf.fr",
        ),
        NationalRight(
            _("Contrat d’engagement jeune (CEJ)"),
            _("Un accompagnement vers l’emploi, avec jusqu’à 520 € par mois."),
            _("France Travail ou la Mission locale"),
            "https://www.1jeune1solution.gouv.fr",
        ),
        NationalRight(
            _("Bourse du CROUS"),
            _("De l’argent et un logement étudiant si vous faites des études."),
            _("CROUS, sur messervices.etudiant.gouv.fr"),
            "https://www.messervices.etudiant.gouv.fr",
        ),
        NationalRight(
            _("Complémentaire santé solidaire"),
            _("Vos soins, vos lunettes et le dentiste remboursés, souvent gratuitement."),
            _("Assurance maladie (ameli)"),
            "https://www.ameli.fr",
        ),
    ]
