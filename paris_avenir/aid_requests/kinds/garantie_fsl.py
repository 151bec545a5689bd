"""Garantie contre les impayés (FSL) for a first private rental."""

from __future__ import annotations

from datetime import date
from typing import Any

from paris_avenir.aid_requests.kinds import base
from paris_avenir.aid_requests.kinds.base import AidKind, Condition, FieldKind, FormField, Verdict
from paris_avenir.aid_requests.models import AidCode
from paris_avenir.documents.models import DocumentKind
from paris_avenir.web.i18n import gettext as _
from paris_avenir.youths.models import Youth


def rule(youth: Youth, parameters: dict[str, Any], today: date) -> list[Condition]:
    return [
        *base.care_leaver_conditions(youth, parameters, today),
        Condition(
            _("Vous allez signer votre premier bail dans le privé."),
            Verdict.UNKNOWN,
            _("Envoyez le projet de bail avec votre demande."),
        ),
    ]


def build() -> AidKind:
    return AidKind(
        code=AidCode.GARANTIE_FSL,
        name=_("Garantie pour votre premier loyer"),
        gives=lambda _parameters: _(
            "Si vous ne pouvez pas payer un loyer, la Ville paie le propriétaire. "
            "Le propriétaire accepte plus facilement votre dossier."
        ),
        rule=rule,
        questions=[
            FormField(
                "rent", _("Combien coûte le loyer, charges comprises, en euros ?"), FieldKind.MONEY
            ),
            FormField(
                "move_in",
                _("Quand allez-vous entrer dans le logement ?"),
                FieldKind.DATE,
                required=False,
            ),
            base.monthly_income_question(),
        ],
        documents=[
            base.RequiredDocument(DocumentKind.LEASE, _("le projet de bail du propriétaire")),
            base.resources_document(),
        ],
        usual_delay=_("Réponse en 2 semaines environ."),
    )
