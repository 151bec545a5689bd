"""What every aid of the catalogue declares: who it is for (explained rule by rule), what
the youth fills in, which documents it needs, how long it usually takes.

Rules read the youth's profile and the parameters an admin may change (amounts, ages).
A condition is met, not met, or unknown (to answer in the form or with the référent):
the youth always learns why, and what to do next.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from paris_avenir.aid_requests.models import AidCode
from paris_avenir.documents.models import DocumentKind
from paris_avenir.web.i18n import gettext as _
from paris_avenir.youths.models import Youth


class Verdict(enum.StrEnum):
    MET = "met"
    NOT_MET = "not_met"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Condition:
    text: str  # "Vous avez entre 18 et 25 ans."
    verdict: Verdict
    next_step: str | None = None  # what to do when it is not met or unknown


@dataclass(frozen=True)
class Eligibility:
    conditions: list[Condition]

    @property
    def verdict(self) -> Verdict:
        verdicts = {condition.verdict for condition in self.conditions}
        if Verdict.NOT_MET in verdicts:
            return Verdict.NOT_MET
        return Verdict.UNKNOWN if Verdict.UNKNOWN in verdicts else Verdict.MET


class AmountPeriod(enum.StrEnum):
    """How often a granted amount is paid: the youth reads "par mois" or "en une fois"."""

    MONTH = "month"
    ONCE = "once"


class FieldKind(enum.StrEnum):
    TEXT = "text"
    LONG_TEXT = "long_text"
    CHOICE = "choice"
    YES_NO = "yes_no"
    MONEY = "money"  # euros, stored in cents
    DATE = "date"


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: FieldKind
    required: bool = True
    hint: str | None = None
    choices: tuple[tuple[str, str], ...] = ()
    # A profile attribute that prefills it, and that the answer updates on submission.
    profile_attribute: str | None = None


@dataclass(frozen=True)
class RequiredDocument:
    kind: DocumentKind
    why: str
    required: bool = True


Rule = Callable[[Youth, dict[str, Any], date], list[Condition]]


@dataclass
class AidKind:
    """Built per request by each aid module's `build()`, so its texts are in the reader's
    language."""

    code: AidCode
    name: str
    gives: Callable[[dict[str, Any]], str]  # what the youth gets comes first (FALC)
    rule: Rule
    questions: list[FormField] = field(default_factory=list)
    documents: list[RequiredDocument] = field(default_factory=list)
    usual_delay: str = ""
    # True: no form, the youth books an appointment instead (psychologist, counter).
    by_appointment: bool = False
    renewal_months: int | None = None
    # How often the granted amount is paid (None: no money, or the référent says).
    amount_period: AmountPeriod | None = None

    def eligibility(self, youth: Youth, parameters: dict[str, Any], today: date) -> Eligibility:
        return Eligibility(self.rule(youth, parameters, today))

    @property
    def step_count(self) -> int:
        """Questions, then documents (if any), then a last check before sending."""
        return (1 if self.questions else 0) + (1 if self.documents else 0) + 1


# --- Shared conditions ------------------------------------------------------------------


def age_on(birth_date: date, today: date) -> int:
    return (
        today.year
        - birth_date.year
        - ((today.month, today.day) < (birth_date.month, birth_date.day))
    )


def age_condition(youth: Youth, parameters: dict[str, Any], today: date) -> Condition:
    low, high = int(parameters.get("min_age", 18)), int(parameters.get("max_age", 25))
    age = age_on(youth.birth_date, today)
    # "Up to 21" means until the 21st birthday; "up to 25" likewise: the day before.
    met = low <= age < high
    text = _("Vous avez entre %(low)s et %(high)s ans.", low=low, high=high)
    if met:
        return Condition(text, Verdict.MET)
    if age < low:
        return Condition(text, Verdict.NOT_MET, _("Cette aide commence à %(low)s ans.", low=low))
    return Condition(
        text,
        Verdict.NOT_MET,
        _("Vous avez passé l’âge. Votre référent vous aide à trouver une autre solution."),
    )


def left_care_condition(youth: Youth, today: date) -> Condition:
    text = _("Vous avez été suivi par l’ASE de Paris.")
    if youth.ase_exit_date is not None and youth.ase_exit_date <= today:
        return Condition(text, Verdict.MET)
    if youth.ase_exit_date is not None:
        return Condition(
            text, Verdict.NOT_MET, _("Cette aide commence après votre sortie de l’ASE.")
        )
    return Condition(text, Verdict.UNKNOWN, _("Votre référent vérifie votre dossier."))


def always(text: str) -> Condition:
    return Condition(text, Verdict.MET)


def yes_no() -> tuple[tuple[str, str], ...]:
    return (("oui", _("Oui")), ("non", _("Non")))


def care_leaver_conditions(
    youth: Youth, parameters: dict[str, Any], today: date
) -> list[Condition]:
    """What every aid for the youths who left the ASE asks first: their age, and having left."""
    return [age_condition(youth, parameters, today), left_care_condition(youth, today)]


# The questions and documents several aids ask for, worded once.


def monthly_income_question(hint: str | None = None) -> FormField:
    return FormField(
        "monthly_income",
        _("Combien gagnez-vous par mois, en euros ?"),
        FieldKind.MONEY,
        hint=hint,
        profile_attribute="monthly_income_cents",
    )


def identity_document() -> RequiredDocument:
    return RequiredDocument(DocumentKind.IDENTITY, _("pour savoir qui vous êtes"))


def bank_details_document() -> RequiredDocument:
    return RequiredDocument(DocumentKind.BANK_DETAILS, _("pour verser l’argent sur votre compte"))


def resources_document(*, required: bool = True) -> RequiredDocument:
    return RequiredDocument(
        DocumentKind.RESOURCES, _("vos revenus des 3 derniers mois"), required=required
    )
