"""The youth's sign-in pages — one-time code, FranceConnect, sign-in links — and the sign-out
of everyone. Handlers stay thin: the rules live in codes, sessions and oidc; what youths'
and staff's sign-ins share in sign_in (the staff's pages: staff_sign_in_routes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from paris_avenir.audit import service as audit
from paris_avenir.auth import codes, links, sessions
from paris_avenir.auth.dependencies import CurrentYouth, client_ip, current_user_session
from paris_avenir.auth.models import AuthMethod
from paris_avenir.auth.oidc import ProviderUnavailable
from paris_avenir.auth.sign_in import (
    ProviderAnswerDep,
    SendCodeSoon,
    finish_flow,
    forget_flow,
    oidc_client,
    open_session,
    start_code_request,
    start_flow,
    start_sign_in,
    to_provider_page,
)
from paris_avenir.db import SessionDep, utcnow
from paris_avenir.staff import tasks
from paris_avenir.web.i18n import N_
from paris_avenir.web.i18n import gettext as _
from paris_avenir.web.language import chosen_language, safe_next
from paris_avenir.web.routing import Route, see_other, settings_of
from paris_avenir.web.templating import render
from paris_avenir.youths import service as youths_service
from paris_avenir.youths.models import Youth

router = APIRouter(route_class=Route)
ATTEMPT_COOKIE = "tentative_connexion"
ATTEMPT_COOKIE_PATH = "/connexion"


# --- Youth: one-time code -------------------------------------------------------------


def _sign_in_page(
    request: Request,
    *,
    error: str | None = None,
    typed: str = "",
    status_code: int = 200,
    session_too_old: bool = False,
) -> Response:
    return render(
        request,
        "auth/sign_in.html",
        {
            "error": error,
            "typed": typed,
            "next": request.query_params.get("suite", ""),
            "signed_out": request.query_params.get("deconnecte") == "1",
            "session_too_old": session_too_old,
            "franceconnect": request.app.state.oidc["franceconnect"].settings.configured,
        },
        status_code=status_code,
    )


@router.get("/connexion")
def sign_in_form(request: Request, session: SessionDep) -> Response:
    # A youth session ends 90 days after the sign-in, however active: say so.
    token = sessions.session_token(request)
    too_old = sessions.ended_by_max_lifetime(session, token)
    response = _sign_in_page(request, session_too_old=too_old)
    if too_old:
        sessions.clear_session_cookie(response, settings_of(request))
    return response


@router.post("/connexion")
def sign_in_request_code(
    request: Request,
    session: SessionDep,
    send_code: SendCodeSoon,
    destination: Annotated[str, Form()] = "",
    suite: Annotated[str, Form()] = "",
) -> Response:
    settings = settings_of(request)
    try:
        result = start_code_request(request, session, destination)
    except codes.InvalidDestination:
        return _sign_in_page(
            request,
            typed=destination,
            status_code=422,
            error=_(
                "Ce n’est pas un numéro de téléphone ou un e-mail. "
                "Exemple : 06 12 34 56 78 ou prenom@exemple.fr"
            ),
        )
    except codes.RateLimited:
        return _sign_in_page(
            request,
            typed=destination,
            status_code=429,
            error=_("Trop de codes demandés. Attendez 15 minutes, puis réessayez."),
        )
    send_code(result.pending)
    response = see_other("/connexion/code" + (f"?suite={suite}" if suite else ""))
    response.set_cookie(
        ATTEMPT_COOKIE,
        result.attempt_token,
        max_age=int(codes.CODE_LIFETIME.total_seconds()) + 300,
        path=ATTEMPT_COOKIE_PATH,
        secure=settings.is_prod,
        httponly=True,
        samesite="lax",
    )
    return response


def _code_page(
    request: Request,
    session: SessionDep,
    *,
    error: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    attempt = codes.find_attempt(session, request.cookies.get(ATTEMPT_COOKIE))
    if attempt is None:
        return see_other("/connexion")
    return render(
        request,
        "auth/code.html",
        {
            "masked_destination": attempt.masked_destination,
            "by_sms": attempt.channel.value == "sms",
            "error": error,
            "notice": notice,
            "next": request.query_params.get("suite", ""),
        },
        status_code=status_code,
    )


@router.get("/connexion/code")
def code_form(request: Request, session: SessionDep) -> Response:
    return _code_page(request, session)


@router.post("/connexion/code")
def code_submit(
    request: Request,
    session: SessionDep,
    code: Annotated[str, Form()] = "",
    suite: Annotated[str, Form()] = "",
) -> Response:
    settings = settings_of(request)
    check = codes.check_code(
        session,
        secret_key=settings.secret_key,
        attempt_token=request.cookies.get(ATTEMPT_COOKIE),
        code=code,
    )
    if check.outcome is codes.CodeOutcome.ACCEPTED and check.youth is not None:
        response = see_other(safe_next(suite, "/mon-espace"))
        # The code just arrived by SMS: a number flagged because messages bounced works, and
        # the référent's « Numéro à vérifier » is done.
        if check.proved_phone and youths_service.confirm_phone(session, check.youth):
            tasks.number_proven(session, check.youth.id, now=utcnow())
        open_session(request, session, response, youth=check.youth, method=AuthMethod.CODE)
        response.delete_cookie(ATTEMPT_COOKIE, path=ATTEMPT_COOKIE_PATH)
        return response
    if check.outcome is codes.CodeOutcome.WRONG:
        error = _(
            "Ce code n’est pas le bon. Vérifiez le message reçu. Essais restants : %(left)s.",
            left=check.tries_left,
        )
        return _code_page(request, session, error=error, status_code=422)
    if check.outcome is codes.CodeOutcome.VOIDED:
        return _sign_in_page(
            request,
            status_code=422,
            error=_("Trop d’essais avec ce code. Demandez un nouveau code."),
        )
    return _sign_in_page(
        request, status_code=422, error=_("Ce code ne marche plus. Demandez un nouveau code.")
    )


@router.post("/connexion/code/email")
def code_by_email(request: Request, session: SessionDep, send_code: SendCodeSoon) -> Response:
    settings = settings_of(request)
    pending = codes.start_email_fallback(
        session,
        secret_key=settings.secret_key,
        attempt_token=request.cookies.get(ATTEMPT_COOKIE),
        language=chosen_language(request),
    )
    if pending is not None:
        send_code(pending)
    return _code_page(
        request,
        session,
        notice=_(
            "Si votre dossier a une adresse e-mail, un nouveau code vient d’y partir. "
            "Regardez aussi dans les spams."
        ),
    )


# Which provider signed a session in, for its sign-out.
PROVIDER_OF_METHOD = {AuthMethod.FRANCECONNECT: "franceconnect", AuthMethod.OIDC: "staff"}


@router.post("/deconnexion")
def sign_out(request: Request, session: SessionDep) -> Response:
    record = current_user_session(request, session)
    token = sessions.session_token(request)
    is_staff = record is not None and record.staff_id is not None
    method = record.auth_method if record is not None else None
    id_token = sessions.revoke(session, token) if token else None
    landing = "/pro/connexion?deconnecte=1" if is_staff else "/connexion?deconnecte=1"
    provider = PROVIDER_OF_METHOD.get(method) if method is not None else None
    # Signed in through FranceConnect or the City's sign-in: the provider's session ends
    # too, or on a shared phone the next person would be signed in as this one.
    end_session = (
        oidc_client(request, provider).end_session_url(id_token) if provider and id_token else None
    )
    if end_session is None:
        response: Response = see_other(landing)
    else:
        response = to_provider_page(
            request,
            end_session,
            heading=_("Déconnexion"),
            explanation=(
                _(
                    "Vous êtes déconnecté de Paris avenir. "
                    "Nous vous déconnectons aussi de FranceConnect."
                )
                if provider == "franceconnect"
                else _(
                    "Vous êtes déconnecté de Paris avenir. "
                    "Nous vous déconnectons aussi du compte de la Ville."
                )
            ),
            go_on=_("Terminer la déconnexion"),
        )
    sessions.clear_session_cookie(response, settings_of(request))
    return response


@router.get("/connexion/franceconnect/deconnecte")
def franceconnect_signed_out() -> Response:
    """Where FranceConnect sends the browser back after its own sign-out."""
    return see_other("/connexion?deconnecte=1")


# --- Sign-in links (invitations, check-ins) --------------------------------------------


@router.get("/lien/{token}")
def login_link_page(request: Request, session: SessionDep, token: str) -> Response:
    usable = links.usable_link(session, token) is not None
    return render(
        request,
        "auth/link.html",
        {"token": token, "usable": usable},
        status_code=200 if usable else 410,
    )


@router.post("/lien/{token}")
def login_link_use(request: Request, session: SessionDep, token: str) -> Response:
    link = links.usable_link(session, token)
    purpose = link.purpose if link is not None else None
    youth = links.consume_link(session, token)
    if youth is None:
        return render(request, "auth/link.html", {"token": token, "usable": False}, status_code=410)
    landing = {"follow_up_interview": "/mon-espace/rendez-vous/nouveau?motif=entretien"}
    response = see_other(landing.get(purpose or "", "/mon-espace"))
    open_session(request, session, response, youth=youth, method=AuthMethod.LINK)
    return response


# --- FranceConnect (youths) -----------------------------------------------------------


FRANCECONNECT_DOWN = N_(
    "FranceConnect ne répond pas pour le moment. Connectez-vous avec un code reçu par SMS ou "
    "par e-mail, ou réessayez plus tard."
)


@router.get("/connexion/franceconnect")
def franceconnect_start(request: Request, session: SessionDep) -> Response:
    return start_sign_in(
        request, session, "franceconnect", _sign_in_page, down=_(FRANCECONNECT_DOWN)
    )


@router.post("/mon-espace/franceconnect")
def franceconnect_link_start(
    request: Request, session: SessionDep, youth: CurrentYouth
) -> Response:
    client = oidc_client(request, "franceconnect")
    record = current_user_session(request, session)
    if record is None or not sessions.is_recently_authenticated(record):
        # Linking an identity is sensitive: prove again that this phone is yours.
        return see_other("/connexion?suite=/mon-espace")
    try:
        return start_flow(
            request, session, client, purpose="link", youth_id=youth.id, after_form=True
        )
    except ProviderUnavailable:
        return render(
            request,
            "auth/to_provider.html",
            {
                "destination": None,
                "heading": _("Lier FranceConnect"),
                "error": _("FranceConnect ne répond pas pour le moment. Réessayez plus tard."),
                "back_url": "/mon-espace",
                "back_label": _("Retour à mon espace"),
            },
            status_code=503,
        )


@router.get("/connexion/franceconnect/retour")
def franceconnect_callback(
    request: Request,
    session: SessionDep,
    answer: ProviderAnswerDep,
) -> Response:
    result, refusal = finish_flow(
        request,
        session,
        "franceconnect",
        answer,
        failed_event="youth.sign_in_failed",
        method="franceconnect",
    )
    if refusal is not None or result.claims is None or result.flow is None:
        return forget_flow(request, _sign_in_page(request, status_code=400, error=refusal))
    subject = str(result.claims["sub"])
    if result.flow.purpose == "link" and result.flow.youth_id is not None:
        youth = session.get(Youth, result.flow.youth_id)
        taken = session.query(Youth).filter(Youth.franceconnect_subject == subject).first()
        if youth is None or (taken is not None and taken.id != youth.id):
            return _sign_in_page(
                request,
                status_code=409,
                error=_(
                    "Ce compte FranceConnect est déjà lié à un autre dossier. "
                    "Parlez-en à votre référent."
                ),
            )
        youth.franceconnect_subject = subject
        audit.record(
            session,
            "youth.franceconnect_linked",
            actor_youth_id=youth.id,
            youth_id=youth.id,
            ip_address=client_ip(request),
        )
        return forget_flow(request, see_other("/mon-espace"))
    # Matched on the subject only, never on an email or a name.
    youth = session.query(Youth).filter(Youth.franceconnect_subject == subject).first()
    if youth is None:
        return _sign_in_page(
            request,
            status_code=404,
            error=_(
                "Aucun dossier n’est lié à ce compte FranceConnect. Connectez-vous avec un code, "
                "puis liez FranceConnect dans « Mon espace »."
            ),
        )
    response = forget_flow(request, see_other("/mon-espace"))
    open_session(
        request,
        session,
        response,
        youth=youth,
        method=AuthMethod.FRANCECONNECT,
        id_token=result.id_token,
    )
    return response
