"""The staff's sign-in pages (/pro/connexion): password + TOTP, or the City's single
sign-on with the platform's TOTP when the provider asserts no second factor. The rules live
in staff_local and staff_account; what youths' and staff's sign-ins share in sign_in."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from paris_avenir.audit import service as audit
from paris_avenir.auth import staff_account, staff_local
from paris_avenir.auth.dependencies import client_ip
from paris_avenir.auth.models import AuthMethod
from paris_avenir.auth.sign_in import (
    ProviderAnswerDep,
    browser_state,
    finish_flow,
    forget_flow,
    oidc_client,
    open_session,
    start_sign_in,
)
from paris_avenir.db import SessionDep
from paris_avenir.web.i18n import N_
from paris_avenir.web.i18n import gettext as _
from paris_avenir.web.language import safe_next
from paris_avenir.web.routing import Route, see_other, settings_of
from paris_avenir.web.templating import render

router = APIRouter(route_class=Route)

STAFF_SSO_DOWN = N_(
    "Le compte de la Ville ne répond pas pour le moment. Connectez-vous avec votre e-mail, "
    "votre mot de passe et le code de votre application, ou réessayez plus tard."
)


@router.get("/pro/connexion/oidc/deconnecte")
def staff_oidc_signed_out() -> Response:
    """Where the City's sign-in sends the browser back after its own sign-out."""
    return see_other("/pro/connexion?deconnecte=1")


def _staff_sign_in_page(
    request: Request, *, error: str | None = None, email: str = "", status_code: int = 200
) -> Response:
    return render(
        request,
        "auth/staff_sign_in.html",
        {
            "error": error,
            "email": email,
            "next": request.query_params.get("suite", ""),
            "signed_out": request.query_params.get("deconnecte") == "1",
            "single_sign_on": oidc_client(request, "staff").settings.configured,
        },
        status_code=status_code,
    )


@router.get("/pro/connexion")
def staff_sign_in_form(request: Request) -> Response:
    return _staff_sign_in_page(request)


@router.post("/pro/connexion")
def staff_sign_in(
    request: Request,
    session: SessionDep,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    totp: Annotated[str, Form()] = "",
    suite: Annotated[str, Form()] = "",
) -> Response:
    result = staff_local.sign_in(
        session, request.app.state.cipher, email=email, password=password, totp_code=totp
    )
    if result.outcome is staff_local.SignInOutcome.ACCEPTED and result.staff is not None:
        response = see_other(safe_next(suite, "/pro"))
        open_session(
            request, session, response, staff=result.staff, method=AuthMethod.PASSWORD_TOTP
        )
        return response
    audit.record(
        session,
        "staff.sign_in_failed",
        actor_staff_id=result.staff.id if result.staff else None,
        ip_address=client_ip(request),
        detail={"method": "password_totp"} | ({"locked": True} if result.locked_now else {}),
    )
    return _staff_sign_in_page(
        request,
        email=email,
        status_code=422,
        error=_(
            "Connexion refusée : e-mail, mot de passe ou code incorrect, ou compte bloqué "
            "après trop d’essais (réessayez dans 15 minutes)."
        ),
    )


@router.get("/pro/connexion/oidc")
def staff_oidc_start(request: Request, session: SessionDep) -> Response:
    return start_sign_in(request, session, "staff", _staff_sign_in_page, down=_(STAFF_SSO_DOWN))


@router.get("/pro/connexion/oidc/retour")
def staff_oidc_callback(
    request: Request,
    session: SessionDep,
    answer: ProviderAnswerDep,
) -> Response:
    result, refusal = finish_flow(
        request, session, "staff", answer, failed_event="staff.sign_in_failed", method="oidc"
    )
    if refusal is not None or result.claims is None or result.flow is None:
        return forget_flow(request, _staff_sign_in_page(request, status_code=400, error=refusal))
    outcome = staff_account.single_sign_on(
        session, result.flow, result.claims, settings_of(request), id_token=result.id_token
    )
    if outcome.refusal is not None or outcome.staff is None:
        audit.record(
            session,
            "staff.sign_in_failed",
            actor_staff_id=outcome.staff.id if outcome.staff else None,
            ip_address=client_ip(request),
            detail={"method": "oidc", "reason": outcome.reason},
        )
        return forget_flow(
            request, _staff_sign_in_page(request, status_code=403, error=outcome.refusal)
        )
    if outcome.needs_totp:
        # The provider asserted no second factor: the platform's TOTP code, in this browser
        # (the state cookie stays, it names the flow waiting for the code).
        return see_other(staff_account.SSO_TOTP_PATH)
    response = forget_flow(request, see_other("/pro"))
    open_session(
        request,
        session,
        response,
        staff=outcome.staff,
        method=AuthMethod.OIDC,
        id_token=result.id_token,
    )
    return response


@router.get("/pro/connexion/oidc/code")
def staff_oidc_totp_form(request: Request, session: SessionDep) -> Response:
    pending = staff_account.sso_waiting_for_totp(session, browser_state(request))
    return render(
        request,
        "staff/sso_totp.html",
        {"pending": pending is not None, "error": None},
        status_code=200 if pending else 410,
    )


@router.post("/pro/connexion/oidc/code")
def staff_oidc_totp(
    request: Request, session: SessionDep, totp: Annotated[str, Form()] = ""
) -> Response:
    try:
        staff, id_token = staff_account.finish_sso_with_totp(
            session, request.app.state.cipher, browser_state(request), totp
        )
    except staff_account.SsoTotpError as refused:
        if refused.staff is not None:
            audit.record(
                session,
                "staff.sign_in_failed",
                actor_staff_id=refused.staff.id,
                ip_address=client_ip(request),
                detail={"method": "oidc_totp"},
            )
        return render(
            request,
            "staff/sso_totp.html",
            {"pending": refused.can_retry, "error": str(refused)},
            status_code=422 if refused.can_retry else 410,
        )
    response = forget_flow(request, see_other("/pro"))
    open_session(request, session, response, staff=staff, method=AuthMethod.OIDC, id_token=id_token)
    return response
