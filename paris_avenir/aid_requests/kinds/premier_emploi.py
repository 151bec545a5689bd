"""Programme « Premier emploi ASE »: tremplin posts in City services, apprenticeships,
paid long internships."""

from __future__ import annotations

from datetime import date
from typing import Any

from paris_avenir.aid_requests.kinds.base import (
    AidKind,
    Condition,
    FieldKind,
    FormField,
    RequiredDocument,
    care_leaver_conditions,
)
from paris_avenir.aid_requests.models import AidCode
from paris_avenir.documents.models import DocumentKind
from paris_avenir.web.i18n import gettext as _
from paris_avenir.youths.models import Youth


def rule(youth: Youth, parameters: dict[str, Any], today: date) -> list[Condition]:
    return care_leaver_conditions(youth, parameters, today)


def build() -> AidKind:
    return AidKind(
        code=AidCode.PREMIER_EMPLOI,
        name=_("Premier emploi"),
        gives=lambda _parameters: _(
            "Un premier travail payé à la Ville (crèches, espaces verts, animation, cuisine…), "
            "un apprentissage ou un long stage payé."
        ),
        rule=rule,
        questions=[
            FormField(
                "wishes",
                _("Quel travail aimeriez-vous faire ?"),
                FieldKind.LONG_TEXT,
                hint=_("Quelques mots suffisent. Exemple : travailler avec des enfants."),
            ),
            FormField(
                "kind",
                _("Vous cherchez plutôt :"),
                FieldKind.CHOICE,
                choices=(
                    ("poste", _("Un emploi")),
                    ("apprentissage", _("Un apprentissage")),
                    ("stage", _("Un stage payé")),
                    ("ne_sais_pas", _("Je ne sais pas encore")),
                ),
            ),
        ],
        documents=[RequiredDocument(DocumentKind.CV, _("si vous en avez un"), required=False)],
        usual_delay=_("Votre référent vous appelle dans les 2 semaines."),
    )
