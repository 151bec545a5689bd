"""Request dependencies: who is signed in, and the gate to pages that need it."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, partial
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request

from paris_avenir.auth import sessions
from paris_avenir.auth.models import UserSession
from paris_avenir.db import SessionDep
from paris_avenir.staff import assignments, tasks
from paris_avenir.staff.models import StaffUser
from paris_avenir.web.routing import in_endpoint_thread
from paris_avenir.youths.models import Youth


class SignInRequired(HTTPException):
    """Answered by a redirect to the right sign-in page (303, or HX-Redirect for htmx)."""

    def __init__(self, location: str) -> None:
        super().__init__(status_code=303, headers={"Location": location})


def client_ip(request: Request) -> str:
    """The client's address for limits and audit: the TCP peer, or what a trusted proxy saw
    (web.middleware.ClientAddressMiddleware); never a header a client chose."""
    return request.client.host if request.client else "unknown"


_UNSET = object()


def current_user_session(request: Request, session: SessionDep) -> UserSession | None:
    """The live session of this request, looked up once."""
    record = getattr(request.state, "user_session", _UNSET)
    if record is _UNSET:
        record = sessions.find_active(session, sessions.session_token(request))
        request.state.user_session = record
    assert record is None or isinstance(record, UserSession)
    return record


def _sign_in_url(base: str, request: Request) -> str:
    return f"{base}?suite={quote(request.url.path)}"


def _without_session_cookie_to(sign_in_page: str) -> Callable[..., None]:
    def check(request: Request, **_others: object) -> None:
        if not sessions.session_token(request):
            raise SignInRequired(_sign_in_url(sign_in_page, request))

    return check


def require_youth(request: Request, session: SessionDep) -> Youth:
    # Every youth page shows how to reach their référent: looked up with the session.
    youth: Youth | None
    if getattr(request.state, "user_session", _UNSET) is _UNSET:
        found = sessions.find_active_with_youth(session, sessions.session_token(request))
        request.state.user_session = found.record
        youth, referent = found.youth, found.referent
    else:
        record = current_user_session(request, session)
        youth = session.get(Youth, record.youth_id) if record and record.youth_id else None
        referent = assignments.current_referent(session, youth.id) if youth else None
    if youth is None:
        raise SignInRequired(_sign_in_url("/connexion", request))
    request.state.viewer_youth = youth
    request.state.viewer_referent = referent
    return youth


def require_staff(request: Request, session: SessionDep) -> StaffUser:
    record = current_user_session(request, session)
    staff = session.get(StaffUser, record.staff_id) if record and record.staff_id else None
    if staff is None or not staff.is_active:
        raise SignInRequired(_sign_in_url("/pro/connexion", request))
    request.state.viewer_staff = staff
    # The menu's "À faire (n)": counted only if a full page is rendered (one indexed query),
    # and once, when the page shows the count too.
    request.state.open_task_count = cache(partial(tasks.open_count, session, staff))
    return staff


# Computed in the page's own worker thread: one thread hop for the check and the page.
# Signed out (no session cookie), the sign-in page at once, on the event loop.
signed_in_youth = in_endpoint_thread(
    require_youth, on_the_loop=_without_session_cookie_to("/connexion")
)
signed_in_staff = in_endpoint_thread(
    require_staff, on_the_loop=_without_session_cookie_to("/pro/connexion")
)
CurrentYouth = Annotated[Youth, Depends(signed_in_youth)]
CurrentStaff = Annotated[StaffUser, Depends(signed_in_staff)]
