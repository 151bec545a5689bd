"""The back office's home and the youth file: the dashboard of a caseload (or a team), the
file with its journal, reassignment, "numéro bon" and pausing the watch. Instruction is in
aid_requests/staff_routes.py, counter mode in backoffice/counter_routes.py. Every route that takes
a youth id goes through staff.scope (404 + audit outside the caller's scope); every view of a
youth's data is audited."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from paris_avenir.aid_requests import instruction
from paris_avenir.aid_requests import kinds as catalogue
from paris_avenir.aid_requests import service as requests_service
from paris_avenir.appointments import labels as appointment_labels
from paris_avenir.appointments import service as appointments_service
from paris_avenir.audit import service as audit
from paris_avenir.auth.dependencies import CurrentStaff, client_ip
from paris_avenir.auth.permissions import CounterStaff, TeamYouth
from paris_avenir.backoffice import caseload, deadlines, task_queue, team
from paris_avenir.db import SessionDep, utcnow
from paris_avenir.documents import service as documents
from paris_avenir.kit.dates import PARIS, paris_today
from paris_avenir.messaging import service as messaging
from paris_avenir.outreach import labels as outreach_labels
from paris_avenir.outreach import results as outreach_results
from paris_avenir.staff import assignments, journal, reassignment, tasks
from paris_avenir.staff.models import Permission, StaffUser
from paris_avenir.staff.scope import youth_for_staff
from paris_avenir.web.i18n import gettext as _
from paris_avenir.web.routing import Route, base_url, parse_enum, see_other
from paris_avenir.web.templating import render
from paris_avenir.youths import labels as youth_labels
from paris_avenir.youths import service as youths_service

router = APIRouter(route_class=Route, prefix="/pro")
DASHBOARD_TASKS = 5


@router.get("")
def dashboard(
    request: Request,
    session: SessionDep,
    staff: CurrentStaff,
    filtre: str = "tous",
    tri: str = "silence",
    q: str = "",
    page: int = 1,
) -> Response:
    # A home per role (StaffUser.home_path); a supervisor's starts with the team and queue.
    if not staff.may(Permission.CASELOAD):
        return see_other(staff.home_path)
    chosen = parse_enum(filtre, caseload.Filter, caseload.Filter.ALL)
    sort = parse_enum(tri, caseload.Sort, caseload.Sort.QUIETEST)
    result = caseload.caseload(session, staff, chosen=chosen, sort=sort, search=q[:100], page=page)
    # The top of "À faire": urgent and overdue first.
    lines = task_queue.queue_for(session, staff, limit=DASHBOARD_TASKS) if staff.works_tasks else []
    return render(
        request,
        "staff/home.html",
        {
            "staff": staff,
            "team_loads": team.team_load(session, staff) if staff.may(Permission.TEAM) else [],
            "queue_rows": instruction.queue(session, staff)[:DASHBOARD_TASKS]
            if staff.may(Permission.TEAM)
            else [],
            "task_lines": lines,
            # Papers, the allocation's renewal, the 21st birthday: the caseload's only.
            "deadlines": deadlines.upcoming(session, staff),
            # The menu's count: the same tasks as "À faire", all of them.
            "task_total": request.state.open_task_count() if lines else 0,
            "result": result,
            "filter": chosen,
            "sort": sort,
            "q": q[:100],
            "filters": [
                (item.value, label)
                for item, label in (
                    (caseload.Filter.ALL, _("Tous")),
                    (caseload.Filter.QUIET, _("Silencieux depuis 30 jours")),
                    (caseload.Filter.WAITING, _("Demandes à traiter")),
                    (caseload.Filter.UNREACHABLE, _("Injoignables")),
                    (caseload.Filter.OPTED_OUT, _("Désinscrits des relances")),
                )
            ],
            "sorts": [
                (caseload.Sort.QUIETEST.value, _("Les plus silencieux d’abord")),
                (caseload.Sort.NAME.value, _("Nom")),
                (caseload.Sort.ASE_REF.value, _("Référence ASE")),
            ],
        },
    )


def youth_file_page(
    request: Request,
    session: SessionDep,
    staff: StaffUser,
    youth_id: str,
    *,
    error: str | None = None,
    counter_error: str | None = None,
    status_code: int = 200,
) -> Response:
    youth = youth_for_staff(session, staff, youth_id, ip_address=client_ip(request))
    thread = messaging.general_thread(session, youth.id)
    if messaging.mark_read(session, thread, by_youth=False):
        audit.record(
            session,
            "message.view",
            actor_staff_id=staff.id,
            youth_id=youth.id,
            object_type="message_thread",
            object_id=thread.id,
            ip_address=client_ip(request),
        )
    current = assignments.current_referent(session, youth.id)
    return render(
        request,
        "staff/youth_file.html",
        {
            "staff": staff,
            "youth": youth,
            "referent": current,
            "requests": requests_service.youth_requests(session, youth.id),
            "documents": documents.youth_documents(session, youth.id),
            "messages": messaging.thread_messages(session, thread.id, last=30),
            "appointments": appointments_service.appointments_for_staff(session, youth.id),
            "attempts": outreach_results.latest_attempts(session, youth.id),
            "journal": journal.journal(session, request.app.state.cipher, youth.id),
            "task_lines": task_queue.open_for_youth(session, staff, youth.id),
            "task_history": task_queue.youth_history(session, youth.id),
            # Words, never codes, on staff pages.
            "reason_label": outreach_labels.reason_label,
            "response_label": outreach_labels.response_label,
            "step_label": outreach_labels.step_label,
            "channel_label": outreach_labels.channel_label,
            "appointment_kind": appointment_labels.kind_label,
            "appointment_status": appointment_labels.status_label,
            "housing_label": youth_labels.housing_label,
            "employment_label": youth_labels.employment_label,
            "language_name": youth_labels.language_name,
            "team": assignments.team_referents(session, staff.team_id)
            if staff.may(Permission.TEAM)
            else [],
            "kind_name": lambda code: catalogue.kind(code).name,
            "status_label": requests_service.status_label,
            "document_label": documents.kind_label,
            "milestones": caseload.milestones(youth, paris_today()),
            "paris": PARIS,
            "sent": request.query_params.get("message") == "envoye",
            "error": error,
            "counter_error": counter_error,
        },
        status_code=status_code,
    )


@router.get("/jeunes/{youth_id}")
def youth_file(
    request: Request, session: SessionDep, staff: CurrentStaff, youth_id: str
) -> Response:
    return youth_file_page(request, session, staff, youth_id)


@router.post("/jeunes/{youth_id}/notes")
def add_note(
    request: Request,
    session: SessionDep,
    staff: CurrentStaff,
    youth_id: str,
    note: Annotated[str, Form()] = "",
) -> Response:
    youth = youth_for_staff(session, staff, youth_id, ip_address=client_ip(request), action=None)
    try:
        journal.add_note(
            session, request.app.state.cipher, youth_id=youth.id, author=staff, text=note
        )
    except journal.NoteError as error:
        return youth_file_page(request, session, staff, youth_id, error=str(error), status_code=422)
    return see_other(f"/pro/jeunes/{youth.id}#journal")


@router.post("/jeunes/{youth_id}/referent")
def reassign(
    request: Request,
    session: SessionDep,
    staff: CurrentStaff,
    youth_id: str,
    youth: TeamYouth,
    referent: Annotated[str, Form()] = "",
    raison: Annotated[str, Form()] = "",
) -> Response:
    try:
        reassignment.reassign(
            session,
            youth.id,
            to_referent_id=uuid.UUID(referent),
            by=staff,
            reason=raison,
            base_url=base_url(request),
        )
    except (ValueError, reassignment.AssignmentError) as error:
        message = (
            str(error)
            if isinstance(error, reassignment.AssignmentError)
            else _("Choisissez un référent actif de votre équipe.")
        )
        return youth_file_page(request, session, staff, youth_id, error=message, status_code=422)
    return see_other(f"/pro/jeunes/{youth.id}?reaffecte=1")


@router.post("/jeunes/{youth_id}/numero-bon")
def phone_is_right(
    request: Request, session: SessionDep, staff: CurrentStaff, youth_id: str
) -> Response:
    """ "Mauvais numéro" was a mistake: the number works again, for messages and sign-in."""
    youth = youth_for_staff(session, staff, youth_id, ip_address=client_ip(request), action=None)
    if youths_service.confirm_phone(session, youth, by_staff_id=staff.id):
        tasks.number_proven(session, youth.id, by_id=staff.id, now=utcnow())
    return see_other(f"/pro/jeunes/{youth.id}")


def _pause_end(typed: str) -> tuple[date | None, str | None]:
    """The day a pause ends, after today and within a year; or why it cannot be."""
    try:
        until = date.fromisoformat(typed)
    except ValueError:
        return None, _("Choisissez la date de fin de la pause.")
    today = paris_today()
    if not today < until <= today + timedelta(days=366):
        return None, _("La pause finit après aujourd’hui et dans un an au plus.")
    return until, None


@router.post("/jeunes/{youth_id}/pause")
def pause_outreach(
    request: Request,
    session: SessionDep,
    staff: CounterStaff,
    youth_id: str,
    jusqu_au: Annotated[str, Form()] = "",
) -> Response:
    """A référent pauses the watch for a youth (hospital, travel, already in touch) until a date;
    an empty date resumes it."""
    youth = youth_for_staff(session, staff, youth_id, ip_address=client_ip(request), action=None)
    if jusqu_au.strip():
        until, refusal = _pause_end(jusqu_au.strip())
        if until is None:
            return youth_file_page(
                request, session, staff, youth_id, error=refusal, status_code=422
            )
        youth.outreach_paused_until = datetime.combine(until, time(0), tzinfo=PARIS)
    else:
        youth.outreach_paused_until = None
    audit.record(
        session,
        "youth.outreach_paused",
        actor_staff_id=staff.id,
        youth_id=youth.id,
        ip_address=client_ip(request),
        detail={"until": jusqu_au.strip() or None},
    )
    return see_other(f"/pro/jeunes/{youth.id}")
