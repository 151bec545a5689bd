""" "À faire": the work queue of référents and supervisors, closing a task with its outcome,
and absences (while absent, a référent's tasks go to the team's supervisor)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from paris_avenir.appointments.models import AppointmentKind
from paris_avenir.appointments.slots import Slot, free_slots
from paris_avenir.auth.dependencies import client_ip
from paris_avenir.auth.permissions import TaskStaff
from paris_avenir.backoffice import task_queue
from paris_avenir.db import SessionDep, utcnow
from paris_avenir.staff import tasks
from paris_avenir.staff.models import StaffRole, StaffUser, TaskOutcome
from paris_avenir.web.i18n import gettext as _
from paris_avenir.web.language import safe_next
from paris_avenir.web.routing import Route
from paris_avenir.web.templating import render

router = APIRouter(route_class=Route, prefix="/pro")
PROPOSED_SLOTS = 3


def own_free_slots(session: Session, staff: StaffUser) -> list[Slot]:
    """A référent's next free slots, to propose on the phone (one computation per page)."""
    if staff.role is not StaffRole.REFERENT:
        return []
    return free_slots(
        session,
        staff_ids=[staff.id],
        kind=AppointmentKind.REFERENT,
        now=utcnow(),
        limit=PROPOSED_SLOTS,
    )


def _queue_page(
    request: Request,
    session: Session,
    staff: StaffUser,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    lines = task_queue.queue_for(session, staff)
    closed = request.query_params.get("termine")
    return render(
        request,
        "staff/tasks.html",
        {
            "staff": staff,
            "lines": lines,
            # Computed only when a line has a call that may end with an appointment.
            "slots": own_free_slots(session, staff)
            if any(line.offers_slots for line in lines)
            else [],
            "error": error,
            "notice": _closed_notice(closed, request.query_params.get("ouverte") == "1")
            or _absence_notice(
                request.query_params.get("absence"), request.query_params.get("transmises")
            ),
            "absent_until": staff.absent_until if staff.is_absent(utcnow()) else None,
        },
        status_code=status_code,
    )


def _closed_notice(outcome: str | None, kept_open: bool) -> str | None:
    if kept_open:
        return _("Essai noté. L’alerte reste ouverte : rappelez le jeune au plus tard demain.")
    if not outcome:
        return None
    try:
        label = tasks.outcome_label(TaskOutcome(outcome))
    except ValueError:
        return None
    return _("Tâche terminée : %(outcome)s.", outcome=label)


def _absence_notice(absence: str | None, moved: str | None) -> str | None:
    if absence == "1":
        count = int(moved) if moved and moved.isdigit() else 0
        return _(
            "Absence enregistrée. Tâches confiées à votre superviseur : %(count)s.", count=count
        )
    if absence == "0":
        return _("Vous êtes de retour : les nouvelles tâches vous reviennent.")
    return None


@router.get("/a-faire")
def queue_page(request: Request, session: SessionDep, staff: TaskStaff) -> Response:
    return _queue_page(request, session, staff)


@router.post("/a-faire/{task_id}")
def close_task(
    request: Request,
    session: SessionDep,
    staff: TaskStaff,
    task_id: str,
    resultat: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    suite: Annotated[str, Form()] = "",
) -> Response:
    task = tasks.task_for_staff(session, staff, task_id, ip_address=client_ip(request))
    try:
        closed = tasks.close_task(
            session,
            request.app.state.cipher,
            task,
            by=staff,
            outcome=resultat,
            note=note,
            ip_address=client_ip(request),
        )
    except tasks.TaskError as error:
        return _queue_page(request, session, staff, error=str(error), status_code=error.status_code)
    back = safe_next(suite, "/pro/a-faire")
    separator = "&" if "?" in back else "?"
    if closed.kept_open:
        return RedirectResponse(f"{back}{separator}ouverte=1", status_code=303)
    return RedirectResponse(f"{back}{separator}termine={resultat}", status_code=303)


def _parse_day(raw: str) -> tuple[date | None, str | None]:
    """(date, None), (None, None) for an empty field, or (None, error)."""
    if not raw.strip():
        return None, None
    try:
        return date.fromisoformat(raw.strip()), None
    except ValueError:
        return None, _("Choisissez la date de votre retour.")


@dataclass(frozen=True)
class AbsenceRecorded:
    until: date | None
    moved: int
    error: str | None  # for the form, in French


def record_absence(
    request: Request, session: Session, person: StaffUser, *, by: StaffUser, typed: str
) -> AbsenceRecorded:
    """The date as typed, checked, then the absence (or the return) recorded."""
    until, error = _parse_day(typed)
    if error is not None:
        return AbsenceRecorded(None, 0, error)
    try:
        moved = tasks.set_absence(
            session, person, until=until, by=by, base_url=request.app.state.settings.base_url
        )
    except tasks.AbsenceError as refused:
        return AbsenceRecorded(until, 0, str(refused))
    return AbsenceRecorded(until, moved, None)


@router.post("/absence")
def declare_own_absence(
    request: Request,
    session: SessionDep,
    staff: TaskStaff,
    jusqu_au: Annotated[str, Form()] = "",
) -> Response:
    recorded = record_absence(request, session, staff, by=staff, typed=jusqu_au)
    if recorded.error is not None:
        return _queue_page(request, session, staff, error=recorded.error, status_code=422)
    until, moved = recorded.until, recorded.moved
    return RedirectResponse(
        f"/pro/a-faire?absence={'1' if until else '0'}&transmises={moved}", status_code=303
    )
