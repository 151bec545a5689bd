"""Pages where staff handle their own secrets: the activation link (choose a password,
enrol TOTP) and "Mon compte" (change the password, enrol a new TOTP). Texts in French:
the back office is French only."""

from __future__ import annotations

from typing import Annotated

import segno
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from paris_avenir.auth import sessions, staff_account
from paris_avenir.auth.dependencies import CurrentStaff, client_ip
from paris_avenir.auth.staff_local import provisioning_uri
from paris_avenir.db import SessionDep
from paris_avenir.staff.models import StaffUser
from paris_avenir.web.i18n import gettext as _
from paris_avenir.web.routing import Route
from paris_avenir.web.templating import render

router = APIRouter(route_class=Route)


def qr_code(uri: str) -> Markup:
    """The provisioning URI as an inline SVG QR code (no request to another host)."""
    svg = segno.make(uri, error="m").svg_inline(
        scale=4, border=4, light="#fff", title=_("QR code pour l’application d’authentification")
    )
    return Markup(svg.replace("<svg ", '<svg role="img" ', 1))  # noqa: S704 - segno's own SVG


def _activation_page(
    request: Request,
    pending: staff_account.PendingActivation | None,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "staff/activation.html",
        {
            "pending": pending,
            "secret": pending.secret if pending else "",
            "qr": qr_code(pending.totp_uri) if pending else "",
            "error": error,
            "min_length": staff_account.MIN_PASSWORD_LENGTH,
            "used_link": staff_account.used_link(),
        },
        status_code=status_code,
    )


@router.get("/pro/activation/{token}")
def activation_form(request: Request, session: SessionDep, token: str) -> Response:
    pending = staff_account.pending_activation(session, request.app.state.cipher, token)
    return _activation_page(request, pending, status_code=200 if pending else 410)


@router.post("/pro/activation/{token}")
def activation_submit(
    request: Request,
    session: SessionDep,
    token: str,
    password: Annotated[str, Form()] = "",
    confirmation: Annotated[str, Form()] = "",
    totp: Annotated[str, Form()] = "",
) -> Response:
    cipher = request.app.state.cipher
    try:
        with session.begin_nested():  # a refusal undoes what was begun
            staff_account.activate(
                session,
                cipher,
                token,
                password=password,
                confirmation=confirmation,
                totp_code=totp,
                ip_address=client_ip(request),
            )
    except staff_account.LinkUsed as error:
        # Used meanwhile (by another tab) or expired: said by the error, not read again
        # from a transaction that may not see the other tab's commit yet.
        return _activation_page(request, None, error=str(error), status_code=error.status_code)
    except staff_account.AccountError as error:
        pending = staff_account.pending_activation(session, cipher, token)
        return _activation_page(
            request, pending, error=str(error), status_code=422 if pending else 410
        )
    return RedirectResponse("/pro/connexion?active=1", status_code=303)


# --- Mon compte --------------------------------------------------------------------------


def _account_page(
    request: Request,
    staff: StaffUser,
    *,
    error: str | None = None,
    error_form: str = "",
    secret: str | None = None,
    status_code: int = 200,
) -> Response:
    if secret is None:
        secret, uri = staff_account.new_enrolment(staff)
    else:
        uri = provisioning_uri(secret, staff.email)
    return render(
        request,
        "staff/account.html",
        {
            "staff": staff,
            "error": error,
            "error_form": error_form,
            "secret": secret,
            "qr": qr_code(uri),
            "min_length": staff_account.MIN_PASSWORD_LENGTH,
            "done": request.query_params.get("fait", ""),
            "local": staff.password_hash is not None,
        },
        status_code=status_code,
    )


@router.get("/pro/compte")
def account(request: Request, staff: CurrentStaff) -> Response:
    return _account_page(request, staff)


@router.post("/pro/compte/mot-de-passe")
def change_password(
    request: Request,
    session: SessionDep,
    staff: CurrentStaff,
    actuel: Annotated[str, Form()] = "",
    nouveau: Annotated[str, Form()] = "",
    confirmation: Annotated[str, Form()] = "",
) -> Response:
    try:
        staff_account.change_password(
            session,
            staff,
            current=actuel,
            new=nouveau,
            confirmation=confirmation,
            keep_token=sessions.session_token(request),
            ip_address=client_ip(request),
        )
    except staff_account.AccountError as error:
        # Nothing to undo: the service checks everything before it changes anything, and a
        # wrong current password's count must stay (it locks the account at five).
        return _account_page(
            request, staff, error=str(error), error_form="mot-de-passe", status_code=422
        )
    return RedirectResponse("/pro/compte?fait=mot-de-passe", status_code=303)


@router.post("/pro/compte/totp")
def reenrol_totp(
    request: Request,
    session: SessionDep,
    staff: CurrentStaff,
    actuel: Annotated[str, Form()] = "",
    secret: Annotated[str, Form()] = "",
    totp: Annotated[str, Form()] = "",
) -> Response:
    try:
        staff_account.reenrol_totp(
            session,
            request.app.state.cipher,
            staff,
            current_password=actuel,
            secret=secret,
            totp_code=totp,
            keep_token=sessions.session_token(request),
            ip_address=client_ip(request),
        )
    except staff_account.AccountError as error:
        # As above: checked before changed; a wrong current password's count stays.
        return _account_page(
            request,
            staff,
            error=str(error),
            error_form="totp",
            secret=secret if len(secret) == 32 and secret.isalnum() else None,
            status_code=422,
        )
    return RedirectResponse("/pro/compte?fait=totp", status_code=303)
