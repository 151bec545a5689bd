"""Writing and reading the audit log. Entries are added in the caller's transaction, so an
action and its trace commit (or roll back) together.

An entry keeps the network of the address (/24, /48), never the address. Entries are kept
for the period the admin sets (6 to 12 months, 12 by default, CNIL), then purged by the
nightly retention job through the database's purge function: the database refuses any
other DELETE and every UPDATE of the log (triggers of migration cfda6be730de).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, text
from sqlalchemy.orm import Session

from paris_avenir.audit.models import AuditEvent, audit_purge_permit
from paris_avenir.db import utcnow
from paris_avenir.kit import settings_store
from paris_avenir.kit.crypto import minimised_ip
from paris_avenir.kit.dates import add_months
from paris_avenir.kit.errors import DomainError
from paris_avenir.web.i18n import N_

# What a youth reads in "Qui a consulté mon dossier", for each action on their data.
ACTION_LABELS: dict[str, str] = {
    "youth.view": N_("a consulté votre dossier"),
    "youth.update": N_("a modifié votre dossier"),
    "aid_request.view": N_("a consulté une demande"),
    "aid_request.update": N_("a traité une demande"),
    "document.download": N_("a ouvert un document"),
    "aid_request.attestation": N_("a téléchargé l’attestation d’une aide"),
    "message.view": N_("a lu vos messages"),
    "message.send": N_("vous a écrit un message"),
    "youth.export": N_("a exporté vos données"),
    "youth.note": N_("a écrit dans votre suivi"),
    "youth.outreach_paused": N_("a mis en pause les messages de suivi"),
    "counter.start": N_("vous a reçu au guichet (avec votre accord)"),
    "counter.request": N_("a fait une demande pour vous au guichet"),
    "counter.document": N_("a ajouté un document pour vous au guichet"),
    "counter.appointment": N_("a pris un rendez-vous pour vous au guichet"),
    "youth.reassigned": N_("vous a confié à un autre référent"),
    "task.closed": N_("a noté ce qui a été fait pour vous"),
    "task.call_unanswered": N_("a essayé de vous appeler"),
    "youth.phone_confirmed": N_("a confirmé votre numéro de téléphone"),
    # The ASE import (backoffice.importer).
    "youth.imported": N_("a créé votre dossier à partir du fichier de l’ASE"),
    "youth.import_checked": N_("a vu un changement prévu de votre numéro, e-mail ou référent"),
    "youth.phone_changed": N_("a changé votre numéro de téléphone"),
    "youth.email_changed": N_("a changé votre adresse e-mail"),
}
# Keys that must never reach the log, whatever a caller passes in `detail`.
FORBIDDEN_DETAIL_KEYS = {"phone", "email", "code", "password", "token", "totp"}


def record(
    session: Session,
    action: str,
    *,
    actor_staff_id: uuid.UUID | None = None,
    actor_youth_id: uuid.UUID | None = None,
    youth_id: uuid.UUID | None = None,
    object_type: str | None = None,
    object_id: uuid.UUID | None = None,
    on_behalf_of_youth: bool = False,
    ip_address: str | None = None,
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> AuditEvent:
    detail = detail or {}
    leaked = FORBIDDEN_DETAIL_KEYS & set(detail)
    if leaked:
        raise ValueError(f"audit detail must not contain {sorted(leaked)}")
    event = AuditEvent(
        occurred_at=now or utcnow(),
        action=action,
        actor_staff_id=actor_staff_id,
        actor_youth_id=actor_youth_id,
        youth_id=youth_id,
        object_type=object_type,
        object_id=object_id,
        on_behalf_of_youth=on_behalf_of_youth,
        ip_address=minimised_ip(ip_address),
        detail=detail,
    )
    session.add(event)
    session.flush()
    return event


# --- Retention ----------------------------------------------------------------------------

RETENTION_SETTING_KEY = "audit_retention_months"
DEFAULT_RETENTION_MONTHS = 12
# CNIL's référentiel for social support: at most a year, and long enough to investigate.
RETENTION_MONTHS_RANGE = (6, 12)
# The database refuses to delete an entry younger than this, whatever it is asked (the
# migration's triggers): the shortest retention an admin can set.
PURGE_FLOOR_MONTHS = RETENTION_MONTHS_RANGE[0]


class RetentionError(DomainError):
    """Not a number of months within RETENTION_MONTHS_RANGE."""


def retention_months(session: Session) -> int:
    stored = settings_store.load(session, RETENTION_SETTING_KEY)
    low, high = RETENTION_MONTHS_RANGE
    if isinstance(stored, int) and low <= stored <= high:
        return stored
    return DEFAULT_RETENTION_MONTHS


def save_retention_months(
    session: Session, raw: str, *, by_id: uuid.UUID, now: datetime | None = None
) -> int:
    low, high = RETENTION_MONTHS_RANGE
    try:
        months = int(raw.strip())
    except ValueError:
        months = 0
    if not low <= months <= high:
        raise RetentionError(raw)
    settings_store.save(session, RETENTION_SETTING_KEY, months, by_id=by_id, now=now)
    record(
        session,
        "admin.audit_retention",
        actor_staff_id=by_id,
        detail={"months": months},
        now=now,
    )
    return months


def retention_cutoff(session: Session, now: datetime) -> datetime:
    """Entries that occurred before this instant are past the retention period."""
    months = retention_months(session)
    day = add_months(now.date(), -months)
    return now.replace(year=day.year, month=day.month, day=day.day)


def purge(session: Session, *, now: datetime | None = None) -> int:
    """Delete the entries past the retention period; the number deleted.

    The only DELETE the database lets through: on PostgreSQL the function
    audit_event_purge() turns a transaction-local setting on for its own DELETE; on SQLite
    a permit row, inserted and removed in this transaction (never visible to another),
    does the same."""
    cutoff = retention_cutoff(session, now or utcnow())
    if session.get_bind().dialect.name == "postgresql":
        deleted = session.scalar(text("SELECT audit_event_purge(:cutoff)"), {"cutoff": cutoff})
        return int(deleted or 0)
    session.execute(insert(audit_purge_permit).values(id=1))
    result = session.execute(
        delete(AuditEvent)
        .where(
            AuditEvent.occurred_at < cutoff,
            # The trigger's floor, by the database's clock: never younger than six months.
            AuditEvent.occurred_at < func.datetime("now", f"-{PURGE_FLOOR_MONTHS} months"),
        )
        .execution_options(synchronize_session=False)
    )
    session.execute(delete(audit_purge_permit))
    return int(getattr(result, "rowcount", 0) or 0)
