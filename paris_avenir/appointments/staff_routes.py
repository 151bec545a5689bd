"""Staff side of appointments: calendar, marking, private feed, availability."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from paris_avenir.appointments import answers, calendar, service
from paris_avenir.appointments.models import (
    AnswerKind,
    AppointmentKind,
    AppointmentPlace,
    AvailabilityException,
    WeeklyAvailability,
)
from paris_avenir.auth.permissions import CalendarStaff
from paris_avenir.config import Settings
from paris_avenir.db import SessionDep, utcnow
from paris_avenir.kit.dates import PARIS, paris_day, paris_today
from paris_avenir.staff.models import StaffRole, StaffUser
from paris_avenir.web.i18n import gettext as _
from paris_avenir.web.routing import Route
from paris_avenir.web.templating import FormPage, render

router = APIRouter(route_class=Route)
WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


@router.get("/pro/agenda")
def agenda(
    request: Request,
    session: SessionDep,
    staff: CalendarStaff,
    jour: str = "",
    vue: str = "semaine",
) -> Response:
    try:
        day = date.fromisoformat(jour) if jour else paris_today()
    except ValueError:
        day = paris_today()
    first = calendar.week_start(day) if vue == "semaine" else day
    last = first + timedelta(days=6 if vue == "semaine" else 0)
    rows = calendar.appointments_between(session, staff, first, last)
    return render(
        request,
        "appointments/agenda.html",
        {
            "staff": staff,
            "rows": rows,
            "first": first,
            "last": last,
            "view": vue,
            "previous": first - timedelta(days=7 if vue == "semaine" else 1),
            "next": first + timedelta(days=7 if vue == "semaine" else 1),
            "kind_label": service.kind_label,
            "now": utcnow(),
            "feed_url": request.query_params.get("flux"),
            # The youths' one-tap answers: who freed a slot, who said they will come.
            "freed": answers.freed_slots(session, staff),
            "answers": answers.answers_for_agenda(session, [a.id for a, _youth in rows]),
            "coming": AnswerKind.COMING,
            "cannot_come": AnswerKind.CANNOT_COME,
        },
    )


@router.post("/pro/rendez-vous/{appointment_id}/{outcome}")
def mark(
    request: Request, session: SessionDep, staff: CalendarStaff, appointment_id: str, outcome: str
) -> Response:
    appointment = calendar.own_appointment(session, staff, appointment_id)
    if appointment is None or outcome not in {"honore", "manque"}:
        raise HTTPException(status_code=404)
    try:
        calendar.mark(session, appointment, staff, attended=outcome == "honore")
    except calendar.CalendarError:
        raise HTTPException(status_code=409) from None
    day = paris_day(appointment.starts_at).isoformat()
    return RedirectResponse(f"/pro/agenda?jour={day}", status_code=303)


@router.post("/pro/agenda/flux")
def new_feed(request: Request, staff: CalendarStaff) -> Response:
    token = calendar.issue_feed_token(staff)
    settings: Settings = request.app.state.settings
    url = f"{settings.base_url.rstrip('/')}/agenda/{token}.ics"
    # Shown once, on this answer only.
    return render(request, "appointments/feed.html", {"staff": staff, "url": url})


@router.post("/pro/agenda/flux/supprimer")
def revoke_feed(staff: CalendarStaff) -> Response:
    calendar.revoke_feed(staff)
    return RedirectResponse("/pro/agenda?flux=supprime", status_code=303)


@router.api_route("/agenda/{token}.ics", methods=["GET", "HEAD"], include_in_schema=False)
def feed(request: Request, session: SessionDep, token: str) -> Response:
    body = calendar.feed(session, token)
    if body is None:
        raise HTTPException(status_code=404)
    headers = {"Cache-Control": "private, max-age=3600"}
    if request.method == "HEAD":
        # Calendar apps check a subscription with HEAD: the headers of GET, no body.
        headers["Content-Length"] = str(len(body.encode()))
        return Response(None, media_type="text/calendar; charset=utf-8", headers=headers)
    return Response(body, media_type="text/calendar; charset=utf-8", headers=headers)


# --- Availability -------------------------------------------------------------------------


def _kinds_for(staff: StaffUser) -> list[AppointmentKind]:
    if staff.role is StaffRole.PSYCHOLOGIST:
        return [AppointmentKind.PSYCHOLOGIST]
    return [AppointmentKind.REFERENT, AppointmentKind.COUNTER]


def _availability_context(session: Session, staff: StaffUser) -> dict[str, Any]:
    return {
        "weekdays": WEEKDAYS,
        "openings": list(
            session.scalars(
                select(WeeklyAvailability)
                .where(WeeklyAvailability.staff_id == staff.id)
                .order_by(WeeklyAvailability.weekday, WeeklyAvailability.start_time)
            )
        ),
        "exceptions": list(
            session.scalars(
                select(AvailabilityException)
                .where(
                    AvailabilityException.staff_id == staff.id,
                    AvailabilityException.ends_at > utcnow(),
                )
                .order_by(AvailabilityException.starts_at)
            )
        ),
        "kinds": [(kind.value, service.kind_label(kind)) for kind in _kinds_for(staff)],
        "places": [
            (place.value, label)
            for place, label in (
                (AppointmentPlace.OFFICE, _("Au bureau")),
                (AppointmentPlace.PHONE, _("Par téléphone")),
                (AppointmentPlace.VIDEO, _("En visio")),
            )
        ],
    }


_availability_page = FormPage("appointments/availability.html", _availability_context)


@router.get("/pro/disponibilites")
def availability(request: Request, session: SessionDep, staff: CalendarStaff) -> Response:
    return _availability_page(request, session, staff)


def _parse_time(raw: str) -> time | None:
    try:
        return time.fromisoformat(raw.strip())
    except ValueError:
        return None


@router.post("/pro/disponibilites")
def add_opening(
    request: Request,
    session: SessionDep,
    staff: CalendarStaff,
    jour: Annotated[str, Form()] = "",
    debut: Annotated[str, Form()] = "",
    fin: Annotated[str, Form()] = "",
    motif: Annotated[str, Form()] = "",
    lieu: Annotated[str, Form()] = "bureau",
    adresse: Annotated[str, Form()] = "",
    duree: Annotated[str, Form()] = "30",
) -> Response:
    start, end = _parse_time(debut), _parse_time(fin)
    kinds = {kind.value: kind for kind in _kinds_for(staff)}
    if (
        not jour.isdigit()
        or not 0 <= int(jour) <= 6
        or start is None
        or end is None
        or start >= end
        or motif not in kinds
        or lieu not in {place.value for place in AppointmentPlace}
        or not duree.isdigit()
        or not 15 <= int(duree) <= 120
    ):
        return _availability_page(
            request,
            session,
            staff,
            status_code=422,
            error=_(
                "Vérifiez le jour, les heures (début avant fin), le motif "
                "et la durée (15 à 120 minutes)."
            ),
        )
    session.add(
        WeeklyAvailability(
            staff_id=staff.id,
            kind=kinds[motif],
            place=AppointmentPlace(lieu),
            address=adresse.strip()[:300] or None,
            weekday=int(jour),
            start_time=start,
            end_time=end,
            slot_minutes=int(duree),
        )
    )
    return RedirectResponse("/pro/disponibilites", status_code=303)


@router.post("/pro/disponibilites/{opening_id}/supprimer")
def remove_opening(session: SessionDep, staff: CalendarStaff, opening_id: str) -> Response:
    try:
        parsed = uuid.UUID(opening_id)
    except ValueError:
        raise HTTPException(status_code=404) from None
    session.execute(
        delete(WeeklyAvailability).where(
            WeeklyAvailability.id == parsed, WeeklyAvailability.staff_id == staff.id
        )
    )
    return RedirectResponse("/pro/disponibilites", status_code=303)


@router.post("/pro/disponibilites/absence")
def add_absence(
    request: Request,
    session: SessionDep,
    staff: CalendarStaff,
    du: Annotated[str, Form()] = "",
    au: Annotated[str, Form()] = "",
    raison: Annotated[str, Form()] = "",
) -> Response:
    try:
        first, last = date.fromisoformat(du), date.fromisoformat(au)
    except ValueError:
        first = last = None  # type: ignore[assignment]
    if first is None or last is None or last < first:
        return _availability_page(
            request,
            session,
            staff,
            status_code=422,
            error=_("Choisissez les dates de début et de fin de l’absence."),
        )
    session.add(
        AvailabilityException(
            staff_id=staff.id,
            starts_at=datetime.combine(first, time(0), tzinfo=PARIS),
            ends_at=datetime.combine(last + timedelta(days=1), time(0), tzinfo=PARIS),
            reason=raison.strip()[:200] or None,
        )
    )
    return RedirectResponse("/pro/disponibilites", status_code=303)
