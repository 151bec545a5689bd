"""Admin pages (role admin only): aid parameters, staff accounts, outreach policy, SMS texts,
retention of youth files."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests import duties
from paris_avenir.aid_requests import kinds as catalogue
from paris_avenir.aid_requests.models import Aid, AidCode
from paris_avenir.audit import service as audit
from paris_avenir.auth import staff_account
from paris_avenir.auth.dependencies import client_ip
from paris_avenir.auth.permissions import AdminStaff
from paris_avenir.backoffice import admin
from paris_avenir.backoffice.team import disable_staff
from paris_avenir.db import SessionDep
from paris_avenir.kit.errors import DomainError
from paris_avenir.kit.forms import format_euros_input
from paris_avenir.messaging import message_templates, outbox, sms_texts
from paris_avenir.messaging.sms_segments import fit_gsm7
from paris_avenir.outreach import policy
from paris_avenir.retention import files as retention_files
from paris_avenir.staff.models import StaffRole, StaffUser
from paris_avenir.web.forms import FormDep
from paris_avenir.web.i18n import LANGUAGES, is_offered, using_locale
from paris_avenir.web.i18n import gettext as _
from paris_avenir.web.i18n import gettext as i18n_gettext
from paris_avenir.web.routing import Route
from paris_avenir.web.templating import FormPage, render

router = APIRouter(route_class=Route, prefix="/pro/admin")


@router.get("")
def admin_home(request: Request, session: SessionDep, staff: AdminStaff) -> Response:
    """The admin's home: the settings, and who changed what lately."""
    return render(
        request,
        "staff/admin_home.html",
        {"staff": staff, "audit_lines": admin.recent_audit(session)},
    )


def _aids_context(session: Session, _staff: StaffUser) -> dict[str, Any]:
    aids = list(session.scalars(select(Aid).order_by(Aid.code)))
    return {
        "aids": [(aid, catalogue.kind(aid.code).name, admin.parameter_fields(aid)) for aid in aids],
        "threshold": format_euros_input(duties.confirmation_threshold(session)),
    }


_aids_page = FormPage("staff/admin_aids.html", _aids_context)


@router.get("/aides")
def aids(request: Request, session: SessionDep, staff: AdminStaff) -> Response:
    return _aids_page(request, session, staff)


@router.post("/aides/seuil")
def save_confirmation_threshold(
    request: Request,
    session: SessionDep,
    staff: AdminStaff,
    seuil: Annotated[str, Form()] = "",
) -> Response:
    try:
        with session.begin_nested():  # a refusal undoes what was begun
            admin.save_confirmation_threshold(session, seuil, by=staff)
    except admin.AdminError as error:
        return _aids_page(request, session, staff, error=str(error), status_code=422)
    return RedirectResponse("/pro/admin/aides?enregistre=seuil", status_code=303)


@router.post("/aides/{code}")
def update_aid(
    request: Request, session: SessionDep, staff: AdminStaff, code: str, form: FormDep
) -> Response:
    try:
        aid_code = AidCode(code)
    except ValueError:
        raise HTTPException(status_code=404) from None
    try:
        with session.begin_nested():  # a refusal undoes what was begun
            admin.update_aid(
                session, aid_code, {key: str(value) for key, value in form.items()}, by=staff
            )
    except admin.AdminError as error:
        return _aids_page(request, session, staff, error=str(error), status_code=422)
    return RedirectResponse(f"/pro/admin/aides?enregistre={aid_code.value}", status_code=303)


def _staff_page(
    request: Request,
    session: SessionDep,
    staff: StaffUser,
    *,
    error: str | None = None,
    created: staff_account.Invitation | None = None,
    reset: bool = False,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "staff/admin_staff.html",
        {
            "staff": staff,
            "accounts": admin.staff_accounts(session),
            "roles": list(StaffRole),
            "role_labels": admin.ROLE_LABELS,
            "error": error,
            "created": created,
            "reset": reset,
        },
        status_code=status_code,
    )


def _staff_refused(request: Request, session: SessionDep, staff: StaffUser, error: str) -> Response:
    """The accounts page again, with why the admin's request was refused."""
    return _staff_page(request, session, staff, error=error, status_code=422)


@router.get("/agents")
def accounts(request: Request, session: SessionDep, staff: AdminStaff) -> Response:
    return _staff_page(request, session, staff)


@router.post("/agents")
def create_account(
    request: Request,
    session: SessionDep,
    staff: AdminStaff,
    email: Annotated[str, Form()] = "",
    nom: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
    equipe: Annotated[str, Form()] = "",
) -> Response:
    try:
        chosen = StaffRole(role)
    except ValueError:
        return _staff_refused(request, session, staff, _("Choisissez un rôle."))
    if "@" not in email or not nom.strip():
        return _staff_refused(request, session, staff, _("Écrivez l’e-mail et le nom."))
    try:
        invitation = staff_account.invite_staff(
            session,
            request.app.state.cipher,
            email=email,
            full_name=nom.strip(),
            role=chosen,
            team_name=equipe.strip() or None,
            base_url=request.app.state.settings.base_url,
            by=staff,
        )
    except DomainError as error:
        return _staff_refused(request, session, staff, str(error))
    audit.record(
        session,
        "staff.created",
        actor_staff_id=staff.id,
        object_type="staff_user",
        object_id=invitation.staff.id,
        ip_address=client_ip(request),
        detail={"role": chosen.value},
    )
    # The activation link is shown once, on this page only; the admin never sees the
    # password or the TOTP secret, which the new staff member chooses.
    return _staff_page(request, session, staff, created=invitation)


@router.post("/agents/{account_id}/activation")
def reset_account(
    request: Request, session: SessionDep, staff: AdminStaff, account_id: str
) -> Response:
    """Lost password or phone: a new activation link; the old password and TOTP stop."""
    account = _account(session, account_id)
    if account.id == staff.id:
        return _staff_refused(
            request, session, staff, _("Changez votre propre mot de passe depuis « Mon compte ».")
        )
    invitation = staff_account.reset_secrets(
        session,
        request.app.state.cipher,
        account,
        base_url=request.app.state.settings.base_url,
        by=staff,
    )
    return _staff_page(request, session, staff, created=invitation, reset=True)


def _account(session: SessionDep, account_id: str) -> StaffUser:
    try:
        account = session.get(StaffUser, uuid.UUID(account_id))
    except ValueError:
        account = None
    if account is None:
        raise HTTPException(status_code=404)
    return account


@router.post("/agents/{account_id}/desactiver")
def disable_account(
    request: Request, session: SessionDep, staff: AdminStaff, account_id: str
) -> Response:
    account = _account(session, account_id)
    if account.id == staff.id:
        return _staff_refused(
            request, session, staff, _("Vous ne pouvez pas désactiver votre propre compte.")
        )
    disable_staff(session, account, by=staff, base_url=request.app.state.settings.base_url)
    return RedirectResponse("/pro/admin/agents", status_code=303)


@router.post("/agents/{account_id}/role")
def change_role(
    request: Request,
    session: SessionDep,
    staff: AdminStaff,
    account_id: str,
    role: Annotated[str, Form()] = "",
) -> Response:
    account = _account(session, account_id)
    try:
        admin.change_role(
            session,
            account,
            StaffRole(role),
            by=staff,
            base_url=request.app.state.settings.base_url,
        )
    except (ValueError, admin.AdminError) as error:
        message = str(error) if isinstance(error, admin.AdminError) else _("Choisissez un rôle.")
        return _staff_refused(request, session, staff, message)
    return RedirectResponse("/pro/admin/agents", status_code=303)


# --- Outreach policy ----------------------------------------------------------------------


def _policy_context(session: Session, _staff: StaffUser) -> dict[str, Any]:
    current = policy.current_values(session)
    return {
        "rows": [(name, _(policy.ALL_LABELS[name]), value) for name, value in current.items()],
        "audit_retention_months": audit.retention_months(session),
        "audit_retention_range": audit.RETENTION_MONTHS_RANGE,
    }


_policy_page = FormPage("staff/admin_policy.html", _policy_context)


@router.get("/relances")
def outreach_policy(request: Request, session: SessionDep, staff: AdminStaff) -> Response:
    return _policy_page(request, session, staff)


@router.post("/relances")
def save_outreach_policy(
    request: Request, session: SessionDep, staff: AdminStaff, form: FormDep
) -> Response:
    try:
        saved = policy.save(
            session, {key: str(value) for key, value in form.items()}, by_id=staff.id
        )
    except policy.PolicyError as error:
        return _policy_page(request, session, staff, error=str(error), status_code=422)
    audit.record(session, "admin.outreach_policy", actor_staff_id=staff.id, detail=dict(saved))
    return RedirectResponse("/pro/admin/relances?enregistre=1", status_code=303)


@router.post("/relances/journal-audit")
def save_audit_retention(
    request: Request,
    session: SessionDep,
    staff: AdminStaff,
    months: Annotated[str, Form()] = "",
) -> Response:
    """How long the audit log is kept (CNIL: 6 to 12 months); the nightly purge applies it."""
    try:
        audit.save_retention_months(session, months, by_id=staff.id)
    except audit.RetentionError:
        low, high = audit.RETENTION_MONTHS_RANGE
        error = _("Choisissez une durée entre %(low)s et %(high)s mois.", low=low, high=high)
        return _policy_page(request, session, staff, error=error, status_code=422)
    return RedirectResponse("/pro/admin/relances?enregistre=1", status_code=303)


# --- Retention of youth files -------------------------------------------------------------


def _retention_context(session: Session, _staff: StaffUser) -> dict[str, Any]:
    return {
        "automatic": retention_files.automatic(session),
        "last_run": retention_files.last_run(session),
        "protection": retention_files.Protection,
    }


_retention_page = FormPage("staff/admin_retention.html", _retention_context)


@router.get("/conservation")
def retention(request: Request, session: SessionDep, staff: AdminStaff) -> Response:
    return _retention_page(request, session, staff)


@router.post("/conservation")
def save_retention(
    request: Request,
    session: SessionDep,
    staff: AdminStaff,
    automatique: Annotated[str, Form()] = "",
) -> Response:
    """Anonymisation for real at night, or the dry run (the default)."""
    enabled = automatique == "oui"
    retention_files.set_automatic(session, enabled, by_id=staff.id)
    audit.record(
        session,
        "admin.retention_files",
        actor_staff_id=staff.id,
        ip_address=client_ip(request),
        detail={"automatic": enabled},
    )
    return RedirectResponse("/pro/admin/conservation?enregistre=1", status_code=303)


# --- SMS texts ----------------------------------------------------------------------------


def default_sms_text(key: str, language: str) -> str:
    """The built-in text of an editable SMS in that language, with its placeholders
    written as the admin writes them ({link})."""
    builtin = next(item for item in sms_texts.ALL if item.key == key)
    names = message_templates.SPECS[key].placeholders
    with using_locale(language):
        return i18n_gettext(builtin.text, **{name: "{" + name + "}" for name in names})


def _templates_context(session: Session, _staff: StaffUser) -> dict[str, Any]:
    rows = []
    for spec in message_templates.SPECS.values():
        for language, language_name in LANGUAGES:
            text = message_templates.override(session, spec.key, language) or ""
            default = default_sms_text(spec.key, language)
            # Empty: the built-in text is sent, so its size is the one that counts.
            size = message_templates.size_of(spec.key, fit_gsm7(text or default))
            rows.append((spec, _(spec.label), language, language_name, text, size, default))
    return {"rows": rows, "sms_alert": outbox.provider_alert(session)}


_templates_page = FormPage("staff/admin_templates.html", _templates_context)


@router.get("/messages")
def sms_templates(request: Request, session: SessionDep, staff: AdminStaff) -> Response:
    return _templates_page(request, session, staff)


@router.post("/messages/{key}/{language}")
def save_sms_template(
    request: Request,
    session: SessionDep,
    staff: AdminStaff,
    key: str,
    language: str,
    texte: Annotated[str, Form()] = "",
) -> Response:
    if key not in message_templates.SPECS or not is_offered(language):
        raise HTTPException(status_code=404)
    try:
        message_templates.save(session, key, language, texte, by_id=staff.id)
    except message_templates.TemplateError as error:
        return _templates_page(request, session, staff, error=str(error), status_code=422)
    audit.record(
        session,
        "admin.sms_template",
        actor_staff_id=staff.id,
        detail={"template": key, "language": language},
    )
    return RedirectResponse(f"/pro/admin/messages#{key}-{language}", status_code=303)
