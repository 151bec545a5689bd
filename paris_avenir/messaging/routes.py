"""Messages between a youth and their référent."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from paris_avenir.aid_requests import service as requests_service
from paris_avenir.audit import service as audit
from paris_avenir.auth.dependencies import CurrentStaff, CurrentYouth, client_ip
from paris_avenir.config import Settings
from paris_avenir.db import SessionDep, utcnow
from paris_avenir.documents import service as documents
from paris_avenir.messaging import notices, notifications, service, unsubscribe
from paris_avenir.messaging.models import MessageThread
from paris_avenir.staff.scope import youth_for_staff
from paris_avenir.web import i18n
from paris_avenir.web.forms import FormDep
from paris_avenir.web.language import chosen_language
from paris_avenir.web.routing import Route
from paris_avenir.web.templating import render
from paris_avenir.youths import service as youth_service
from paris_avenir.youths.activity import Activity, record_activity
from paris_avenir.youths.models import Youth

router = APIRouter(route_class=Route)


def _thread_page(
    request: Request,
    session: SessionDep,
    youth_id: Any,
    thread: MessageThread,
    *,
    error: str | None = None,
    typed: str = "",
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "messaging/thread.html",
        {
            "thread": thread,
            "messages": service.thread_messages(session, thread.id),
            "vault": documents.youth_documents(session, youth_id),
            "document_label": documents.kind_label,
            "error": error,
            "typed": typed,
        },
        status_code=status_code,
    )


@router.get("/mon-espace/messages")
def threads(request: Request, session: SessionDep, youth: CurrentYouth) -> Response:
    service.general_thread(session, youth.id)  # there is always someone to write to
    return render(
        request,
        "messaging/threads.html",
        {
            "summaries": service.threads_for_youth(session, youth.id),
        },
    )


@router.get("/mon-espace/messages/{thread_id}")
def thread(request: Request, session: SessionDep, youth: CurrentYouth, thread_id: str) -> Response:
    found = service.thread_of_youth(session, youth.id, thread_id)
    if found is None:
        raise HTTPException(status_code=404)
    service.mark_read(session, found, by_youth=True)
    return _thread_page(request, session, youth.id, found)


@router.post("/mon-espace/messages/{thread_id}")
def reply(
    request: Request, session: SessionDep, youth: CurrentYouth, thread_id: str, form: FormDep
) -> Response:
    found = service.thread_of_youth(session, youth.id, thread_id)
    if found is None:
        raise HTTPException(status_code=404)
    body = str(form.get("message", ""))
    try:
        service.post_message(
            session,
            found,
            body=body,
            author_staff_id=None,
            document_ids=[str(value) for value in form.getlist("documents")],
        )
    except service.MessageError as error:
        return _thread_page(
            request, session, youth.id, found, error=str(error), typed=body, status_code=422
        )
    record_activity(session, youth, Activity.MESSAGE, utcnow())
    return RedirectResponse(f"/mon-espace/messages/{found.id}#dernier", status_code=303)


@router.post("/mon-espace/demandes/{request_id}/message")
def open_request_thread(session: SessionDep, youth: CurrentYouth, request_id: str) -> Response:
    aid_request = requests_service.request_of_youth(session, youth.id, request_id)
    if aid_request is None:
        raise HTTPException(status_code=404)
    found = requests_service.request_thread(session, aid_request)
    return RedirectResponse(f"/mon-espace/messages/{found.id}", status_code=303)


@router.post("/pro/jeunes/{youth_id}/messages")
def staff_writes(
    request: Request,
    session: SessionDep,
    staff: CurrentStaff,
    youth_id: str,
    message: Annotated[str, Form()] = "",
) -> Response:
    """A référent writes to a youth (the back office's full conversation view is issue 5's)."""
    youth = youth_for_staff(session, staff, youth_id, ip_address=client_ip(request), action=None)
    found = service.general_thread(session, youth.id)
    try:
        posted = service.post_message(session, found, body=message, author_staff_id=staff.id)
    except service.MessageError:
        raise HTTPException(status_code=400) from None
    audit.record(
        session,
        "message.send",
        actor_staff_id=staff.id,
        youth_id=youth.id,
        object_type="message",
        object_id=posted.id,
        ip_address=client_ip(request),
    )
    settings: Settings = request.app.state.settings
    first_unread = service.first_unread_from_staff(session, found.id) or posted.id
    notice = notices.new_message(
        thread_id=found.id, first_unread_id=first_unread, base_url=settings.base_url
    )
    notifications.notify(session, youth, notice, now=utcnow())
    return RedirectResponse(f"/pro/jeunes/{youth.id}?message=envoye", status_code=303)


def _unsubscribe_target(request: Request, session: SessionDep, token: str) -> Youth | None:
    settings: Settings = request.app.state.settings
    youth_id = unsubscribe.youth_id_for(token, secret_key=settings.secret_key)
    return session.get(Youth, youth_id) if youth_id is not None else None


def _unsubscribe_page(
    request: Request, session: SessionDep, token: str, youth: Youth | None, state: str
) -> Response:
    # Opened from an email, often in a browser with no language chosen: the youth's.
    language = youth.language if youth and chosen_language(request) is None else None
    with i18n.using_locale(language or i18n.get_locale()):
        return render(
            request,
            "messaging/unsubscribe.html",
            {"token": token, "state": state},
            status_code=410 if youth is None else 200,
        )


@router.get("/desabonnement/{token}")
def unsubscribe_page(request: Request, session: SessionDep, token: str) -> Response:
    """Only a page with a button: mail scanners follow links, a GET never opts out."""
    youth = _unsubscribe_target(request, session, token)
    if youth is not None and youth.outreach_email_opted_out_at is not None:
        return _unsubscribe_page(request, session, token, youth, "done")
    return _unsubscribe_page(request, session, token, youth, "open" if youth else "invalid")


@router.post("/desabonnement/{token}")
def unsubscribe_one_click(request: Request, session: SessionDep, token: str) -> Response:
    """RFC 8058: the mail provider POSTs `List-Unsubscribe=One-Click`, with no cookie and no
    CSRF token (the route is exempt); the signed token is the authority."""
    youth = _unsubscribe_target(request, session, token)
    if youth is None:
        return _unsubscribe_page(request, session, token, None, "invalid")
    youth_service.opt_out_of_outreach_emails(session, youth, via="email_one_click")
    return _unsubscribe_page(request, session, token, youth, "done")
