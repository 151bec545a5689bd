"""Sign-in and sign-out pages: youths by one-time code or FranceConnect, staff by password +
TOTP or single sign-on. Handlers stay thin: the rules live in codes, sessions, staff_local
and oidc."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State

from paris_avenir.audit import service as audit
from paris_avenir.auth import codes, links, sessions, staff_account, staff_local
from paris_avenir.auth.dependencies import CurrentYouth, client_ip, current_user_session
from paris_avenir.auth.models import AuthMethod
from paris_avenir.auth.oidc import FLOW_LIFETIME, OidcClient, OidcFailure, ProviderUnavailable
from paris_avenir.config import Settings
from paris_avenir.db import SessionDep, utcnow
from paris_avenir.staff.models import StaffUser
from paris_avenir.web.i18n import N_
from paris_avenir.web.i18n import gettext as _
from paris_avenir.web.language import chosen_language, remember_language, safe_next
from paris_avenir.web.routing import see_other
from paris_avenir.web.templating import render
from paris_avenir.youths import service as youths_service
from paris_avenir.youths.activity import Activity, record_activity
from paris_avenir.youths.models import Youth

router = APIRouter()
ATTEMPT_COOKIE = "tentative_connexion"
ATTEMPT_COOKIE_PATH = "/connexion"


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _open_session(
    request: Request,
    session: SessionDep,
    response: Response,
    *,
    youth: Youth | None = None,
    staff: StaffUser | None = None,
    method: AuthMethod,
    id_token: str | None = None,
) -> None:
    settings = _settings(request)
    new = sessions.start_session(
        session,
        youth_id=youth.id if youth else None,
        staff_id=staff.id if staff else None,
        method=method,
        replacing_token=sessions.session_token(request),
        id_token=id_token,
    )
    sessions.set_session_cookie(response, settings, new.token, staff=staff is not None)
    now = utcnow()
    if youth is not None:
        # A language chosen on this phone before signing in stays for the pages (they just
        # read the sign-in pages in it); otherwise the profile's language is set for this
        # browser. The SMS and emails keep the profile's language: a phone's choice is not
        # the youth's (a shared or borrowed phone); the profile offers to align them.
        if chosen_language(request) is None:
            remember_language(response, youth.language, secure=settings.is_prod)
        record_activity(session, youth, Activity.SIGN_IN, now)
        youth.activated_at = youth.activated_at or now
        audit.record(
            session,
            "youth.sign_in",
            actor_youth_id=youth.id,
            youth_id=youth.id,
            ip_address=client_ip(request),
            detail={"method": method.value},
        )
        if youth.phone is not None and youth.phone_unreachable_at is not None:
            # The référent could not reach this number (or messages to it bounce): the
            # youth confirms it or gives a new one before going on.
            going_to = response.headers["location"]
            response.headers["location"] = f"/mon-espace/numero?suite={quote(going_to)}"
    if staff is not None:
        audit.record(
            session,
            "staff.sign_in",
            actor_staff_id=staff.id,
            ip_address=client_ip(request),
            detail={"method": method.value},
        )


def _send_code_after_response(
    request: Request, background: BackgroundTasks, pending: codes.PendingCode
) -> None:
    """Sign-in codes leave at once, right after the commit, not at the next outbox pass."""
    background.add_task(_queue_and_send_code, request.app.state, pending)


async def _queue_and_send_code(state: State, pending: codes.PendingCode) -> None:
    # Queueing is one short write; the provider's answer is awaited on the outbox worker's
    # own threads, never on the request thread pool.
    message_id = await run_in_threadpool(codes.queue_code_now, state.session_factory, pending)
    if message_id is not None:
        await state.outbox_worker.send_soon(message_id)


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
        sessions.clear_session_cookie(response, _settings(request))
    return response


@router.post("/connexion")
def sign_in_request_code(
    request: Request,
    session: SessionDep,
    background: BackgroundTasks,
    destination: Annotated[str, Form()] = "",
    suite: Annotated[str, Form()] = "",
) -> Response:
    settings = _settings(request)
    try:
        result = codes.start_code_request(
            session,
            secret_key=settings.secret_key,
            raw_destination=destination,
            ip_address=client_ip(request),
            language=chosen_language(request),
        )
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
    # Rendered, queued and sent after the commit and the response, for a known number and
    # an unknown one alike: both answer in the same time.
    _send_code_after_response(request, background, result.pending)
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
    settings = _settings(request)
    check = codes.check_code(
        session,
        secret_key=settings.secret_key,
        attempt_token=request.cookies.get(ATTEMPT_COOKIE),
        code=code,
    )
    if check.outcome is codes.CodeOutcome.ACCEPTED and check.youth is not None:
        response = see_other(safe_next(suite, "/mon-espace"))
        if check.proved_phone:
            # The code just arrived by SMS: a number flagged because messages bounced works.
            youths_service.confirm_phone(session, check.youth)
        _open_session(request, session, response, youth=check.youth, method=AuthMethod.CODE)
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
def code_by_email(request: Request, session: SessionDep, background: BackgroundTasks) -> Response:
    settings = _settings(request)
    pending = codes.start_email_fallback(
        session,
        secret_key=settings.secret_key,
        attempt_token=request.cookies.get(ATTEMPT_COOKIE),
        language=chosen_language(request),
    )
    if pending is not None:
        _send_code_after_response(request, background, pending)
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
        _oidc(request, provider).end_session_url(id_token) if provider and id_token else None
    )
    if end_session is None:
        response: Response = see_other(landing)
    else:
        response = _to_provider_page(
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
    sessions.clear_session_cookie(response, _settings(request))
    return response


@router.get("/connexion/franceconnect/deconnecte")
def franceconnect_signed_out() -> Response:
    """Where FranceConnect sends the browser back after its own sign-out."""
    return see_other("/connexion?deconnecte=1")


@router.get("/pro/connexion/oidc/deconnecte")
def staff_oidc_signed_out() -> Response:
    """Where the City's sign-in sends the browser back after its own sign-out."""
    return see_other("/pro/connexion?deconnecte=1")


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
    _open_session(request, session, response, youth=youth, method=AuthMethod.LINK)
    return response


# --- FranceConnect (youths) -----------------------------------------------------------


def _oidc(request: Request, name: str) -> OidcClient:
    client: OidcClient = request.app.state.oidc[name]
    return client


def _to_provider_page(
    request: Request, destination: str, *, heading: str, explanation: str, go_on: str
) -> Response:
    """A page that sends the browser on to the provider: after a form, a redirect to
    another site would be blocked by CSP form-action 'self'."""
    return render(
        request,
        "auth/to_provider.html",
        {
            "destination": destination,
            "heading": heading,
            "explanation": explanation,
            "go_on": go_on,
        },
    )


def _start_flow(
    request: Request,
    session: SessionDep,
    client: OidcClient,
    *,
    purpose: str,
    youth_id: uuid.UUID | None = None,
    after_form: bool = False,
) -> Response:
    """To the provider, the flow's state left in this browser's cookie: only this browser
    can finish it. Raises ProviderUnavailable (nothing recorded) when it does not answer.
    A plain link is redirected; after a form (`after_form`), a page leads on."""
    settings = _settings(request)
    started = client.begin(session, purpose=purpose, youth_id=youth_id)
    response: Response
    if after_form:
        response = _to_provider_page(
            request,
            started.url,
            heading=_("Vers FranceConnect"),
            explanation=_("Nous vous envoyons sur FranceConnect pour lier votre compte."),
            go_on=_("Continuer vers FranceConnect"),
        )
    else:
        response = see_other(started.url)
    response.set_cookie(
        settings.oidc_state_cookie_name,
        started.state,
        max_age=int(FLOW_LIFETIME.total_seconds()),
        path="/",
        secure=settings.is_prod,
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back
    )
    return response


def _browser_state(request: Request) -> str | None:
    return request.cookies.get(_settings(request).oidc_state_cookie_name)


def _forget_flow(request: Request, response: Response) -> Response:
    settings = _settings(request)
    response.delete_cookie(
        settings.oidc_state_cookie_name,
        path="/",
        secure=settings.is_prod,
        httponly=True,
        samesite="lax",
    )
    return response


FRANCECONNECT_DOWN = N_(
    "FranceConnect ne répond pas pour le moment. Connectez-vous avec un code reçu par SMS ou "
    "par e-mail, ou réessayez plus tard."
)
STAFF_SSO_DOWN = N_(
    "Le compte de la Ville ne répond pas pour le moment. Connectez-vous avec votre e-mail, "
    "votre mot de passe et le code de votre application, ou réessayez plus tard."
)


@router.get("/connexion/franceconnect")
def franceconnect_start(request: Request, session: SessionDep) -> Response:
    client = _oidc(request, "franceconnect")
    if not client.settings.configured:
        return _sign_in_page(request, status_code=404)
    try:
        return _start_flow(request, session, client, purpose="sign_in")
    except ProviderUnavailable:
        return _sign_in_page(request, status_code=503, error=_(FRANCECONNECT_DOWN))


@router.post("/mon-espace/franceconnect")
def franceconnect_link_start(
    request: Request, session: SessionDep, youth: CurrentYouth
) -> Response:
    client = _oidc(request, "franceconnect")
    record = current_user_session(request, session)
    if record is None or not sessions.is_recently_authenticated(record):
        # Linking an identity is sensitive: prove again that this phone is yours.
        return see_other("/connexion?suite=/mon-espace")
    try:
        return _start_flow(
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


OIDC_ERRORS = {
    OidcFailure.STATE: N_("La connexion a expiré ou a déjà été utilisée. Recommencez."),
    OidcFailure.PROVIDER_ERROR: N_("La connexion a été annulée."),
    OidcFailure.TOKEN: N_("La connexion a été refusée. Recommencez."),
    OidcFailure.ID_TOKEN: N_("La connexion a été refusée. Recommencez."),
    OidcFailure.USERINFO: N_("La connexion a été refusée. Recommencez."),
    OidcFailure.ISSUER: N_("La connexion a été refusée. Recommencez."),
    OidcFailure.UNAVAILABLE: N_("Le service de connexion ne répond pas. Réessayez plus tard."),
    OidcFailure.BROWSER: N_(
        "Cette connexion a été commencée dans un autre navigateur, ou il y a trop longtemps. "
        "Par sécurité, elle est refusée : recommencez ici."
    ),
}


@router.get("/connexion/franceconnect/retour")
def franceconnect_callback(
    request: Request,
    session: SessionDep,
    state: str | None = None,
    code: str | None = None,
    error: str | None = None,
    iss: str | None = None,
) -> Response:
    result = _oidc(request, "franceconnect").finish(
        session,
        state=state,
        code=code,
        error=error,
        issuer=iss,
        browser_state=_browser_state(request),
    )
    if result.failure is not None or result.claims is None or result.flow is None:
        failure = result.failure or OidcFailure.ID_TOKEN
        audit.record(
            session,
            "youth.sign_in_failed",
            ip_address=client_ip(request),
            detail={"method": "franceconnect", "reason": failure.value},
        )
        return _forget_flow(
            request, _sign_in_page(request, status_code=400, error=_(OIDC_ERRORS[failure]))
        )
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
        return _forget_flow(request, see_other("/mon-espace"))
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
    response = _forget_flow(request, see_other("/mon-espace"))
    _open_session(
        request,
        session,
        response,
        youth=youth,
        method=AuthMethod.FRANCECONNECT,
        id_token=result.id_token,
    )
    return response


# --- Staff ----------------------------------------------------------------------------


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
            "single_sign_on": _oidc(request, "staff").settings.configured,
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
        _open_session(
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
    client = _oidc(request, "staff")
    if not client.settings.configured:
        return _staff_sign_in_page(request, status_code=404)
    try:
        return _start_flow(request, session, client, purpose="sign_in")
    except ProviderUnavailable:
        return _staff_sign_in_page(request, status_code=503, error=_(STAFF_SSO_DOWN))


@router.get("/pro/connexion/oidc/retour")
def staff_oidc_callback(
    request: Request,
    session: SessionDep,
    state: str | None = None,
    code: str | None = None,
    error: str | None = None,
    iss: str | None = None,
) -> Response:
    result = _oidc(request, "staff").finish(
        session,
        state=state,
        code=code,
        error=error,
        issuer=iss,
        browser_state=_browser_state(request),
    )
    if result.failure is not None or result.claims is None or result.flow is None:
        failure = result.failure or OidcFailure.ID_TOKEN
        audit.record(
            session,
            "staff.sign_in_failed",
            ip_address=client_ip(request),
            detail={"method": "oidc", "reason": failure.value},
        )
        return _forget_flow(
            request,
            _staff_sign_in_page(request, status_code=400, error=_(OIDC_ERRORS[failure])),
        )
    outcome = staff_account.single_sign_on(
        session, result.flow, result.claims, _settings(request), id_token=result.id_token
    )
    if outcome.refusal is not None or outcome.staff is None:
        audit.record(
            session,
            "staff.sign_in_failed",
            actor_staff_id=outcome.staff.id if outcome.staff else None,
            ip_address=client_ip(request),
            detail={"method": "oidc", "reason": outcome.reason},
        )
        return _forget_flow(
            request, _staff_sign_in_page(request, status_code=403, error=outcome.refusal)
        )
    if outcome.needs_totp:
        # The provider asserted no second factor: the platform's TOTP code, in this browser
        # (the state cookie stays, it names the flow waiting for the code).
        return see_other(staff_account.SSO_TOTP_PATH)
    response = _forget_flow(request, see_other("/pro"))
    _open_session(
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
    pending = staff_account.sso_waiting_for_totp(session, _browser_state(request))
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
            session, request.app.state.cipher, _browser_state(request), totp
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
    response = _forget_flow(request, see_other("/pro"))
    _open_session(
        request, session, response, staff=staff, method=AuthMethod.OIDC, id_token=id_token
    )
    return response
