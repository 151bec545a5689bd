""" "Télécharger mes données": everything the platform holds about a youth, machine-readable.

Built in a fixed number of queries (one per kind of data), whatever the amount."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests.models import AidRequest, AidRequestEvent
from paris_avenir.appointments.models import Appointment
from paris_avenir.audit.models import AuditEvent
from paris_avenir.documents.models import Document
from paris_avenir.messaging.models import Message, MessageThread
from paris_avenir.outreach.models import OutreachAttempt
from paris_avenir.staff.models import CaseloadAssignment, StaffTask, StaffUser
from paris_avenir.web.i18n import N_
from paris_avenir.youths.models import Youth

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


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "value"):  # enums
        return value.value
    return value


def export_youth_data(session: Session, youth: Youth) -> dict[str, Any]:
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
                "aid": request.aid_code.value,
                "status": request.status.value,
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
                "kind": document.kind.value,
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
                "kind": row.kind.value,
                "starts_at": _plain(row.starts_at),
                "status": row.status.value,
                "place": row.place.value,
                "with": staff_names.get(row.staff_id),
            }
            for row in session.scalars(select(Appointment).where(Appointment.youth_id == youth.id))
        ],
        "contacts_from_the_platform": [
            {
                "at": _plain(row.attempted_at),
                "reason": row.reason.value,
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
                "kind": task.kind.value,
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
