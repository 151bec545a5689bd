"""The one-tap check-in page: no password, two buttons."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from paris_avenir.db import SessionDep
from paris_avenir.outreach import checkin
from paris_avenir.outreach.models import OutreachAttempt
from paris_avenir.staff import alerts
from paris_avenir.web import i18n
from paris_avenir.web.language import chosen_language
from paris_avenir.web.routing import Route, settings_of
from paris_avenir.web.templating import render
from paris_avenir.youths.models import Youth

router = APIRouter(route_class=Route)


def _secret(request: Request) -> str:
    return settings_of(request).secret_key


def _language(request: Request, session: SessionDep, attempt: OutreachAttempt | None) -> str:
    """The link comes from an SMS, often opened in a browser that has no choice yet: the
    page then speaks the youth's language, like the SMS did."""
    if chosen_language(request) is not None or attempt is None:
        return i18n.get_locale()
    youth = session.get(Youth, attempt.youth_id)
    return youth.language if youth is not None else i18n.get_locale()


@router.get("/point/{token}")
def check_in(request: Request, session: SessionDep, token: str) -> Response:
    attempt = checkin.attempt_for(session, token, secret_key=_secret(request))
    state = "invalid" if attempt is None else "answered" if attempt.responded_at else "open"
    with i18n.using_locale(_language(request, session, attempt)):
        return render(
            request,
            "outreach/check_in.html",
            {"token": token, "state": state},
            status_code=200 if attempt is not None else 410,
        )


@router.post("/point/{token}")
def check_in_answer(
    request: Request, session: SessionDep, token: str, reponse: Annotated[str, Form()] = ""
) -> Response:
    attempt = checkin.attempt_for(session, token, secret_key=_secret(request))
    if attempt is None:
        return render(
            request, "outreach/check_in.html", {"token": token, "state": "invalid"}, status_code=410
        )
    with i18n.using_locale(_language(request, session, attempt)):
        if reponse not in {"bien", "aide"}:
            return render(
                request,
                "outreach/check_in.html",
                {"token": token, "state": "open", "error": i18n.gettext("Choisissez une réponse.")},
                status_code=422,
            )
        recorded = checkin.answer(
            session, attempt, needs_help=reponse == "aide", base_url=settings_of(request).base_url
        )
        state = ("thanks_help" if reponse == "aide" else "thanks_good") if recorded else "answered"
        # Who was told, and by when they will call: the youth reads it at once.
        alert = alerts.alert_for_attempt(session, attempt.id) if state == "thanks_help" else None
        return render(
            request, "outreach/check_in.html", {"token": token, "state": state, "alert": alert}
        )
