"""Pass Navigo gratuit: until 21, for youths living in Île-de-France."""

from __future__ import annotations

from datetime import date
from typing import Any

from paris_avenir.aid_requests.kinds.base import (
    AidKind,
    Condition,
    RequiredDocument,
    Verdict,
    care_leaver_conditions,
    identity_document,
)
from paris_avenir.aid_requests.models import AidCode
from paris_avenir.documents.models import DocumentKind
from paris_avenir.web.i18n import gettext as _
from paris_avenir.youths.models import Youth


def rule(youth: Youth, parameters: dict[str, Any], today: date) -> list[Condition]:
    region = _("Vous habitez en Île-de-France.")
    return [
        *care_leaver_conditions(youth, parameters, today),
        Condition(region, Verdict.MET)
        if youth.lives_in_ile_de_france
        else Condition(
            region, Verdict.NOT_MET, _("Le passe Navigo sert seulement en Île-de-France.")
        ),
    ]


def build() -> AidKind:
    return AidKind(
        code=AidCode.NAVIGO,
        name=_("Passe Navigo gratuit"),
        gives=lambda _parameters: _(
            "Les transports gratuits à Paris et en Île-de-France (métro, bus, RER, train)."
        ),
        rule=rule,
        documents=[
            identity_document(),
            RequiredDocument(DocumentKind.PHOTO, _("pour la carte Navigo")),
        ],
        usual_delay=_("Réponse en 2 semaines environ. La carte arrive ensuite par la poste."),
    )
