"""Appointments in words for staff pages (the youth's pages use service.KIND_LABELS)."""

from __future__ import annotations

from paris_avenir.appointments.models import AppointmentKind, AppointmentStatus
from paris_avenir.web import i18n
from paris_avenir.web.i18n import N_

KIND_LABELS: dict[AppointmentKind, str] = {
    AppointmentKind.REFERENT: N_("Avec le référent"),
    AppointmentKind.PSYCHOLOGIST: N_("Psychologue (partagé par le jeune)"),
    AppointmentKind.COUNTER: N_("Guichet démarches"),
    AppointmentKind.FOLLOW_UP_INTERVIEW: N_("Entretien des 6 mois"),
}
STATUS_LABELS: dict[AppointmentStatus, str] = {
    AppointmentStatus.BOOKED: N_("prévu"),
    AppointmentStatus.CANCELLED: N_("annulé"),
    AppointmentStatus.ATTENDED: N_("honoré"),
    AppointmentStatus.MISSED: N_("manqué"),
}


def kind_label(kind: AppointmentKind) -> str:
    return i18n.gettext(KIND_LABELS[kind])


def status_label(status: AppointmentStatus) -> str:
    return i18n.gettext(STATUS_LABELS[status])
