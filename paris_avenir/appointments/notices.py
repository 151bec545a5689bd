"""What the youth is told about their appointments (sent through notifications.notify):
the confirmation, the cancellation, the reminders and the invitation to the 6-month
interview. The confirmation and the reminders carry the appointment's one-tap link
("Je viendrai" / "Je ne peux pas venir", appointments/answer_links.py) with the date in a
short form, so that the SMS keeps to its segments; the others point to the "Mes rendez-vous"
list (a short link that fits one SMS)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from paris_avenir.appointments import answer_links
from paris_avenir.appointments.models import Appointment
from paris_avenir.kit.dates import PARIS
from paris_avenir.messaging import sms_texts
from paris_avenir.messaging.notifications import Attachment, Detailed, Notice
from paris_avenir.web import i18n
from paris_avenir.web.i18n import N_


def format_when(starts_at: datetime, language: str) -> str:
    """ "mercredi 30 septembre à 14:30" in the youth's language and Paris time (SMS, emails)."""
    from babel.dates import format_datetime

    with i18n.using_locale(language) as locale:
        return format_datetime(
            starts_at, i18n.gettext("EEEE d MMMM 'à' HH:mm"), tzinfo=PARIS, locale=locale
        )


# The calendar event's title for a youth who did not choose "messages détaillés": its alarm
# shows on the lock screen, so it never says with whom (a psychologist).
DISCREET_CALENDAR_SUMMARY = N_("Rendez-vous Paris avenir")


def calendar_summary(label: str, *, detailed: bool) -> str:
    """The .ics title in the current language: the kind's `label` only if `detailed`."""
    return label if detailed else i18n.gettext(DISCREET_CALENDAR_SUMMARY)


def format_day(starts_at: datetime, language: str) -> str:
    """ "mer. 30/9 à 14:30": the date in the SMS that carries the one-tap link (it is long)."""
    from babel.dates import format_datetime

    with i18n.using_locale(language) as locale:
        return format_datetime(
            starts_at, i18n.gettext("EEE d/M 'à' HH:mm"), tzinfo=PARIS, locale=locale
        )


def links(appointment: Appointment, base_url: str) -> tuple[str, str]:
    """The appointment's page and the "Mes rendez-vous" list, absolute (from BASE_URL)."""
    listing = f"{base_url.rstrip('/')}/mon-espace/rendez-vous"
    return f"{listing}/{appointment.id}", listing


def _when(appointment: Appointment) -> Callable[[str], str]:
    starts_at = appointment.starts_at
    return lambda language: format_when(starts_at, language)


def _answer_link(appointment: Appointment, base_url: str) -> str:
    """The one-tap link, signed with the deployment's key (callers with the app's settings
    at hand pass theirs)."""
    return answer_links.link(
        appointment.id, secret_key=answer_links.default_secret_key(), base_url=base_url
    )


def _day(appointment: Appointment) -> Callable[[str], str]:
    starts_at = appointment.starts_at
    return lambda language: format_day(starts_at, language)


def confirmation(
    appointment: Appointment,
    *,
    base_url: str,
    calendar: Callable[[], Attachment],
    answer_link: str | None = None,
) -> Notice:
    """Leaves at once, even in quiet hours: it confirms what was just booked. The email
    carries the .ics (`calendar`), links the appointment itself and the one-tap answers."""
    link, _list_link = links(appointment, base_url)
    answer_link = answer_link or _answer_link(appointment, base_url)
    return Notice(
        template="appointment_confirmation",
        key=f"appointment-confirmation:{appointment.id}",
        sms=sms_texts.APPOINTMENT_BOOKED_ANSWER,
        subject=N_("Votre rendez-vous du %(when)s"),
        text=N_(
            "Bonjour,\n\nVotre rendez-vous est confirmé le %(when)s.\n%(place)s\n\n"
            "Vous ne pouvez pas venir ? Dites-le en un clic, le créneau ira à quelqu’un "
            "d’autre : %(answer)s\n\nPour le déplacer ou l’annuler : %(link)s"
        ),
        values={
            "when": _when(appointment),
            "place": appointment.address or "",
            "link": link,
            "answer": answer_link,
        },
        sms_values={"day": _day(appointment), "link": answer_link},
        attachment=calendar,
        confirmation=True,
    )


def cancellation(
    appointment: Appointment, *, base_url: str, calendar: Callable[[], Attachment]
) -> Notice:
    """The SMS says it is cancelled; the email carries the CANCEL .ics that removes the
    event from the youth's calendar (same UID, higher SEQUENCE)."""
    _link, list_link = links(appointment, base_url)
    return Notice(
        template="appointment_cancellation",
        key=f"appointment-cancellation:{appointment.id}",
        sms=sms_texts.APPOINTMENT_CANCELLED,
        subject=N_("Rendez-vous annulé : %(when)s"),
        text=N_(
            "Bonjour,\n\nVotre rendez-vous du %(when)s est annulé.\n\n"
            "Pour en prendre un autre : %(link)s"
        ),
        values={"when": _when(appointment), "link": list_link},
        attachment=calendar,
    )


def reminder(
    appointment: Appointment,
    *,
    hours: int,
    base_url: str,
    send_at: datetime,
    expires_at: datetime,
    answer_link: str | None = None,
) -> Notice:
    """The reminder `hours` before, at `send_at` already chosen outside quiet hours (earlier
    rather than never), useless from `expires_at` on. The email says the SMS's words, with
    the one-tap link ("Je viendrai" / "Je ne peux pas venir")."""
    stamp = int(appointment.starts_at.timestamp())
    answer_link = answer_link or _answer_link(appointment, base_url)
    return Notice(
        template="appointment_reminder",
        key=f"appointment-reminder:{appointment.id}:{stamp}:{hours * 3600}",
        sms=sms_texts.APPOINTMENT_REMINDER_ANSWER,
        subject=N_("Rappel : votre rendez-vous du %(when)s"),
        values={"when": _when(appointment), "day": _day(appointment), "link": answer_link},
        not_before=send_at,
        expires_at=expires_at,
        exact_time=True,
    )


def interview_invitation(*, key: str, link: str) -> Notice:
    """Six months after leaving care: choose the date of the interview (`link` signs in)."""
    return Notice(
        template="follow_up_interview",
        key=key,
        sms=sms_texts.INTERVIEW_INVITATION,
        subject=N_("Votre entretien des 6 mois avec votre référent"),
        text=N_(
            "Bonjour,\n\nVous avez droit à un entretien avec votre référent pour faire le "
            "point. Choisissez la date ici : %(link)s"
        ),
        values={"link": link},
        detailed=Detailed(
            text=N_(
                "Bonjour,\n\nSix mois après votre sortie de l’ASE, vous avez droit à un "
                "entretien avec votre référent pour faire le point. "
                "Choisissez la date ici : %(link)s"
            )
        ),
    )
