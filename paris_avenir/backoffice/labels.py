"""Every code a staff page may show, in French words: the one owner of "which word for which
enum value" on the back office. Templates call `label(value)` (a Jinja global); routes and
services call `label()` too. Each enum has one mapping here or in the module that owns it;
a value without a word raises, so a new value cannot reach a page unnamed (tests walk every
enum and every staff page)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from babel import dates as babel_dates

from paris_avenir.aid_requests import kinds as catalogue
from paris_avenir.aid_requests.kinds.base import FieldKind, FormField, Verdict
from paris_avenir.aid_requests.models import AidCode, RequestStatus
from paris_avenir.aid_requests.service import STATUS_LABELS
from paris_avenir.appointments import labels as appointment_labels
from paris_avenir.appointments.models import AppointmentKind, AppointmentPlace, AppointmentStatus
from paris_avenir.backoffice.admin import ROLE_LABELS
from paris_avenir.documents import service as documents
from paris_avenir.documents.models import DocumentKind
from paris_avenir.kit.forms import format_euros, parse_date, parse_euros
from paris_avenir.messaging.models import OutboxStatus
from paris_avenir.outreach import labels as outreach_labels
from paris_avenir.outreach.models import OutreachReason, OutreachResponse
from paris_avenir.staff import tasks
from paris_avenir.staff.models import StaffRole, TaskKind, TaskOutcome
from paris_avenir.web.i18n import N_, gettext
from paris_avenir.youths import labels as youth_labels
from paris_avenir.youths.models import Channel, EmploymentSituation, HousingSituation

PLACE_LABELS: dict[AppointmentPlace, str] = {
    AppointmentPlace.OFFICE: N_("au bureau"),
    AppointmentPlace.PHONE: N_("par téléphone"),
    AppointmentPlace.VIDEO: N_("en visio"),
}
VERDICT_LABELS: dict[Verdict, str] = {
    Verdict.MET: N_("condition remplie"),
    Verdict.NOT_MET: N_("condition non remplie"),
    Verdict.UNKNOWN: N_("à vérifier"),
}
OUTBOX_LABELS: dict[OutboxStatus, str] = {
    OutboxStatus.QUEUED: N_("en attente d’envoi"),
    OutboxStatus.SENDING: N_("en cours d’envoi"),
    OutboxStatus.SENT: N_("envoyé"),
    OutboxStatus.DELIVERED: N_("reçu"),
    OutboxStatus.FAILED: N_("non remis"),
    OutboxStatus.CANCELLED: N_("annulé"),
}
FIELD_KIND_LABELS: dict[FieldKind, str] = {
    FieldKind.TEXT: N_("texte"),
    FieldKind.LONG_TEXT: N_("texte long"),
    FieldKind.CHOICE: N_("choix"),
    FieldKind.YES_NO: N_("oui ou non"),
    FieldKind.MONEY: N_("montant"),
    FieldKind.DATE: N_("date"),
}
STAFF_STATUS_LABELS: dict[RequestStatus, str] = {
    status: (N_("Accord à confirmer") if status is RequestStatus.TO_CONFIRM else text)
    for status, text in STATUS_LABELS.items()
}
# One mapping per enum. Words owned elsewhere (the youth's own pages use some of them) are
# referenced, not copied.
MAPPINGS: dict[type[enum.StrEnum], Mapping[Any, str]] = {
    RequestStatus: STAFF_STATUS_LABELS,
    Verdict: VERDICT_LABELS,
    FieldKind: FIELD_KIND_LABELS,
    AppointmentKind: appointment_labels.KIND_LABELS,
    AppointmentStatus: appointment_labels.STATUS_LABELS,
    AppointmentPlace: PLACE_LABELS,
    DocumentKind: documents.KIND_LABELS,
    OutreachReason: outreach_labels.REASON_LABELS,
    OutreachResponse: outreach_labels.RESPONSE_LABELS,
    Channel: youth_labels.CHANNEL_LABELS,
    HousingSituation: youth_labels.HOUSING_LABELS,
    EmploymentSituation: youth_labels.EMPLOYMENT_LABELS,
    StaffRole: ROLE_LABELS,
    TaskKind: {kind: spec.label for kind, spec in tasks.KINDS.items()},
    TaskOutcome: tasks.OUTCOME_LABELS,
    OutboxStatus: OUTBOX_LABELS,
}


def label(value: enum.StrEnum | None) -> str:
    """The French word for a code ("reserve" → "prévu"); "—" for nothing."""
    if value is None:
        return "—"
    if isinstance(value, AidCode):  # the catalogue owns the aids' names
        return catalogue.kind(value).name
    return gettext(MAPPINGS[type(value)][value])


def answer_label(field: FormField, value: Any) -> str:
    """A youth's answer in words: the chosen option's text, Oui/Non, an amount in euros."""
    if value in (None, ""):
        return ""
    text = str(value)
    if field.choices:
        return dict(field.choices).get(text, text)
    if field.kind is FieldKind.MONEY:
        cents = parse_euros(text)
        return format_euros(cents) if cents is not None else text
    if field.kind is FieldKind.DATE:
        day = parse_date(text)
        return babel_dates.format_date(day, "long", locale="fr") if day else text
    return text
