"""The youth books, moves and cancels appointments from their phone."""

from __future__ import annotations

from itertools import groupby
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from paris_avenir.appointments import answer_links, answers, ics, service
from paris_avenir.appointments.models import (
    AnswerKind,
    Appointment,
    AppointmentKind,
    AppointmentStatus,
)
from paris_avenir.appointments.policy import load as load_policy
from paris_avenir.appointments.slots import Slot
from paris_avenir.auth.dependencies import CurrentYouth
from paris_avenir.db import SessionDep, utcnow
from paris_avenir.kit.dates import paris_day
from paris_avenir.web.i18n import get_locale, gettext, using_locale
from paris_avenir.web.language import chosen_language
from paris_avenir.web.routing import Route, base_url, settings_of
from paris_avenir.web.templating import render
from paris_avenir.youths.models import Youth

router = APIRouter(route_class=Route, prefix="/mon-espace/rendez-vous")
BOOKABLE = (AppointmentKind.REFERENT, AppointmentKind.COUNTER, AppointmentKind.PSYCHOLOGIST)
MOTIFS = {
    "referent": AppointmentKind.REFERENT,
    "guichet": AppointmentKind.COUNTER,
    "psychologue": AppointmentKind.PSYCHOLOGIST,
    "entretien": AppointmentKind.FOLLOW_UP_INTERVIEW,
}


def _own(session: SessionDep, youth: Youth, appointment_id: str) -> Appointment:
    appointment = service.appointment_of_youth(session, youth.id, appointment_id)
    if appointment is None:
        raise HTTPException(status_code=404)
    return appointment


def _by_day(slots: list[Slot]) -> list[tuple[Any, list[Slot]]]:
    return [
        (day, list(items))
        for day, items in groupby(slots, key=lambda slot: paris_day(slot.starts_at))
    ]


@router.get("")
def my_appointments(request: Request, session: SessionDep, youth: CurrentYouth) -> Response:
    now = utcnow()
    appointments = service.youth_appointments(session, youth.id)
    return render(
        request,
        "appointments/list.html",
        {
            "upcoming": sorted(
                (
                    a
                    for a in appointments
                    if a.starts_at >= now and a.status is AppointmentStatus.BOOKED
                ),
                key=lambda a: a.starts_at,
            ),
            "past": [
                a
                for a in appointments
                if a.starts_at < now or a.status is not AppointmentStatus.BOOKED
            ][:20],
            "kinds": [
                (code, service.kind_label(kind))
                for code, kind in MOTIFS.items()
                if kind in BOOKABLE
            ],
            "kind_label": service.kind_label,
            "moved": service.moved_ids(appointments),
        },
    )


def _slots_page(
    request: Request,
    session: SessionDep,
    youth: Youth,
    kind: AppointmentKind,
    *,
    moving: Appointment | None = None,
    error: str | None = None,
    slots: list[Slot] | None = None,
    page: int = 0,
    status_code: int = 200,
) -> Response:
    # At the limit of upcoming appointments of this kind, the youth sees why and the ones
    # they hold (to move or cancel one), not slots they could not book.
    refused = None if moving else service.limit_reached(session, youth, kind)
    if refused is not None:
        error, slots = str(refused), []
    # 14 whole days a page, "Plus tard" for the next ones (plain links: no JavaScript).
    shown = service.slot_page(session, youth, kind, page=page)
    motif = next(code for code, value in MOTIFS.items() if value is kind)
    base = (
        f"/mon-espace/rendez-vous/{moving.id}/deplacer?"
        if moving
        else f"/mon-espace/rendez-vous/nouveau?motif={motif}&"
    )
    return render(
        request,
        "appointments/slots.html",
        {
            "kind": kind,
            "motif": motif,
            "label": service.kind_label(kind),
            "days": _by_day(slots if slots is not None else shown.slots),
            "page": shown,
            "later_url": f"{base}page={shown.number + 2}" if shown.has_later else None,
            "earlier_url": f"{base}page={shown.number}" if shown.has_earlier else None,
            "rules": service.change_rules(load_policy(session)),
            "moving": moving,
            "error": error,
            "held": refused.existing if refused is not None else [],
            "kind_label": service.kind_label,
        },
        status_code=status_code,
    )


def _page_number(value: str) -> int:
    """The page asked for in the address ("page=2" is the second), 0-based; anything else
    is the first page."""
    return int(value) - 1 if value.isdigit() and 0 < int(value) <= service.PAGES else 0


@router.get("/nouveau")
def choose_slot(
    request: Request,
    session: SessionDep,
    youth: CurrentYouth,
    motif: str = "referent",
    page: str = "1",
) -> Response:
    kind = MOTIFS.get(motif)
    if kind is None:
        raise HTTPException(status_code=404)
    return _slots_page(request, session, youth, kind, page=_page_number(page))


@router.post("")
def book(
    request: Request,
    session: SessionDep,
    youth: CurrentYouth,
    motif: Annotated[str, Form()] = "",
    creneau: Annotated[str, Form()] = "",
    partage: Annotated[str, Form()] = "",
) -> Response:
    kind = MOTIFS.get(motif)
    if kind is None:
        raise HTTPException(status_code=400)
    if not creneau:
        return _slots_page(
            request,
            session,
            youth,
            kind,
            error=gettext("Choisissez un créneau."),
            status_code=422,
        )
    try:
        appointment = service.book(
            session,
            youth,
            kind,
            creneau,
            base_url=base_url(request),
            shared_with_referent=partage == "oui",
            secret_key=settings_of(request).secret_key,
        )
    except service.SlotTaken as taken:
        return _slots_page(
            request,
            session,
            youth,
            kind,
            error=str(taken),
            slots=taken.alternatives,
            status_code=409,
        )
    except service.BookingLimitReached:
        return _slots_page(request, session, youth, kind, status_code=409)
    return RedirectResponse(f"/mon-espace/rendez-vous/{appointment.id}?confirme=1", status_code=303)


@router.get("/{appointment_id}")
def appointment_detail(
    request: Request, session: SessionDep, youth: CurrentYouth, appointment_id: str
) -> Response:
    appointment = _own(session, youth, appointment_id)
    now = utcnow()
    policy = load_policy(session)
    moved = appointment.id in service.moved_ids(service.youth_appointments(session, youth.id))
    return render(
        request,
        "appointments/detail.html",
        {
            "appointment": appointment,
            "label": service.kind_label(appointment.kind),
            "confirmed": request.query_params.get("confirme") == "1",
            "can_cancel": appointment.status is AppointmentStatus.BOOKED
            and appointment.starts_at - now >= service.cancel_cutoff(policy),
            "can_move": appointment.status is AppointmentStatus.BOOKED
            and appointment.starts_at - now >= service.move_cutoff(policy),
            "upcoming": appointment.status is AppointmentStatus.BOOKED
            and appointment.starts_at > now,
            "move_until": service.move_deadline(policy, appointment),
            "cancel_until": service.cancel_deadline(policy, appointment),
            "moved": moved,
        },
    )


@router.get("/{appointment_id}/agenda.ics")
def appointment_ics(
    request: Request, session: SessionDep, youth: CurrentYouth, appointment_id: str
) -> Response:
    appointment = _own(session, youth, appointment_id)
    link = f"{base_url(request).rstrip('/')}/mon-espace/rendez-vous/{appointment.id}"
    body = ics.calendar_of(
        [appointment],
        summary=service.kind_label(appointment.kind),
        description=gettext("Pour déplacer ou annuler ce rendez-vous : %(link)s", link=link),
        url=link,
    )
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="rendez-vous.ics"'},
    )


@router.post("/{appointment_id}/annuler")
def cancel(
    request: Request, session: SessionDep, youth: CurrentYouth, appointment_id: str
) -> Response:
    appointment = _own(session, youth, appointment_id)
    try:
        service.cancel(session, appointment, youth, base_url=base_url(request))
    except service.AppointmentError as error:
        return render(
            request,
            "appointments/detail.html",
            {
                "appointment": appointment,
                "label": service.kind_label(appointment.kind),
                "confirmed": False,
                "can_cancel": False,
                "can_move": False,
                "upcoming": True,
                "move_until": None,
                "cancel_until": None,
                "moved": False,
                "error": str(error),
            },
            status_code=409,
        )
    return RedirectResponse("/mon-espace/rendez-vous?annule=1", status_code=303)


@router.get("/{appointment_id}/deplacer")
def move_form(
    request: Request,
    session: SessionDep,
    youth: CurrentYouth,
    appointment_id: str,
    page: str = "1",
) -> Response:
    appointment = _own(session, youth, appointment_id)
    return _slots_page(
        request, session, youth, appointment.kind, moving=appointment, page=_page_number(page)
    )


@router.post("/{appointment_id}/deplacer")
def move(
    request: Request,
    session: SessionDep,
    youth: CurrentYouth,
    appointment_id: str,
    creneau: Annotated[str, Form()] = "",
) -> Response:
    appointment = _own(session, youth, appointment_id)
    try:
        new = service.move(
            session,
            appointment,
            youth,
            creneau,
            base_url=base_url(request),
            secret_key=settings_of(request).secret_key,
        )
    except service.AppointmentError as error:
        # A slot taken meanwhile comes with the next free ones; another refusal, without.
        alternatives = error.alternatives if isinstance(error, service.SlotTaken) else None
        return _slots_page(
            request,
            session,
            youth,
            appointment.kind,
            moving=appointment,
            error=str(error),
            slots=alternatives,
            status_code=409,
        )
    return RedirectResponse(f"/mon-espace/rendez-vous/{new.id}?confirme=1", status_code=303)


# --- One-tap answers from the SMS or the email, without signing in ------------------------

answer_router = APIRouter(route_class=Route)
ANSWER_PAGE = "appointments/answer.html"


def _answered_appointment(request: Request, session: SessionDep, token: str) -> Appointment | None:
    return answer_links.appointment_for(session, token, secret_key=settings_of(request).secret_key)


def _answer_language(request: Request, session: SessionDep, appointment: Appointment | None) -> str:
    """Opened from an SMS, often in a browser with no language chosen yet: the page then
    speaks the youth's language, like the SMS did (as the check-in does)."""
    if chosen_language(request) is not None or appointment is None:
        return get_locale()
    youth = session.get(Youth, appointment.youth_id)
    return youth.language if youth is not None else get_locale()


def _answer_page(
    request: Request,
    session: SessionDep,
    token: str,
    appointment: Appointment | None,
    *,
    error: str | None = None,
    slots: list[Slot] | None = None,
    status_code: int = 200,
) -> Response:
    with using_locale(_answer_language(request, session, appointment)):
        if appointment is None:
            return render(request, ANSWER_PAGE, {"state": "invalid"}, status_code=410)
        now = utcnow()
        youth = session.get_one(Youth, appointment.youth_id)
        freed = answers.answer_of(session, appointment.id, AnswerKind.CANNOT_COME)
        context: dict[str, Any] = {
            "token": token,
            "appointment": appointment,
            "label": service.kind_label(appointment.kind),
            "error": error,
            "just_freed": request.query_params.get("annule") == "1",
        }
        if appointment.status is AppointmentStatus.BOOKED:
            coming = answers.answer_of(session, appointment.id, AnswerKind.COMING)
            context |= {"state": "open", "coming": coming is not None}
        elif freed is not None:
            rebooked = (
                session.get(Appointment, freed.rebooked_appointment_id)
                if freed.rebooked_appointment_id
                else None
            )
            refused = None if rebooked else service.limit_reached(session, youth, appointment.kind)
            shown = slots
            if shown is None:
                shown = (
                    [] if rebooked or refused else answers.next_slots(session, appointment, now=now)
                )
            context |= {
                "state": "freed",
                "rebooked": rebooked,
                "call_back": freed.call_back_at is not None,
                "refused": str(refused) if refused else None,
                "slots": shown,
                "rules": service.change_rules(load_policy(session)),
            }
        else:
            context["state"] = "gone"
        return render(request, ANSWER_PAGE, context, status_code=status_code)


@answer_router.get(answer_links.PATH + "{token}")
def answer_page(request: Request, session: SessionDep, token: str) -> Response:
    return _answer_page(request, session, token, _answered_appointment(request, session, token))


@answer_router.post(answer_links.PATH + "{token}")
def answer(
    request: Request, session: SessionDep, token: str, reponse: Annotated[str, Form()] = ""
) -> Response:
    appointment = _answered_appointment(request, session, token)
    if appointment is None:
        return _answer_page(request, session, token, None)
    here = answer_links.PATH + token
    if reponse == "viendrai":
        answers.will_come(session, appointment)
        return RedirectResponse(here, status_code=303)
    if reponse == "impossible":
        freed = answers.cannot_come(session, appointment, base_url=base_url(request))
        return RedirectResponse(here + ("?annule=1" if freed else ""), status_code=303)
    with using_locale(_answer_language(request, session, appointment)):
        error = gettext("Choisissez une réponse.")
    return _answer_page(request, session, token, appointment, error=error, status_code=422)


@answer_router.post(answer_links.PATH + "{token}/creneau")
def answer_book(
    request: Request, session: SessionDep, token: str, creneau: Annotated[str, Form()] = ""
) -> Response:
    appointment = _answered_appointment(request, session, token)
    if appointment is None:
        return _answer_page(request, session, token, None)
    with using_locale(_answer_language(request, session, appointment)):
        try:
            answers.book_instead(
                session,
                appointment,
                creneau,
                base_url=base_url(request),
                secret_key=settings_of(request).secret_key,
            )
        except service.SlotTaken as taken:
            return _answer_page(
                request,
                session,
                token,
                appointment,
                error=str(taken),
                slots=[slot for slot in taken.alternatives if slot.key != creneau],
                status_code=409,
            )
        except service.AppointmentError as refused:
            return _answer_page(
                request, session, token, appointment, error=str(refused), status_code=409
            )
    return RedirectResponse(answer_links.PATH + token, status_code=303)


@answer_router.post(answer_links.PATH + "{token}/rappel")
def answer_call_back(request: Request, session: SessionDep, token: str) -> Response:
    appointment = _answered_appointment(request, session, token)
    if appointment is None:
        return _answer_page(request, session, token, None)
    answers.ask_call_back(session, appointment)
    return RedirectResponse(answer_links.PATH + token, status_code=303)
