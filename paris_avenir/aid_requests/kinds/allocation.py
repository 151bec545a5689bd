"""Allocation Paris avenir: equal to the RSA base for one person, renewed every 6 months."""

from __future__ import annotations

from datetime import date
from typing import Any

from paris_avenir.aid_requests.kinds.base import (
    AidKind,
    AmountPeriod,
    Condition,
    FieldKind,
    FormField,
    Verdict,
    bank_details_document,
    care_leaver_conditions,
    identity_document,
    monthly_income_question,
    resources_document,
    yes_no,
)
from paris_avenir.aid_requests.models import AidCode
from paris_avenir.kit.forms import format_euros as euros
from paris_avenir.web.i18n import gettext as _
from paris_avenir.youths.models import EmploymentSituation, Youth


def rule(youth: Youth, parameters: dict[str, Any], today: date) -> list[Condition]:
    conditions = care_leaver_conditions(youth, parameters, today)
    job = _("Vous n’avez pas de CDI.")
    if youth.employment_situation is EmploymentSituation.PERMANENT_JOB:
        conditions.append(
            Condition(
                job,
                Verdict.NOT_MET,
                _("Avec un CDI, regardez la prime d’activité de la CAF (lien plus bas)."),
            )
        )
    else:
        conditions.append(Condition(job, Verdict.MET))
    ceiling = int(parameters.get("max_monthly_income_cents", 90000))
    income = _("Vous gagnez moins de %(amount)s par mois.", amount=euros(ceiling))
    if youth.monthly_income_cents is None:
        conditions.append(Condition(income, Verdict.UNKNOWN, _("Vous le dites dans la demande.")))
    elif youth.monthly_income_cents < ceiling:
        conditions.append(Condition(income, Verdict.MET))
    else:
        conditions.append(
            Condition(
                income,
                Verdict.NOT_MET,
                _("Vos revenus sont trop hauts pour cette aide. Parlez-en à votre référent."),
            )
        )
    family = _("Votre famille ne peut pas vous aider.")
    if youth.has_family_support is None:
        conditions.append(Condition(family, Verdict.UNKNOWN, _("Vous le dites dans la demande.")))
    elif youth.has_family_support:
        conditions.append(
            Condition(
                family,
                Verdict.NOT_MET,
                _("Si cette aide s’arrête, dites-le à votre référent : votre demande sera revue."),
            )
        )
    else:
        conditions.append(Condition(family, Verdict.MET))
    return conditions


def gives(parameters: dict[str, Any]) -> str:
    amount = euros(int(parameters.get("monthly_amount_cents", 65169)))
    months = int(parameters.get("renewal_months", 6))
    return _(
        "%(amount)s chaque mois, pendant %(months)s mois. Vous pouvez la renouveler.",
        amount=amount,
        months=months,
    )


def build() -> AidKind:
    return AidKind(
        code=AidCode.ALLOCATION,
        name=_("Allocation Paris avenir"),
        gives=gives,
        rule=rule,
        questions=[
            FormField(
                "employment_situation",
                _("Que faites-vous en ce moment ?"),
                FieldKind.CHOICE,
                choices=(
                    (EmploymentSituation.JOB_SEEKING.value, _("Je cherche du travail")),
                    (EmploymentSituation.TRAINING.value, _("Je suis en formation")),
                    (EmploymentSituation.STUDENT.value, _("Je fais des études")),
                    (EmploymentSituation.APPRENTICESHIP.value, _("Je suis en apprentissage")),
                    (EmploymentSituation.TEMPORARY_JOB.value, _("J’ai un CDD ou de l’intérim")),
                    (EmploymentSituation.PERMANENT_JOB.value, _("J’ai un CDI")),
                    (EmploymentSituation.NONE.value, _("Rien pour le moment")),
                ),
                profile_attribute="employment_situation",
            ),
            monthly_income_question(
                hint=_("Salaire, bourse, autres aides. Écrivez 0 si vous ne gagnez rien.")
            ),
            FormField(
                "family_support",
                _("Votre famille vous aide-t-elle avec de l’argent ?"),
                FieldKind.YES_NO,
                choices=yes_no(),
                profile_attribute="has_family_support",
            ),
        ],
        documents=[
            identity_document(),
            bank_details_document(),
            resources_document(required=False),
        ],
        usual_delay=_("Réponse en 2 à 3 semaines environ."),
        renewal_months=6,
        amount_period=AmountPeriod.MONTH,
    )
