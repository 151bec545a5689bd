"""Contingent de logements sociaux réservés aux jeunes sortis de l'ASE."""

from __future__ import annotations

from datetime import date
from typing import Any

from paris_avenir.aid_requests.kinds.base import (
    AidKind,
    Condition,
    FieldKind,
    FormField,
    Verdict,
    care_leaver_conditions,
    identity_document,
    monthly_income_question,
    resources_document,
)
from paris_avenir.aid_requests.models import AidCode
from paris_avenir.web.i18n import gettext as _
from paris_avenir.youths.models import HousingSituation, Youth


def rule(youth: Youth, parameters: dict[str, Any], today: date) -> list[Condition]:
    housing = _("Vous n’avez pas de logement stable.")
    if youth.housing_situation is HousingSituation.STABLE:
        verdict = Condition(
            housing, Verdict.NOT_MET, _("Votre logement va s’arrêter ? Dites-le à votre référent.")
        )
    elif youth.housing_situation is HousingSituation.UNKNOWN:
        verdict = Condition(housing, Verdict.UNKNOWN, _("Vous le dites dans la demande."))
    else:
        verdict = Condition(housing, Verdict.MET)
    return [*care_leaver_conditions(youth, parameters, today), verdict]


def build() -> AidKind:
    return AidKind(
        code=AidCode.LOGEMENT,
        name=_("Logement social"),
        gives=lambda _parameters: _(
            "Un logement social réservé pour vous, "
            "souvent dans une résidence avec un accompagnement."
        ),
        rule=rule,
        questions=[
            FormField(
                "housing_situation",
                _("Où dormez-vous en ce moment ?"),
                FieldKind.CHOICE,
                choices=(
                    (
                        HousingSituation.TEMPORARY.value,
                        _("Chez des amis, de la famille, en foyer ou à l’hôtel"),
                    ),
                    (HousingSituation.EMERGENCY.value, _("En hébergement d’urgence (115)")),
                    (HousingSituation.STREET.value, _("À la rue")),
                    (HousingSituation.STABLE.value, _("J’ai un logement à moi")),
                ),
                profile_attribute="housing_situation",
            ),
            FormField(
                "household",
                _("Avec qui voulez-vous habiter ?"),
                FieldKind.CHOICE,
                choices=(
                    ("seul", _("Seul")),
                    ("couple", _("En couple")),
                    ("enfant", _("Avec mon enfant ou mes enfants")),
                ),
            ),
            monthly_income_question(),
            FormField(
                "arrondissements",
                _("Dans quels quartiers aimeriez-vous habiter ?"),
                FieldKind.TEXT,
                required=False,
                hint=_("Exemple : 13e, 19e, 20e. Vous pouvez laisser vide."),
            ),
        ],
        documents=[
            identity_document(),
            resources_document(required=False),
        ],
        usual_delay=_("Cela prend souvent plusieurs mois. Votre référent vous tient au courant."),
    )
