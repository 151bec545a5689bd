"""The non-recours outreach policy (PRODUCT.md), every delay and threshold configurable by an
admin. The scheduler of issue 7 reads it; defaults are the programme's.

The admin's "Relances" page also sets the appointments' policy (appointments/policy.py:
cut-offs, reminders, bookings per youth), stored in the same record; this module validates
and saves both, and owns only the outreach fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from paris_avenir.appointments import policy as appointment_policy
from paris_avenir.kit import quiet_hours, settings_store
from paris_avenir.kit.errors import DomainError
from paris_avenir.web.i18n import N_, gettext

# Shared with kit.quiet_hours, which reads the sending window from the same stored policy.
SETTING_KEY = quiet_hours.POLICY_SETTING_KEY


@dataclass(frozen=True)
class OutreachPolicy:
    inactivity_days: int = 30
    sms_step_day: int = 30
    email_step_day: int = 37
    call_task_day: int = 45
    repeat_every_days: int = 60
    check_in_every_days: int = 90
    quiet_hours_start: int = quiet_hours.DEFAULT_STARTS  # hour, Paris time
    quiet_hours_end: int = quiet_hours.DEFAULT_ENDS
    frequency_cap_days: int = 5
    documents_awaited_days: int = 7
    birthday_21_notice_days: int = 60
    birthday_25_notice_days: int = 90
    response_window_days: int = 7
    # A task still open this many days after its due date moves to the team's supervisor.
    task_escalation_days: int = 3
    # An SMS with no "delivered" receipt after this many hours is followed by the email
    # (messaging/fallback.py).
    fallback_delay_hours: int = 24

    @property
    def quiet_hours(self) -> quiet_hours.QuietHours:
        return quiet_hours.QuietHours(self.quiet_hours_start, self.quiet_hours_end)

    @property
    def fallback_delay(self) -> timedelta:
        return timedelta(hours=self.fallback_delay_hours)


LABELS: dict[str, str] = {
    "inactivity_days": N_("Jours sans activité avant de relancer"),
    "sms_step_day": N_("Jour du SMS"),
    "email_step_day": N_("Jour de l’e-mail"),
    "call_task_day": N_("Jour de l’appel par le référent"),
    "repeat_every_days": N_("Recommencer tous les … jours"),
    "check_in_every_days": N_("« Comment ça va ? » tous les … jours"),
    "quiet_hours_start": N_("Pas de message à partir de (heure)"),
    "quiet_hours_end": N_("Pas de message avant (heure)"),
    "frequency_cap_days": N_("Au plus une relance tous les … jours"),
    "documents_awaited_days": N_("Relance si un document est attendu depuis … jours"),
    "birthday_21_notice_days": N_("Prévenir … jours avant les 21 ans"),
    "birthday_25_notice_days": N_("Prévenir … jours avant les 25 ans"),
    "response_window_days": N_("Une réponse compte pour la relance pendant … jours"),
    "task_escalation_days": N_("Une tâche en retard de … jours passe au superviseur de l’équipe"),
    "fallback_delay_hours": N_("Un SMS non reçu après … heures est suivi d’un e-mail"),
}
HOURS = {"quiet_hours_start", "quiet_hours_end"}
# The fallback's delay, in hours: from one hour to a week.
FALLBACK_DELAY_RANGE = (1, 168)
# Every field of the admin's page: the outreach's, then the appointments'.
ALL_LABELS: dict[str, str] = {**LABELS, **appointment_policy.LABELS}


class PolicyError(DomainError):
    """The message is for the admin."""


def load(session: Session) -> OutreachPolicy:
    return settings_store.load_numbers(session, SETTING_KEY, OutreachPolicy)


def defaults() -> dict[str, int]:
    return asdict(OutreachPolicy()) | asdict(appointment_policy.AppointmentPolicy())


def current_values(session: Session) -> dict[str, int]:
    """Every value of the admin's page, as stored (or by default)."""
    return asdict(load(session)) | asdict(appointment_policy.load(session))


def save(
    session: Session, form: Mapping[str, str], *, by_id: object, now: datetime | None = None
) -> dict[str, int]:
    """Validates and stores the admin's page; returns every value saved."""
    values: dict[str, int] = {}
    for field in (*fields(OutreachPolicy), *fields(appointment_policy.AppointmentPolicy)):
        raw = form.get(field.name, "").strip()
        if not raw.isdigit():
            raise PolicyError(
                gettext(
                    "« %(label)s » : écrivez un nombre entier.",
                    label=gettext(ALL_LABELS[field.name]),
                )
            )
        value = int(raw)
        low, high = FALLBACK_DELAY_RANGE
        if field.name == "fallback_delay_hours" and not low <= value <= high:
            raise PolicyError(
                gettext(
                    "« %(label)s » : écrivez un nombre d’heures entre %(low)s et %(high)s "
                    "(une semaine).",
                    label=gettext(ALL_LABELS[field.name]),
                    low=low,
                    high=high,
                )
            )
        if (field.name in HOURS and value > 23) or (
            field.name not in HOURS and not 1 <= value <= 400
        ):
            raise PolicyError(
                gettext(
                    "« %(label)s » : ce nombre n’est pas possible.",
                    label=gettext(ALL_LABELS[field.name]),
                )
            )
        values[field.name] = value
    outreach_names = {field.name for field in fields(OutreachPolicy)}
    policy = OutreachPolicy(**{k: v for k, v in values.items() if k in outreach_names})
    if not policy.sms_step_day <= policy.email_step_day <= policy.call_task_day:
        raise PolicyError(gettext("Les étapes doivent se suivre : SMS, puis e-mail, puis appel."))
    if not policy.quiet_hours_end < policy.quiet_hours_start:
        raise PolicyError(
            gettext(
                "Les messages partent entre « %(end)s » et « %(start)s » : la première heure "
                "doit être plus petite que la seconde (par exemple 9 et 20).",
                end=gettext(LABELS["quiet_hours_end"]),
                start=gettext(LABELS["quiet_hours_start"]),
            )
        )
    settings_store.save(session, SETTING_KEY, values, by_id=by_id, now=now)  # type: ignore[arg-type]
    return values
