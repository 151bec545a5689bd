"""The youth's own space: home, profile and preferences, their data, leaving."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from paris_avenir.aid_requests import kinds as catalogue
from paris_avenir.aid_requests import service as requests_service
from paris_avenir.aid_requests.models import RequestStatus
from paris_avenir.appointments import service as appointments
from paris_avenir.audit import service as audit
from paris_avenir.auth import codes, contact_change, sessions
from paris_avenir.auth.dependencies import CurrentYouth, current_user_session
from paris_avenir.auth.sign_in import SendCodeSoon, start_code_request
from paris_avenir.db import SessionDep, utcnow
from paris_avenir.kit.dates import paris_today
from paris_avenir.messaging import service as messaging
from paris_avenir.messaging.send_soon import SendSoon
from paris_avenir.privacy import deletion, export
from paris_avenir.privacy.export import export_youth_data
from paris_avenir.staff import accesses as staff_accesses
from paris_avenir.staff import alerts, tasks
from paris_avenir.web.i18n import LANGUAGES, get_locale, is_offered
from paris_avenir.web.i18n import gettext as _
from paris_avenir.web.language import remember_language, safe_next
from paris_avenir.web.routing import Route, see_other, settings_of
from paris_avenir.web.templating import render
from paris_avenir.youths import service
from paris_avenir.youths.models import Channel, Youth

router = APIRouter(route_class=Route, prefix="/mon-espace")


@router.get("")
def my_space(request: Request, session: SessionDep, youth: CurrentYouth) -> Response:
    requests = requests_service.youth_requests(session, youth.id)
    today = paris_today()
    return render(
        request,
        "youths/my_space.html",
        {
            "youth": youth,
            "drafts": [r for r in requests if r.status is RequestStatus.DRAFT],
            "missing_documents": [
                r for r in requests if r.status is RequestStatus.MISSING_DOCUMENTS
            ],
            "renewals": requests_service.renewals_due(requests, today),
            "decisions": requests_service.recent_decisions(requests, today),
            "unread": messaging.unread_count_for_youth(session, youth.id),
            # "J'ai besoin d'aide": who was told, and by when they will call.
            "help_alert": alerts.open_alert_for_youth(session, youth.id),
            "kind_name": lambda code: catalogue.kind(code).name,
            "franceconnect": request.app.state.oidc["franceconnect"].settings.configured,
            # The next appointment, today's included, at the top of the page.
            "next_appointment": appointments.next_appointment(session, youth.id),
            "appointment_label": appointments.kind_label,
        },
    )


@router.get("/acces")
def who_accessed_my_file(request: Request, session: SessionDep, youth: CurrentYouth) -> Response:
    return render(
        request,
        "youths/accesses.html",
        {
            "youth": youth,
            "accesses": staff_accesses.staff_accesses_to(session, youth.id),
        },
    )


# --- Profile ------------------------------------------------------------------------------


def _profile_page(
    request: Request,
    youth: object,
    *,
    error: str | None = None,
    notice: str | None = None,
    typed: str = "",
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "youths/profile.html",
        {
            "youth": youth,
            "languages": LANGUAGES,
            # The pages follow this browser's choice; the SMS and emails the profile's. When
            # they differ, the profile asks whether the messages should follow too.
            "reading": get_locale(),
            "language_name": dict(LANGUAGES),
            "error": error,
            "notice": notice,
            "typed": typed,
        },
        status_code=status_code,
    )


@router.get("/profil")
def profile(request: Request, youth: CurrentYouth) -> Response:
    notice = _("C’est enregistré.") if request.query_params.get("enregistre") == "1" else None
    return _profile_page(request, youth, notice=notice)


@router.post("/profil")
def save_preferences(
    request: Request,
    session: SessionDep,
    youth: CurrentYouth,
    langue: Annotated[str, Form()] = "fr",
    canal: Annotated[str, Form()] = "sms",
    pas_de_relance: Annotated[str, Form()] = "",
    pas_de_relance_email: Annotated[str, Form()] = "",
) -> Response:
    try:
        channel = Channel(canal)
    except ValueError:
        channel = youth.preferred_channel
    service.update_preferences(
        session,
        youth,
        language=langue,
        channel=channel,
        outreach_opted_out=pas_de_relance == "oui",
        outreach_email_opted_out=pas_de_relance_email == "oui",
    )
    response = see_other("/mon-espace/profil?enregistre=1")
    remember_language(response, youth.language, secure=request.app.state.settings.is_prod)
    return response


@router.post("/profil/messages")
def choose_message_detail(
    session: SessionDep,
    youth: CurrentYouth,
    messages: Annotated[str, Form()] = "",
) -> Response:
    """ "Messages discrets" or "messages détaillés": anything else changes nothing."""
    if messages not in {"discrets", "detailles"}:
        return see_other("/mon-espace/profil")
    service.choose_message_detail(session, youth, detailed=messages == "detailles")
    return see_other("/mon-espace/profil?enregistre=1")


@router.post("/profil/langue")
def messages_in_this_language(
    request: Request,
    session: SessionDep,
    youth: CurrentYouth,
    langue: Annotated[str, Form()] = "",
) -> Response:
    """ "Recevoir aussi les SMS et e-mails en …": the youth's deliberate choice, the only
    way (with the preferences form) the language of their messages changes."""
    if is_offered(langue):
        youth.language = langue
        audit.record(
            session,
            "youth.messages_language",
            actor_youth_id=youth.id,
            youth_id=youth.id,
            detail={"language": langue},
        )
    response = see_other("/mon-espace/profil?enregistre=1")
    remember_language(response, youth.language, secure=request.app.state.settings.is_prod)
    return response


def _needs_fresh_sign_in(request: Request, session: SessionDep) -> bool:
    record = current_user_session(request, session)
    return record is None or not sessions.is_recently_authenticated(record)


# --- "Confirmez que c'est vous": a new code for a sensitive page ---------------------------

# The sign-in form's attempt cookie (auth.routes), read by /connexion/code.
ATTEMPT_COOKIE = "tentative_connexion"
ATTEMPT_COOKIE_PATH = "/connexion"
# The same attempt, seen by this page only: coming back to it does not send another code.
CONFIRM_PATH = "/mon-espace/confirmer"
CONFIRM_COOKIE = "confirmation_code"


def _confirm_first(suite: str) -> RedirectResponse:
    """A page that needs a sign-in of less than 15 minutes (sessions.RECENT_AUTHENTICATION),
    reached with an older one: the youth is still known, so the code goes to their number
    or email at once, on a page that says why."""
    return see_other(f"{CONFIRM_PATH}?suite={quote(suite)}")


def _known_destination(youth: Youth) -> str | None:
    if youth.preferred_channel is Channel.EMAIL and youth.email:
        return youth.email
    return youth.phone or youth.email


def _confirm_page(
    request: Request,
    session: SessionDep,
    youth: Youth,
    send_code: SendCodeSoon,
    suite: str,
    *,
    send_again: bool,
) -> Response:
    going_to = safe_next(suite, "/mon-espace")
    destination = _known_destination(youth)
    if destination is None:  # FranceConnect only: that sign-in page has it
        return see_other(f"/connexion?suite={quote(going_to)}")
    settings = settings_of(request)
    attempt = codes.find_attempt(session, request.cookies.get(CONFIRM_COOKIE))
    live = (
        attempt is not None
        and attempt.youth_id == youth.id
        and attempt.consumed_at is None
        and attempt.voided_at is None
        and attempt.expires_at > utcnow()
    )
    context: dict[str, Any] = {"suite": going_to, "error": None}
    if live and not send_again:
        assert attempt is not None
        context["masked_destination"] = attempt.masked_destination
        return render(request, "youths/confirm.html", context)
    try:
        result = start_code_request(request, session, destination)
    except (codes.RateLimited, codes.InvalidDestination):
        context["masked_destination"] = None
        context["error"] = _("Trop de codes demandés. Attendez 15 minutes, puis réessayez.")
        return render(request, "youths/confirm.html", context, status_code=429)
    send_code(result.pending)
    context["masked_destination"] = result.masked_destination
    response = render(request, "youths/confirm.html", context)
    lifetime = int(codes.CODE_LIFETIME.total_seconds()) + 300
    for name, path in ((ATTEMPT_COOKIE, ATTEMPT_COOKIE_PATH), (CONFIRM_COOKIE, CONFIRM_PATH)):
        response.set_cookie(
            name,
            result.attempt_token,
            max_age=lifetime,
            path=path,
            secure=settings.is_prod,
            httponly=True,
            samesite="lax",
        )
    return response


@router.get("/confirmer")
def confirm_it_is_you(
    request: Request,
    session: SessionDep,
    youth: CurrentYouth,
    send_code: SendCodeSoon,
    suite: str = "",
) -> Response:
    if not _needs_fresh_sign_in(request, session):
        return see_other(safe_next(suite, "/mon-espace"))
    return _confirm_page(request, session, youth, send_code, suite, send_again=False)


@router.post("/confirmer")
def confirm_send_again(
    request: Request,
    session: SessionDep,
    youth: CurrentYouth,
    send_code: SendCodeSoon,
    suite: Annotated[str, Form()] = "",
) -> Response:
    return _confirm_page(request, session, youth, send_code, suite, send_again=True)


@router.post("/profil/contact")
def change_contact(
    request: Request,
    session: SessionDep,
    youth: CurrentYouth,
    send: SendSoon,
    nouveau: Annotated[str, Form()] = "",
) -> Response:
    if _needs_fresh_sign_in(request, session):
        return _confirm_first("/mon-espace/profil")
    try:
        verification, message = contact_change.request_contact_change(
            session, youth, secret_key=settings_of(request).secret_key, raw_value=nouveau
        )
    except contact_change.ContactError as error:
        return _profile_page(request, youth, error=str(error), typed=nouveau, status_code=422)
    send.message(message.id)  # right after the commit, like a sign-in code
    return render(request, "youths/contact_code.html", {"new_value": verification.new_value})


@router.post("/profil/contact/code")
def confirm_contact(
    request: Request, session: SessionDep, youth: CurrentYouth, code: Annotated[str, Form()] = ""
) -> Response:
    try:
        channel = contact_change.confirm_contact_change(
            session, youth, secret_key=settings_of(request).secret_key, code=code
        )
    except contact_change.ContactError as error:
        return render(
            request,
            "youths/contact_code.html",
            {"new_value": "", "error": str(error)},
            status_code=422,
        )
    if channel is Channel.SMS:  # a number proven by the code sent to it
        tasks.number_proven(session, youth.id, now=utcnow())
    return see_other("/mon-espace/profil?enregistre=1")


# --- A number reported as not working -----------------------------------------------------


@router.get("/numero")
def phone_check(request: Request, youth: CurrentYouth, suite: str = "") -> Response:
    """Shown after sign-in when the référent could not reach the youth's number (or
    messages to it bounce): confirm it, or give a new one."""
    going_to = safe_next(suite, "/mon-espace")
    if youth.phone is None or youth.phone_unreachable_at is None:
        return see_other(going_to)
    return render(request, "youths/phone_check.html", {"youth": youth, "suite": going_to})


@router.post("/numero")
def phone_confirm(
    request: Request,
    session: SessionDep,
    youth: CurrentYouth,
    send: SendSoon,
    suite: Annotated[str, Form()] = "",
) -> Response:
    """ "Oui, c'est mon numéro": proven like a new number, by a code sent to it (whoever
    holds a number reported wrong cannot confirm it for the youth)."""
    going_to = safe_next(suite, "/mon-espace")
    if youth.phone is None or youth.phone_unreachable_at is None:
        return see_other(going_to)
    try:
        verification, message = contact_change.request_contact_change(
            session,
            youth,
            secret_key=settings_of(request).secret_key,
            raw_value=youth.phone,
            reconfirm=True,
        )
    except contact_change.ContactError as error:
        return render(
            request,
            "youths/phone_check.html",
            {"youth": youth, "suite": going_to, "error": str(error)},
            status_code=422,
        )
    send.message(message.id)
    return render(request, "youths/contact_code.html", {"new_value": verification.new_value})


# --- My data ------------------------------------------------------------------------------


def _exported(
    request: Request, session: SessionDep, youth: Youth, form: str
) -> dict[str, Any] | None:
    """The youth's data, audited as exported; None when the sign-in is too old for it."""
    if _needs_fresh_sign_in(request, session):
        return None
    data = export_youth_data(session, youth, as_json=form == "json")
    audit.record(
        session, "youth.export", actor_youth_id=youth.id, youth_id=youth.id, detail={"format": form}
    )
    return data


@router.get("/donnees")
def my_data(request: Request, session: SessionDep, youth: CurrentYouth) -> Response:
    data = _exported(request, session, youth, "page")
    if data is None:
        return _confirm_first("/mon-espace/donnees")
    return render(request, "youths/data.html", {"sections": export.readable_sections(data)})


@router.get("/donnees.json")
def my_data_json(request: Request, session: SessionDep, youth: CurrentYouth) -> Response:
    data = _exported(request, session, youth, "json")
    if data is None:
        return _confirm_first("/mon-espace/donnees")
    return Response(
        json.dumps(data, ensure_ascii=False, indent=2),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="mes-donnees-paris-avenir.json"'},
    )


# --- Leaving ------------------------------------------------------------------------------


@router.get("/suppression")
def deletion_form(request: Request, youth: CurrentYouth) -> Response:
    return render(request, "youths/deletion.html", {"youth": youth})


@router.post("/suppression")
def request_deletion(
    request: Request,
    session: SessionDep,
    youth: CurrentYouth,
    confirme: Annotated[str, Form()] = "",
) -> Response:
    if confirme != "oui":
        return render(
            request,
            "youths/deletion.html",
            {"youth": youth, "error": _("Cochez la case pour confirmer.")},
            status_code=422,
        )
    deletion.request_deletion(session, youth)
    return see_other("/mon-espace/suppression")
