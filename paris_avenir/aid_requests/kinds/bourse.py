"""Bourse d'études ASE: for higher education."""

from __future__ import annotations

from datetime import date
from typing import Any

from paris_avenir.aid_requests.kinds.base import (
    AidKind,
    Condition,
    FieldKind,
    FormField,
    RequiredDocument,
    Verdict,
    bank_details_document,
    care_leaver_conditions,
)
from paris_avenir.aid_requests.models import AidCode
from paris_avenir.documents.models import DocumentKind
from paris_avenir.web.i18n import gettext as _
from paris_avenir.youths.models import Youth


def rule(youth: Youth, parameters: dict[str, Any], today: date) -> list[Condition]:
    studies = _("Vous êtes inscrit ou accepté dans des études après le bac.")
    if youth.in_higher_education:
        in_studies = Condition(studies, Verdict.MET)
    else:
        proof = _("Envoyez votre certificat de scolarité ou votre lettre d’acceptation.")
        in_studies = Condition(studies, Verdict.UNKNOWN, proof)
    return [*care_leaver_conditions(youth, parameters, today), in_studies]


def build() -> AidKind:
    return AidKind(
        code=AidCode.BOURSE,
        name=_("Bourse d’études"),
        gives=lambda _parameters: _(
            "De l’argent pour payer vos études, chaque mois de l’année scolaire."
        ),
        rule=rule,
        questions=[
            FormField("school", _("Dans quelle école ou université êtes-vous ?"), FieldKind.TEXT),
            FormField(
                "programme",
                _("Quelles études faites-vous ?"),
                FieldKind.TEXT,
                hint=_("Exemple : BTS commerce, licence de droit"),
            ),
        ],
        documents=[
            RequiredDocument(DocumentKind.SCHOOL_CERTIFICATE, _("pour montrer votre inscription")),
            RequiredDocument(
                DocumentKind.CROUS_NOTIFICATION,
                _("si vous avez une bourse du CROUS"),
                required=False,
            ),
            bank_details_document(),
        ],
        usual_delay=_("Réponse en 3 semaines environ."),
    )
