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
from paris_avenir.backoffice import sms_queue, task_queue
from paris_avenir.backoffice import team as team_service
from paris_avenir.backoffice.task_routes import record_absence
from paris_avenir.db import SessionDep, utcnow
from paris_avenir.messaging import inbound
from paris_avenir.messaging.models import InboundSms, InboundSmsStatus
from paris_avenir.outreach import results
from paris_avenir.staff.models import StaffUser
from paris_avenir.staff.scope import deny, one_in_scope, youth_for_staff
from paris_avenir.web.i18n import gettext as _
from paris_avenir.web.routing import Route
from paris_avenir.web.templating import render

router = APIRouter(route_class=Route, prefix="/pro")


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
            "sms_waiting": len(sms_queue.queue_for(session, supervisor)),
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


# --- SMS replies that matched no single youth ---------------------------------------------


def _queued_reply(
    session: Session, supervisor: StaffUser, item_id: str, *, ip_address: str | None
) -> InboundSms:
    """A reply still waiting that this supervisor may see; anything else: 404 and audit."""
    item = one_in_scope(
        session,
        supervisor,
        item_id,
        lambda parsed: select(InboundSms).where(
            InboundSms.id == parsed, InboundSms.status == InboundSmsStatus.WAITING
        ),
        object_type="inbound_sms",
        ip_address=ip_address,
    )
    reachable = sms_queue.in_scope(session, supervisor, inbound.candidates(item))
    if not sms_queue.visible(supervisor, item, reachable):
        raise deny(
            session, supervisor, object_type="inbound_sms", object_id=item.id, ip_address=ip_address
        )
    return item


def sms_queue_page(
    request: Request,
    session: Session,
    supervisor: StaffUser,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    done = request.query_params.get("fait")
    return render(
        request,
        "staff/sms_queue.html",
        {
            "staff": supervisor,
            "replies": sms_queue.queue_for(session, supervisor),
            "error": error,
            "notice": {
                "rattache": _("Le SMS est dans la conversation du jeune."),
                "ecarte": _("Le SMS est écarté ; son texte est effacé."),
                "deja": _("Quelqu’un l’a déjà traité."),
            }.get(done or ""),
        },
        status_code=status_code,
    )


@router.get("/equipe/sms")
def sms_replies(request: Request, session: SessionDep, staff: SupervisorStaff) -> Response:
    return sms_queue_page(request, session, staff)


@router.post("/equipe/sms/{item_id}/rattacher")
def attach_sms_reply(
    request: Request,
    session: SessionDep,
    supervisor: SupervisorStaff,
    item_id: str,
    jeune: Annotated[str, Form()] = "",
) -> Response:
    """Into the conversation of one of the candidates, in the supervisor's scope only."""
    ip_address = client_ip(request)
    item = _queued_reply(session, supervisor, item_id, ip_address=ip_address)
    if not jeune:
        return sms_queue_page(
            request,
            session,
            supervisor,
            error=_("Choisissez le jeune à qui rattacher ce SMS."),
            status_code=422,
        )
    youth = youth_for_staff(session, supervisor, jeune, ip_address=ip_address, action=None)
    if youth.id not in inbound.candidates(item):
        raise deny(
            session, supervisor, object_type="youth", object_id=youth.id, ip_address=ip_address
        )
    posted = inbound.attach(
        session, item, youth, by_id=supervisor.id, now=utcnow(), ip_address=ip_address
    )
    return RedirectResponse(
        f"/pro/equipe/sms?fait={'rattache' if posted else 'deja'}", status_code=303
    )


@router.post("/equipe/sms/{item_id}/ecarter")
def discard_sms_reply(
    request: Request, session: SessionDep, supervisor: SupervisorStaff, item_id: str
) -> Response:
    ip_address = client_ip(request)
    item = _queued_reply(session, supervisor, item_id, ip_address=ip_address)
    done = inbound.discard(session, item, by_id=supervisor.id, now=utcnow(), ip_address=ip_address)
    return RedirectResponse(f"/pro/equipe/sms?fait={'ecarte' if done else 'deja'}", status_code=303)
