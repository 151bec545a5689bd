""" "Télécharger mes données": everything the platform holds about a youth, machine-readable.

Built in a fixed number of queries (one per kind of data), whatever the amount."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from babel import numbers as babel_numbers
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests import kinds as catalogue
from paris_avenir.aid_requests.models import AidRequest, AidRequestEvent, RequestStatus
from paris_avenir.aid_requests.service import STATUS_LABELS
from paris_avenir.appointments.models import Appointment, AppointmentPlace, AppointmentStatus
from paris_avenir.appointments.service import kind_label as appointment_kind_label
from paris_avenir.audit.models import AuditEvent
from paris_avenir.audit.service import ACTION_LABELS
from paris_avenir.documents.models import Document
from paris_avenir.documents.service import kind_label as document_kind_label
from paris_avenir.messaging.models import Message, MessageThread
from paris_avenir.outreach.models import OutreachAttempt
from paris_avenir.staff.models import CaseloadAssignment, StaffTask, StaffUser
from paris_avenir.web import i18n, templating
from paris_avenir.web.i18n import N_, gettext
from paris_avenir.youths.labels import CHANNEL_LABELS, EMPLOYMENT_LABELS, HOUSING_LABELS
from paris_avenir.youths.models import Channel, EmploymentSituation, HousingSituation, Youth

# The JSON keeps the field names; the page shows these labels, in the youth's language.
PROFILE_LABELS = {
    "ase_ref": N_("Numéro de dossier ASE"),
    "first_name": N_("Prénom"),
    "last_name": N_("Nom"),
    "birth_date": N_("Date de naissance"),
    "phone": N_("Téléphone"),
    "email": N_("E-mail"),
    "language": N_("Langue"),
    "preferred_channel": N_("Être prévenu par"),
    "detailed_messages": N_("Messages détaillés"),
    "ase_exit_date": N_("Date de sortie de l’ASE"),
    "former_unaccompanied_minor": N_("Arrivé mineur non accompagné"),
    "housing_situation": N_("Logement"),
    "employment_situation": N_("Activité"),
    "monthly_income_cents": N_("Revenus par mois (en centimes d’euro)"),
    "has_family_support": N_("Aide de la famille"),
    "in_higher_education": N_("Études après le bac"),
    "lives_in_ile_de_france": N_("Habite en Île-de-France"),
    "activated_at": N_("Espace ouvert le"),
    "outreach_opted_out_at": N_("Plus de messages de suivi depuis le"),
    "outreach_email_opted_out_at": N_("Plus de messages de suivi par e-mail depuis le"),
    "outreach_paused_until": N_("Messages de suivi en pause jusqu’au"),
    "deletion_requested_at": N_("Suppression demandée le"),
    "last_activity_at": N_("Dernière visite le"),
    "created_at": N_("Dossier créé le"),
}
PROFILE_FIELDS = tuple(PROFILE_LABELS)
# The page shows euros, not cents (the JSON keeps the integer and its field name).
PROFILE_LABELS_ON_THE_PAGE = {
    **PROFILE_LABELS,
    "monthly_income_cents": N_("Revenus par mois"),
    "language": N_("Langue des SMS et e-mails"),
}
PLACE_LABELS: dict[AppointmentPlace, str] = {
    AppointmentPlace.OFFICE: N_("Au bureau"),
    AppointmentPlace.PHONE: N_("Par téléphone"),
    AppointmentPlace.VIDEO: N_("En visio"),
}
APPOINTMENT_STATUS_LABELS: dict[AppointmentStatus, str] = {
    AppointmentStatus.BOOKED: N_("Prévu"),
    AppointmentStatus.CANCELLED: N_("Annulé"),
    AppointmentStatus.ATTENDED: N_("Vous êtes venu"),
    AppointmentStatus.MISSED: N_("Manqué"),
}


def status_label(status: RequestStatus) -> str:
    return gettext(STATUS_LABELS[status])


def _as_json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "value"):  # enums
        return value.value
    return value


def _kept(value: Any) -> Any:
    return value


def export_youth_data(session: Session, youth: Youth, *, as_json: bool = True) -> dict[str, Any]:
    """The JSON download; with as_json=False the same data keeps its dates and codes as
    Python values, for the page that shows them in words (`readable_sections`)."""
    _plain = _as_json if as_json else _kept
    staff_names: dict[uuid.UUID | None, str] = dict(
        session.execute(select(StaffUser.id, StaffUser.full_name)).all()
    )
    requests = list(
        session.scalars(
            select(AidRequest)
            .where(AidRequest.youth_id == youth.id)
            .order_by(AidRequest.created_at)
        )
    )
    events = list(
        session.scalars(
            select(AidRequestEvent)
            .join(AidRequest)
            .where(AidRequest.youth_id == youth.id)
            .order_by(AidRequestEvent.occurred_at)
        )
    )
    threads = list(session.scalars(select(MessageThread).where(MessageThread.youth_id == youth.id)))
    messages = list(
        session.scalars(
            select(Message)
            .join(MessageThread)
            .where(MessageThread.youth_id == youth.id)
            .order_by(Message.sent_at)
        )
    )
    return {
        "format": "paris-avenir/export-v1",
        "profile": {name: _plain(getattr(youth, name)) for name in PROFILE_FIELDS},
        "referents": [
            {
                "name": staff_names.get(row.referent_id),
                "from": _plain(row.started_at),
                "until": _plain(row.ended_at),
            }
            for row in session.scalars(
                select(CaseloadAssignment)
                .where(CaseloadAssignment.youth_id == youth.id)
                .order_by(CaseloadAssignment.started_at)
            )
        ],
        "requests": [
            {
                "reference": request.reference,
                "aid": _plain(request.aid_code),
                "status": _plain(request.status),
                "answers": request.form_data,
                "submitted_at": _plain(request.submitted_at),
                "decided_at": _plain(request.decided_at),
                "granted_amount_cents": request.granted_amount_cents,
                "decision_reason": request.decision_reason,
                "history": [
                    {
                        "at": _plain(event.occurred_at),
                        "from": _plain(event.from_status),
                        "to": _plain(event.to_status),
                        "reason": event.reason,
                        "by": "vous"
                        if event.actor_is_youth
                        else staff_names.get(event.actor_staff_id),
                    }
                    for event in events
                    if event.aid_request_id == request.id
                ],
            }
            for request in requests
        ],
        "documents": [
            {
                "kind": _plain(document.kind),
                "file_name": document.original_filename,
                "type": document.content_type,
                "size_bytes": document.size_bytes,
                "expires_on": _plain(document.expires_on),
                "added_at": _plain(document.created_at),
            }
            for document in session.scalars(select(Document).where(Document.youth_id == youth.id))
        ],
        "messages": [
            {
                "conversation": thread.subject,
                "messages": [
                    {
                        "at": _plain(message.sent_at),
                        "from": "vous"
                        if message.from_youth
                        else staff_names.get(message.author_staff_id),
                        "text": message.body,
                        "read_at": _plain(message.read_at),
                    }
                    for message in messages
                    if message.thread_id == thread.id
                ],
            }
            for thread in threads
        ],
        "appointments": [
            {
                "kind": _plain(row.kind),
                "starts_at": _plain(row.starts_at),
                "status": _plain(row.status),
                "place": _plain(row.place),
                "with": staff_names.get(row.staff_id),
            }
            for row in session.scalars(select(Appointment).where(Appointment.youth_id == youth.id))
        ],
        "contacts_from_the_platform": [
            {
                "at": _plain(row.attempted_at),
                "reason": _plain(row.reason),
                "channel": _plain(row.channel),
                "answered_at": _plain(row.responded_at),
            }
            for row in session.scalars(
                select(OutreachAttempt).where(OutreachAttempt.youth_id == youth.id)
            )
        ],
        # What the watch handed over to people about the youth, and what they recorded.
        "work_by_the_team": [
            {
                "kind": _plain(task.kind),
                "opened_at": _plain(task.opened_at),
                "due_at": _plain(task.due_at),
                "done_at": _plain(task.done_at),
                "outcome": _plain(task.outcome),
                "closed_by": staff_names.get(task.closed_by_id),
            }
            for task in session.scalars(
                select(StaffTask)
                .where(StaffTask.youth_id == youth.id)
                .order_by(StaffTask.opened_at)
            )
        ],
        "who_accessed_my_file": [
            {
                "at": _plain(row.occurred_at),
                "who": staff_names.get(row.actor_staff_id),
                "action": row.action,
            }
            for row in session.scalars(
                select(AuditEvent)
                .where(AuditEvent.youth_id == youth.id, AuditEvent.actor_staff_id.is_not(None))
                .order_by(AuditEvent.occurred_at)
            )
        ],
    }


# --- The same data, readable: "Mes données" in the youth's language ----------------------


@dataclass(frozen=True)
class Fact:
    label: str | Markup
    value: Markup


@dataclass(frozen=True)
class Entry:
    """One request, document, message, appointment…: a title and what is known of it."""

    title: Markup
    facts: list[Fact] = field(default_factory=list)


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    facts: list[Fact] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)


def _bdi(text: str, *, left_to_right: bool = False) -> Markup:
    if left_to_right:
        return Markup('<bdi dir="ltr">{}</bdi>').format(text)
    return Markup("<bdi>{}</bdi>").format(text)


def _money(cents: int) -> Markup:
    amount = babel_numbers.format_currency(
        Decimal(cents) / 100, "EUR", locale=i18n.get_locale(), format_type="standard"
    )
    return _bdi(amount, left_to_right=True)


def _value(name: str, value: Any) -> Markup:
    """A profile field in words: dates in the reader's language, yes or no, euros, names."""
    if isinstance(value, bool):
        return Markup.escape(gettext("Oui") if value else gettext("Non"))
    if isinstance(value, datetime):
        return templating.format_datetime_paris(value)
    if isinstance(value, date):
        return templating.format_date_long(value)
    if isinstance(value, HousingSituation):
        return Markup.escape(gettext(HOUSING_LABELS[value]))
    if isinstance(value, EmploymentSituation):
        return Markup.escape(gettext(EMPLOYMENT_LABELS[value]))
    if isinstance(value, Channel):
        return Markup.escape(gettext(CHANNEL_LABELS[value]))
    if name == "monthly_income_cents":
        return _money(value)
    if name == "language":
        return _bdi(dict(i18n.LANGUAGES).get(value, value))
    if name == "phone":
        return templating.phone_display(value)
    if name in ("email", "ase_ref"):
        return _bdi(str(value), left_to_right=True)
    return _bdi(str(value))


def _says(message: str, **values: Markup | str) -> Markup:
    """A translated sentence around dates or names already in markup (<bdi>)."""
    return Markup.escape(gettext(message)) % values


def _who(name: str | None) -> str:
    if name == "vous":
        return gettext("vous")
    return name or gettext("l’équipe Paris avenir")


def _facts(*pairs: tuple[str, Markup | None]) -> list[Fact]:
    return [Fact(label, value) for label, value in pairs if value]


def readable_sections(data: dict[str, Any]) -> list[Section]:
    """`export_youth_data(..., as_json=False)` as sections of labelled facts; what is
    empty is left out of a list, and a section with nothing says so in the template."""
    when = templating.format_datetime_paris
    day = templating.format_date_long
    profile = Section(
        "profil",
        gettext("Mon profil"),
        facts=[
            Fact(gettext(PROFILE_LABELS_ON_THE_PAGE[name]), _value(name, value))
            for name, value in data["profile"].items()
            if value is not None
        ],
    )
    referents = Section(
        "referents",
        gettext("Mes référents"),
        entries=[
            Entry(
                _bdi(_who(row["name"])),
                _facts(
                    (gettext("Depuis le"), when(row["from"])),
                    (gettext("Jusqu’au"), when(row["until"])),
                ),
            )
            for row in data["referents"]
        ],
    )
    requests = Section(
        "demandes",
        gettext("Mes demandes"),
        entries=[
            Entry(
                Markup("{} — {}").format(
                    gettext(catalogue.kind(item["aid"]).name),
                    _bdi(item["reference"], left_to_right=True),
                ),
                _facts(
                    (gettext("Où elle en est"), Markup.escape(status_label(item["status"]))),
                    (gettext("Envoyée le"), when(item["submitted_at"])),
                    (gettext("Décidée le"), when(item["decided_at"])),
                    (
                        gettext("Montant accordé"),
                        _money(item["granted_amount_cents"])
                        if item["granted_amount_cents"] is not None
                        else None,
                    ),
                    (
                        gettext("Raison"),
                        _bdi(item["decision_reason"]) if item["decision_reason"] else None,
                    ),
                )
                + [
                    Fact(
                        _says(N_("Le %(date)s"), date=when(event["at"])),
                        Markup("{} ({})").format(
                            status_label(event["to"]), _bdi(_who(event["by"]))
                        ),
                    )
                    for event in item["history"]
                ],
            )
            for item in data["requests"]
        ],
    )
    documents = Section(
        "documents",
        gettext("Mes documents"),
        entries=[
            Entry(
                Markup.escape(document_kind_label(item["kind"])),
                _facts(
                    (gettext("Fichier"), _bdi(item["file_name"])),
                    (gettext("Ajouté le"), when(item["added_at"])),
                    (gettext("Valable jusqu’au"), day(item["expires_on"])),
                ),
            )
            for item in data["documents"]
        ],
    )
    messages = Section(
        "messages",
        gettext("Mes messages"),
        entries=[
            Entry(
                _bdi(conversation["conversation"]),
                [
                    Fact(
                        _says(
                            N_("%(who)s, le %(date)s"),
                            who=_who(message["from"]),
                            date=when(message["at"]),
                        ),
                        _bdi(message["text"]),
                    )
                    for message in conversation["messages"]
                ],
            )
            for conversation in data["messages"]
        ],
    )
    appointments = Section(
        "rendez-vous",
        gettext("Mes rendez-vous"),
        entries=[
            Entry(
                Markup.escape(appointment_kind_label(item["kind"])),
                _facts(
                    (gettext("Le"), when(item["starts_at"])),
                    (gettext("Où"), _says(PLACE_LABELS[item["place"]])),
                    (gettext("Avec"), _bdi(_who(item["with"]))),
                    (
                        gettext("Suivi"),
                        Markup.escape(gettext(APPOINTMENT_STATUS_LABELS[item["status"]])),
                    ),
                ),
            )
            for item in data["appointments"]
        ],
    )
    contacts = Section(
        "contacts",
        gettext("Quand Paris avenir vous a écrit"),
        facts=[
            Fact(
                _says(N_("Le %(date)s"), date=when(row["at"])),
                _says(N_("vous avez répondu le %(date)s"), date=when(row["answered_at"]))
                if row["answered_at"]
                else Markup.escape(gettext("pour prendre de vos nouvelles")),
            )
            for row in data["contacts_from_the_platform"]
        ],
    )
    accesses = Section(
        "acces",
        gettext("Qui a consulté mon dossier"),
        facts=[
            Fact(
                _says(N_("Le %(date)s"), date=when(row["at"])),
                Markup("{} {}").format(
                    _bdi(_who(row["who"])),
                    gettext(ACTION_LABELS.get(row["action"], N_("a consulté votre dossier"))),
                ),
            )
            for row in data["who_accessed_my_file"]
        ],
    )
    return [profile, referents, requests, documents, messages, appointments, contacts, accesses]
