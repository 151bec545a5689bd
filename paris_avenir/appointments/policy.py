"""What a youth may do with an appointment and when they are reminded: cut-offs, reminders,
bookings held at once. An admin sets them on the "Relances" page, stored with the outreach
policy in one record (kit.quiet_hours.POLICY_SETTING_KEY); outreach/policy.py validates that
page, this module owns the fields and their defaults."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from paris_avenir.kit import quiet_hours, settings_store
from paris_avenir.web.i18n import N_


@dataclass(frozen=True)
class AppointmentPolicy:
    reminder_first_hours: int = 48
    reminder_second_hours: int = 2
    cancel_cutoff_hours: int = 4
    move_cutoff_hours: int = 24
    # Upcoming appointments a youth may hold at once, per kind (nobody hoards the slots).
    open_referent_bookings: int = 1
    open_psychologist_bookings: int = 2
    open_counter_bookings: int = 2


LABELS: dict[str, str] = {
    "reminder_first_hours": N_("Premier rappel de rendez-vous (heures avant)"),
    "reminder_second_hours": N_("Second rappel de rendez-vous (heures avant)"),
    "cancel_cutoff_hours": N_("Un jeune peut annuler jusqu’à … heures avant le rendez-vous"),
    "move_cutoff_hours": N_("Un jeune peut déplacer jusqu’à … heures avant le rendez-vous"),
    "open_referent_bookings": N_("Rendez-vous à venir au plus par jeune : avec son référent"),
    "open_psychologist_bookings": N_("Rendez-vous à venir au plus par jeune : avec un psychologue"),
    "open_counter_bookings": N_("Rendez-vous à venir au plus par jeune : au guichet"),
}


def load(session: Session) -> AppointmentPolicy:
    return settings_store.load_numbers(session, quiet_hours.POLICY_SETTING_KEY, AppointmentPolicy)
