"""The youth's own space: home, profile and preferences, their data, leaving."""

from __future__ import annotations

import json
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import RedirectResponse, Response

from paris_avenir.aid_requests import kinds as catalogue
from paris_avenir.aid_requests import service as requests_service
from paris_avenir.aid_requests.models import RequestStatus
from paris_avenir.audit import service as audit
from paris_avenir.auth import sessions
from paris_avenir.auth.dependencies import CurrentYouth, current_user_session
from paris_avenir.config import Settings
from paris_avenir.db import SessionDep, utcnow
from paris_avenir.messaging import service as messaging
from paris_avenir.staff import task_queue
from paris_avenir.web.i18n import LANGUAGES
from paris_avenir.web.i18n import gettext as _
from paris_avenir.web.language import remember_language, safe_next
from paris_avenir.web.templating import render
from paris_avenir.youths import export, service
from paris_avenir.youths.export import export_youth_data
from paris_avenir.youths.models import Channel, Youth

router = APIRouter(prefix="/mon-espace")
PARIS = ZoneInfo("Europe/Paris")


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.get("")
def my_space(request: Request, session: SessionDep, youth: CurrentYouth) -> Response:
    requests = requests_service.youth_requests(session, youth.id)
    today = utcnow().astimezone(PARIS).date()
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
            "help_alert": task_queue.open_alert_for_youth(session, youth.id),
            "kind_name": lambda code: catalogue.kind(code).name,
            "franceconnect": request.app.state.oidc["franceconnect"].settings.configured,
        },
    )


@router.get("/acces")
def who_accessed_my_file(request: Request, session: SessionDep, youth: CurrentYouth) -> Response:
    return render(
        request,
        "youths/accesses.html",
        {
            "youth": youth,
            "accesses": audit.staff_accesses_to(session, youth.id),
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
    response = _redirect("/mon-espace/profil?enregistre=1")
    remember_language(response, youth.language, secure=request.app.state.settings.is_prod)
    return response


def _needs_fresh_sign_in(request: Request, session: SessionDep) -> bool:
    record = current_user_session(request, session)
    return record is None or not sessions.is_recently_authenticated(record)


@router.post("/profil/contact")
def change_contact(
    request: Request,
    session: SessionDep,
    youth: CurrentYouth,
    background: BackgroundTasks,
    nouveau: Annotated[str, Form()] = "",
) -> Response:
    if _needs_fresh_sign_in(request, session):
        return _redirect("/connexion?suite=/mon-espace/profil")
    try:
        verification, message = service.request_contact_change(
            session, youth, secret_key=_settings(request).secret_key, raw_value=nouveau
        )
    except service.ContactError as error:
        return _profile_page(request, youth, error=str(error), typed=nouveau, status_code=422)
    # The code leaves right after the commit, like a sign-in code.
    background.add_task(request.app.state.outbox_worker.send_soon, message.id)
    return render(request, "youths/contact_code.html", {"new_value": verification.new_value})


@router.post("/profil/contact/code")
def confirm_contact(
    request: Request, session: SessionDep, youth: CurrentYouth, code: Annotated[str, Form()] = ""
) -> Response:
    try:
        service.confirm_contact_change(
            session, youth, secret_key=_settings(request).secret_key, code=code
        )
    except service.ContactError as error:
        return render(
            request,
            "youths/contact_code.html",
            {"new_value": "", "error": str(error)},
            status_code=422,
        )
    return _redirect("/mon-espace/profil?enregistre=1")


# --- A number reported as not working -----------------------------------------------------


@router.get("/numero")
def phone_check(request: Request, youth: CurrentYouth, suite: str = "") -> Response:
    """Shown after sign-in when the référent could not reach the youth's number (or
    messages to it bounce): confirm it, or give a new one."""
    going_to = safe_next(suite, "/mon-espace")
    if youth.phone is None or youth.phone_unreachable_at is None:
        return _redirect(going_to)
    return render(request, "youths/phone_check.html", {"youth": youth, "suite": going_to})


@router.post("/numero")
def phone_confirm(
    request: Request,
    session: SessionDep,
    youth: CurrentYouth,
    background: BackgroundTasks,
    suite: Annotated[str, Form()] = "",
) -> Response:
    """ "Oui, c'est mon numéro": proven like a new number, by a code sent to it (whoever
    holds a number reported wrong cannot confirm it for the youth)."""
    going_to = safe_next(suite, "/mon-espace")
    if youth.phone is None or youth.phone_unreachable_at is None:
        return _redirect(going_to)
    try:
        verification, message = service.request_contact_change(
            session,
            youth,
            secret_key=_settings(request).secret_key,
            raw_value=youth.phone,
            reconfirm=True,
        )
    except service.ContactError as error:
        return render(
            request,
            "youths/phone_check.html",
            {"youth": youth, "suite": going_to, "error": str(error)},
            status_code=422,
        )
    background.add_task(request.app.state.outbox_worker.send_soon, message.id)
    return render(request, "youths/contact_code.html", {"new_value": verification.new_value})


# --- My data ------------------------------------------------------------------------------


def _exported(
    request: Request, session: SessionDep, youth: Youth, form: str
) -> dict[str, Any] | None:
    """The youth's data, audited as exported; None when the sign-in is too old for it."""
    if _needs_fresh_sign_in(request, session):
        return None
    data = export_youth_data(session, youth)
    audit.record(
        session, "youth.export", actor_youth_id=youth.id, youth_id=youth.id, detail={"format": form}
    )
    return data


@router.get("/donnees")
def my_data(request: Request, session: SessionDep, youth: CurrentYouth) -> Response:
    data = _exported(request, session, youth, "page")
    if data is None:
        return _redirect("/connexion?suite=/mon-espace/donnees")
    return render(
        request,
        "youths/data.html",
        {"data": data, "profile_label": lambda name: _(export.PROFILE_LABELS[name])},
    )


@router.get("/donnees.json")
def my_data_json(request: Request, session: SessionDep, youth: CurrentYouth) -> Response:
    data = _exported(request, session, youth, "json")
    if data is None:
        return _redirect("/connexion?suite=/mon-espace/donnees")
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
    service.request_deletion(session, youth)
    return _redirect("/mon-espace/suppression")
