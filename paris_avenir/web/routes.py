"""Public pages of the shell: home page, liveness and readiness."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.db import utcnow
from paris_avenir.messaging import outbox
from paris_avenir.web.routing import Route
from paris_avenir.web.templating import render

router = APIRouter(route_class=Route)
# The dispatcher runs every 15 s and retries with backoff: ten minutes late is a fault.
OUTBOX_LAG_LIMIT = timedelta(minutes=10)


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    return render(request, "home.html")


@router.get("/healthz", include_in_schema=False)
def healthz() -> JSONResponse:
    """Liveness: the process answers. A database outage must not get it restarted (that
    would not bring the database back); readiness says so instead."""
    return JSONResponse({"status": "ok"})


@router.get("/readyz", include_in_schema=False)
def readyz(request: Request) -> JSONResponse:
    """Readiness: the database answers and the outbox keeps up (no message that may leave
    has waited more than OUTBOX_LAG_LIMIT past its time: the dispatcher is stuck or the
    provider refuses)."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    try:
        with factory() as session:  # the outbox's query is the database's check too
            waited = outbox.oldest_due_wait(session, utcnow())
    except SQLAlchemyError:
        return JSONResponse({"status": "database unreachable"}, status_code=503)
    seconds = 0 if waited is None else int(waited.total_seconds())
    if waited is not None and waited > OUTBOX_LAG_LIMIT:
        return JSONResponse(
            {"status": "outbox behind", "oldest_due_seconds": seconds}, status_code=503
        )
    return JSONResponse({"status": "ok", "oldest_due_seconds": seconds})
