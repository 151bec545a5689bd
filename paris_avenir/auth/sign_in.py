"""What the youth's and the staff's sign-in pages share: opening a session (cookie, audit,
a youth's activity), the way to an OpenID provider and back (state cookie, the page that
leads on after a form, the failure audited). Route modules call it; it renders no page of
its own but the one that leads to the provider."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Annotated, Protocol
from urllib.parse import quote

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from paris_avenir.audit import service as audit
from paris_avenir.auth import codes, sessions
from paris_avenir.auth.dependencies import client_ip
from paris_avenir.auth.models import AuthMethod
from paris_avenir.auth.oidc import (
    FLOW_LIFETIME,
    OidcClient,
    OidcFailure,
    OidcResult,
    ProviderUnavailable,
)
from paris_avenir.db import utcnow
from paris_avenir.messaging.send_soon import SendSoon
from paris_avenir.staff.models import StaffUser
from paris_avenir.web.i18n import N_
from paris_avenir.web.i18n import gettext as _
from paris_avenir.web.language import chosen_language, remember_language
from paris_avenir.web.routing import see_other, settings_of
from paris_avenir.web.templating import render
from paris_avenir.youths.activity import Activity, record_activity
from paris_avenir.youths.models import Youth


def open_session(
    request: Request,
    session: Session,
    response: Response,
    *,
    youth: Youth | None = None,
    staff: StaffUser | None = None,
    method: AuthMethod,
    id_token: str | None = None,
) -> None:
    settings = settings_of(request)
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


def start_code_request(request: Request, session: Session, destination: str) -> codes.CodeRequest:
    """A one-time code asked from this browser, for this destination, in its language
    (codes.start_code_request: raises InvalidDestination or RateLimited)."""
    return codes.start_code_request(
        session,
        secret_key=settings_of(request).secret_key,
        raw_destination=destination,
        ip_address=client_ip(request),
        language=chosen_language(request),
    )


class CodeSender:
    """Sign-in codes are rendered, queued and sent after the commit and the response, for a
    known destination and an unknown one alike: both answer in the same time."""

    def __init__(self, send: SendSoon) -> None:
        self._send = send

    def __call__(self, pending: codes.PendingCode) -> None:
        self._send.queued_after(partial(codes.queue_code_now, pending=pending))


SendCodeSoon = Annotated[CodeSender, Depends()]


def oidc_client(request: Request, name: str) -> OidcClient:
    client: OidcClient = request.app.state.oidc[name]
    return client


def to_provider_page(
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


def start_flow(
    request: Request,
    session: Session,
    client: OidcClient,
    *,
    purpose: str,
    youth_id: uuid.UUID | None = None,
    after_form: bool = False,
) -> Response:
    """To the provider, the flow's state left in this browser's cookie: only this browser
    can finish it. Raises ProviderUnavailable (nothing recorded) when it does not answer.
    A plain link is redirected; after a form (`after_form`), a page leads on."""
    settings = settings_of(request)
    started = client.begin(session, purpose=purpose, youth_id=youth_id)
    response: Response
    if after_form:
        response = to_provider_page(
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


class SignInPage(Protocol):
    """A sign-in page shown again, with its status and the error to read."""

    def __call__(
        self, request: Request, *, error: str | None = None, status_code: int = 200
    ) -> Response: ...


def start_sign_in(
    request: Request, session: Session, provider: str, page: SignInPage, *, down: str
) -> Response:
    """A sign-in through this provider: to its page, or the sign-in page again (404 when the
    provider is not configured, 503 with `down` when it does not answer)."""
    client = oidc_client(request, provider)
    if not client.settings.configured:
        return page(request, status_code=404)
    try:
        return start_flow(request, session, client, purpose="sign_in")
    except ProviderUnavailable:
        return page(request, status_code=503, error=down)


def browser_state(request: Request) -> str | None:
    return request.cookies.get(settings_of(request).oidc_state_cookie_name)


def forget_flow(request: Request, response: Response) -> Response:
    settings = settings_of(request)
    response.delete_cookie(
        settings.oidc_state_cookie_name,
        path="/",
        secure=settings.is_prod,
        httponly=True,
        samesite="lax",
    )
    return response


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


class ProviderAnswer(BaseModel):
    """The query of a provider's redirect back (RFC 6749 §4.1.2, RFC 9207 `iss`); other
    parameters are ignored."""

    model_config = ConfigDict(frozen=True)

    state: str | None = None
    code: str | None = None
    error: str | None = None
    iss: str | None = None


ProviderAnswerDep = Annotated[ProviderAnswer, Query()]


def finish_flow(
    request: Request,
    session: Session,
    provider: str,
    answer: ProviderAnswer,
    *,
    failed_event: str,
    method: str,
) -> tuple[OidcResult, str | None]:
    """The provider's answer checked against this browser's flow; a failure is audited
    (`failed_event`) and comes back as the sentence to show, translated."""
    result = oidc_client(request, provider).finish(
        session,
        state=answer.state,
        code=answer.code,
        error=answer.error,
        issuer=answer.iss,
        browser_state=browser_state(request),
    )
    if result.failure is None and result.claims is not None and result.flow is not None:
        return result, None
    failure = result.failure or OidcFailure.ID_TOKEN
    audit.record(
        session,
        failed_event,
        ip_address=client_ip(request),
        detail={"method": method, "reason": failure.value},
    )
    return result, _(OIDC_ERRORS[failure])
