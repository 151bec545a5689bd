"""Aide financière ponctuelle: for any youth in difficulty."""

from __future__ import annotations

from datetime import date
from typing import Any

from paris_avenir.aid_requests.kinds.base import (
    AidKind,
    AmountPeriod,
    Condition,
    FieldKind,
    FormField,
    always,
    bank_details_document,
)
from paris_avenir.aid_requests.models import AidCode
from paris_avenir.kit.forms import format_euros as euros
from paris_avenir.web.i18n import gettext as _
from paris_avenir.youths.models import Youth


def rule(_youth: Youth, _parameters: dict[str, Any], _today: date) -> list[Condition]:
    return [always(_("Vous avez un problème d’argent urgent."))]


def gives(parameters: dict[str, Any]) -> str:
    return _(
        "Une somme d’argent, une fois, jusqu’à %(amount)s.",
        amount=euros(int(parameters.get("max_amount_cents", 50000))),
    )


def build() -> AidKind:
    return AidKind(
        code=AidCode.AIDE_URGENCE,
        name=_("Aide d’urgence"),
        gives=gives,
        rule=rule,
        questions=[
            FormField(
                "explanation", _("Expliquez en quelques mots ce qui se passe."), FieldKind.LONG_TEXT
            ),
            FormField("amount", _("De combien avez-vous besoin, en euros ?"), FieldKind.MONEY),
        ],
        documents=[bank_details_document()],
        usual_delay=_("Réponse en quelques jours. Si c’est très urgent, appelez votre référent."),
        amount_period=AmountPeriod.ONCE,
    )
