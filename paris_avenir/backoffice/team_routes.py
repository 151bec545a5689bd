"""The supervisor's team page: caseloads, tasks open and overdue, how fast they are
closed, what the watch achieved, and who is absent."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.auth.dependencies import client_ip
from paris_avenir.auth.permissions import SupervisorStaff
from paris_avenir.backoffice import task_queue
from paris_avenir.backoffice import team as team_service
from paris_avenir.backoffice.task_routes import record_absence
from paris_avenir.db import SessionDep, utcnow
from paris_avenir.outreach import results
from paris_avenir.staff.models import StaffUser
from paris_avenir.staff.scope import one_in_scope
from paris_avenir.web.i18n import gettext as _
from paris_avenir.web.templating import render

router = APIRouter(prefix="/pro")


def team_member(
    session: Session, supervisor: StaffUser, staff_id: str, *, ip_address: str | None
) -> StaffUser:
    """A member of the supervisor's own team; anyone else is a 404 and an audit entry."""
    return one_in_scope(
        session,
        supervisor,
        staff_id,
        lambda parsed: select(StaffUser).where(
            StaffUser.id == parsed,
            StaffUser.team_id == supervisor.team_id,
            StaffUser.team_id.is_not(None),
        ),
        object_type="staff_user",
        ip_address=ip_address,
    )


def team_page(
    request: Request,
    session: Session,
    supervisor: StaffUser,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    now = utcnow()
    loads = team_service.team_load(session, supervisor, now=now)
    people = [load.referent.id for load in loads]
    watch = results.results_by_referent(session, people, now=now)
    return render(
        request,
        "staff/team.html",
        {
            "staff": supervisor,
            "loads": loads,
            "task_loads": task_queue.team_task_loads(session, [*people, supervisor.id], now=now),
            "overdue": task_queue.team_overdue(session, supervisor, now=now),
            "watch": {
                person: [row for row in watch if row.referent_id == person] for person in people
            },
            "target": team_service.CASELOAD_TARGET,
            "now": now,
            "error": error,
            "notice": _("C’est enregistré.") if request.query_params.get("absence") else None,
        },
        status_code=status_code,
    )


@router.get("/equipe")
def team(request: Request, session: SessionDep, staff: SupervisorStaff) -> Response:
    return team_page(request, session, staff)


@router.post("/equipe/{staff_id}/absence")
def declare_absence(
    request: Request,
    session: SessionDep,
    supervisor: SupervisorStaff,
    staff_id: str,
    jusqu_au: Annotated[str, Form()] = "",
) -> Response:
    """A supervisor marks a référent of the team absent (or back): their open tasks, and the
    new ones, come to the supervisor meanwhile."""
    person = team_member(session, supervisor, staff_id, ip_address=client_ip(request))
    recorded = record_absence(request, session, person, by=supervisor, typed=jusqu_au)
    if recorded.error is not None:
        return team_page(request, session, supervisor, error=recorded.error, status_code=422)
    return RedirectResponse("/pro/equipe?absence=1", status_code=303)
