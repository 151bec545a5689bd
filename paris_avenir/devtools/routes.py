"""/dev/messages: every SMS and email of a development machine, and "envoyer maintenant".

Registered by create_app only when PARIS_AVENIR_ENV=dev (a 404 otherwise, as for any unknown
address); no sign-in, like the file of SMS it replaces: it is the developer's own machine.
The POST goes through the CSRF middleware like every other form.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from paris_avenir.config import Settings
from paris_avenir.db import SessionDep
from paris_avenir.devtools import service
from paris_avenir.web.routing import Route
from paris_avenir.web.templating import render

router = APIRouter(route_class=Route, prefix="/dev", include_in_schema=False)


@router.get("/messages", response_class=HTMLResponse)
def messages_page(request: Request, session: SessionDep) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    messages = service.list_messages(session, sms_file=settings.sms_file)
    return render(
        request,
        "devtools/messages.html",
        {
            "messages": messages,
            "sms_backend": settings.sms_backend,
            "sms_file": settings.sms_file,
            "smtp_url": settings.smtp_url,
            "sent": request.query_params.get("envoye"),
        },
    )


@router.post("/messages/{message_id}/envoyer")
def send_now(request: Request, message_id: uuid.UUID) -> RedirectResponse:
    status = service.send_now(
        request.app.state.session_factory, request.app.state.channels, message_id
    )
    outcome = status.value if status is not None else "absent"
    return RedirectResponse(f"/dev/messages?envoye={outcome}", status_code=303)
