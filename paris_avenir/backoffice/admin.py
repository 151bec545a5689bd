"""Admin work: the aid catalogue's parameters and the staff accounts. Admins configure; they
never see a youth's file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests import duties
from paris_avenir.aid_requests.models import Aid, AidCode
from paris_avenir.audit import service as audit
from paris_avenir.audit.models import AuditEvent
from paris_avenir.db import utcnow
from paris_avenir.kit import settings_store
from paris_avenir.kit.errors import DomainError
from paris_avenir.kit.forms import format_euros_input, parse_euros
from paris_avenir.staff import tasks
from paris_avenir.staff.models import StaffRole, StaffUser, Team
from paris_avenir.web.i18n import N_, gettext

MAX_AGE = 30
# What the accounts page reads: words, never the enum's values.
ROLE_LABELS: dict[StaffRole, str] = {
    StaffRole.REFERENT: N_("Référent·e"),
    StaffRole.PSYCHOLOGIST: N_("Psychologue"),
    StaffRole.SUPERVISOR: N_("Superviseur·e"),
    StaffRole.ADMIN: N_("Administrateur·rice"),
}


# Aid parameters (Aid.parameters keys) as the admin reads them.
PARAMETER_LABELS: dict[str, str] = {
    "min_age": N_("Âge minimum (ans)"),
    "max_age": N_("Âge limite (ans, non compris)"),
    "monthly_amount_cents": N_("Montant mensuel (euros)"),
    "max_amount_cents": N_("Montant maximum (euros)"),
    "max_monthly_income_cents": N_("Revenus mensuels maximum (euros)"),
    "renewal_months": N_("Renouvellement (tous les … mois)"),
}


def parameter_label(key: str) -> str:
    return gettext(PARAMETER_LABELS[key]) if key in PARAMETER_LABELS else key


# The admin's audit view: settings and accounts, in words (a youth's data is not shown).
ADMIN_ACTION_LABELS: dict[str, str] = {
    "admin.aid_parameters": N_("a changé les paramètres d’une aide"),
    "admin.grant_confirmation_threshold": N_("a changé le seuil des accords à confirmer"),
    "admin.outreach_policy": N_("a changé les règles des relances"),
    "admin.audit_retention": N_("a changé la durée de conservation du journal d’audit"),
    "admin.sms_template": N_("a changé un texte de SMS"),
    "admin.retention_files": N_("a changé l’anonymisation automatique des dossiers"),
    "staff.created": N_("a créé un compte"),
    "staff.activation_issued": N_("a envoyé un lien d’activation"),
    "staff.activated": N_("a activé son compte"),
    "staff.disabled": N_("a désactivé un compte"),
    "staff.role_changed": N_("a changé un rôle"),
    "staff.secrets_reset": N_("a réinitialisé un mot de passe et son code"),
    "staff.password_changed": N_("a changé son mot de passe"),
    "staff.sign_in": N_("s’est connecté·e"),
    "staff.sign_in_failed": N_("connexion refusée"),
    "access_denied": N_("accès refusé (hors de son périmètre)"),
}
AUDIT_LINES = 30


@dataclass(frozen=True)
class AuditLine:
    at: datetime
    who: str
    what: str


def recent_audit(session: Session, *, limit: int = AUDIT_LINES) -> list[AuditLine]:
    """The latest settings, accounts and sign-in events, newest first (one query)."""
    rows = session.execute(
        select(AuditEvent.occurred_at, AuditEvent.action, StaffUser.full_name)
        .outerjoin(StaffUser, StaffUser.id == AuditEvent.actor_staff_id)
        .where(AuditEvent.action.in_(ADMIN_ACTION_LABELS))
        .order_by(AuditEvent.occurred_at.desc())
        .limit(limit)
    ).all()
    return [
        AuditLine(
            at, name or gettext("quelqu’un (compte inconnu)"), gettext(ADMIN_ACTION_LABELS[action])
        )
        for at, action, name in rows
    ]


class AdminError(DomainError):
    """The message is for the admin."""


def parameter_fields(aid: Aid) -> list[tuple[str, str, str]]:
    """(key, label, value as typed): euros for amounts, whole numbers otherwise."""
    fields = []
    for key, value in sorted((aid.parameters or {}).items()):
        if key.endswith("_cents"):
            fields.append(
                (
                    key,
                    parameter_label(key),
                    format_euros_input(int(value)),
                )
            )
        else:
            fields.append((key, parameter_label(key), str(value)))
    return fields


def update_aid(
    session: Session,
    code: AidCode,
    form: Mapping[str, str],
    *,
    by: StaffUser,
    now: datetime | None = None,
) -> Aid:
    aid = session.scalars(select(Aid).where(Aid.code == code)).one()
    parameters: dict[str, Any] = dict(aid.parameters or {})
    changed = []
    for key in list(parameters):
        raw = form.get(key, "").strip()
        if key.endswith("_cents"):
            value: int | None = parse_euros(raw)
            if value is None:
                raise AdminError(gettext("« %(name)s » : écrivez un montant en euros.", name=key))
        else:
            value = int(raw) if raw.isdigit() else None
            if (
                value is None
                or (key.endswith("_age") and not 16 <= value <= MAX_AGE)
                or value > 10_000
            ):
                raise AdminError(
                    gettext("« %(name)s » : écrivez un nombre entier plausible.", name=key)
                )
        if parameters[key] != value:
            changed.append(key)
            parameters[key] = value
    if parameters.get("min_age", 0) > parameters.get("max_age", MAX_AGE):
        raise AdminError(gettext("L’âge minimum doit être plus petit que l’âge maximum."))
    is_open = form.get("ouverte") == "oui"
    if is_open != aid.is_open:
        changed.append("is_open")
    aid.is_open = is_open
    aid.parameters = parameters
    audit.record(
        session,
        "admin.aid_parameters",
        actor_staff_id=by.id,
        object_type="aid",
        detail={"aid": code.value, "changed": changed},
        now=now or utcnow(),
    )
    return aid


def save_confirmation_threshold(
    session: Session, raw: str, *, by: StaffUser, now: datetime | None = None
) -> int:
    """The amount above which a grant needs a second person (euros as typed)."""
    cents = parse_euros(raw)
    if cents is None or cents <= 0:
        raise AdminError(gettext("Écrivez un montant en euros plus grand que zéro."))
    now = now or utcnow()
    before = duties.confirmation_threshold(session)
    settings_store.save(session, duties.THRESHOLD_SETTING_KEY, cents, by_id=by.id, now=now)
    audit.record(
        session,
        "admin.grant_confirmation_threshold",
        actor_staff_id=by.id,
        detail={"from_cents": before, "to_cents": cents},
        now=now,
    )
    return cents


def staff_accounts(session: Session) -> list[tuple[StaffUser, str | None]]:
    return [
        (staff, team)
        for staff, team in session.execute(
            select(StaffUser, Team.name)
            .outerjoin(Team, Team.id == StaffUser.team_id)
            .order_by(StaffUser.is_active.desc(), StaffUser.full_name)
        ).all()
    ]


def change_role(
    session: Session,
    staff: StaffUser,
    role: StaffRole,
    *,
    by: StaffUser,
    now: datetime | None = None,
    base_url: str | None = None,
) -> None:
    if staff.id == by.id:
        raise AdminError(gettext("Vous ne pouvez pas changer votre propre rôle."))
    if staff.role is role:
        return
    now = now or utcnow()
    audit.record(
        session,
        "staff.role_changed",
        actor_staff_id=by.id,
        object_type="staff_user",
        object_id=staff.id,
        detail={"from": staff.role.value, "to": role.value},
        now=now,
    )
    staff.role = role
    # Only référents hold tasks (and a supervisor their team's): whoever should, takes them.
    tasks.release(session, staff, now=now, by_id=by.id, base_url=base_url)
