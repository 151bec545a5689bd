"""Counter mode: a référent or supervisor acts for the youth sitting in front of them (with
the youth's consent, ticked), files a request, adds documents, books an appointment; every
action is audited as done on the youth's behalf."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import Response

from paris_avenir.aid_requests import kinds as catalogue
from paris_avenir.aid_requests import service as requests_service
from paris_avenir.aid_requests.kinds.base import AidKind
from paris_avenir.aid_requests.models import AidCode
from paris_avenir.appointments import service as appointments
from paris_avenir.appointments.models import AppointmentKind
from paris_avenir.appointments.slots import Slot
from paris_avenir.audit import service as audit
from paris_avenir.auth.dependencies import CurrentStaff, client_ip
from paris_avenir.auth.permissions import CounterYouth
from paris_avenir.backoffice import counter
from paris_avenir.backoffice.routes import youth_file_page
from paris_avenir.db import SessionDep
from paris_avenir.documents import service as documents
from paris_avenir.documents.models import DocumentKind
from paris_avenir.documents.validation import MAX_BYTES, RefusedFile
from paris_avenir.staff.models import StaffUser
from paris_avenir.web.forms import FormDep
from paris_avenir.web.i18n import gettext as _
from paris_avenir.web.routing import Route, base_url, parse_enum, see_other
from paris_avenir.web.templating import render
from paris_avenir.youths.models import Youth

router = APIRouter(route_class=Route, prefix="/pro")
# --- Counter mode -------------------------------------------------------------------------


@router.post("/jeunes/{youth_id}/guichet")
def counter_start(
    request: Request,
    session: SessionDep,
    staff: CurrentStaff,
    youth_id: str,
    youth: CounterYouth,
    accord: Annotated[str, Form()] = "",
) -> Response:
    if accord != "oui":
        return youth_file_page(
            request,
            session,
            staff,
            youth_id,
            status_code=422,
            counter_error=_(
                "Cochez la case : le jeune est présent et d’accord pour que vous agissiez pour lui."
            ),
        )
    counter.start(session, staff, youth, ip_address=client_ip(request))
    return see_other(f"/pro/jeunes/{youth.id}/guichet")


def _counter_page(
    request: Request,
    session: SessionDep,
    staff: StaffUser,
    youth: Youth,
    *,
    template: str = "staff/counter.html",
    status_code: int = 200,
    **context: Any,
) -> Response:
    if counter.active(session, staff, youth) is None:
        return see_other(f"/pro/jeunes/{youth.id}?guichet=ferme")
    return render(
        request,
        template,
        {
            "staff": staff,
            "youth": youth,
            "document_label": documents.kind_label,
            "kinds": [kind for kind in catalogue.all_kinds() if not kind.by_appointment],
            "document_kinds": [(kind.value, documents.kind_label(kind)) for kind in DocumentKind],
            "vault": documents.youth_documents(session, youth.id),
            **context,
        },
        status_code=status_code,
    )


def _request_form(
    kind: AidKind,
    answers: dict[str, str],
    errors: dict[str, str] | None = None,
    chosen_documents: list[str] | None = None,
) -> dict[str, Any]:
    """The request form filed for the youth: blank, or again with what was typed."""
    return {
        "template": "staff/counter_request.html",
        "kind": kind,
        "answers": answers,
        "errors": errors or {},
        "chosen_documents": chosen_documents or [],
    }


def _appointment_form(motif: str, kind: AppointmentKind, slots: list[Slot]) -> dict[str, Any]:
    """The slots offered to the youth for this kind of appointment."""
    return {
        "template": "staff/counter_appointment.html",
        "motif": motif,
        "label": appointments.kind_label(kind),
        "slots": slots,
    }


@router.get("/jeunes/{youth_id}/guichet")
def counter_home(
    request: Request, session: SessionDep, staff: CurrentStaff, youth_id: str, youth: CounterYouth
) -> Response:
    return _counter_page(request, session, staff, youth)


@router.get("/jeunes/{youth_id}/guichet/demande")
def counter_request_form(
    request: Request,
    session: SessionDep,
    staff: CurrentStaff,
    youth_id: str,
    youth: CounterYouth,
    aide: str = "",
) -> Response:
    kind = catalogue.kind(parse_enum(aide, AidCode, AidCode.ALLOCATION))
    earlier = requests_service.youth_requests(session, youth.id)
    answers = requests_service.prefill(youth, kind, earlier)
    return _counter_page(request, session, staff, youth, **_request_form(kind, answers))


@router.post("/jeunes/{youth_id}/guichet/demande")
def counter_request_send(
    request: Request,
    session: SessionDep,
    staff: CurrentStaff,
    youth_id: str,
    youth: CounterYouth,
    form: FormDep,
) -> Response:
    if counter.active(session, staff, youth) is None:
        return see_other(f"/pro/jeunes/{youth.id}?guichet=ferme")
    code = parse_enum(str(form.get("aide", "")), AidCode, None)
    if code is None or catalogue.kind(code).by_appointment:
        raise HTTPException(status_code=400)
    typed = {key: str(value) for key, value in form.items() if key not in {"csrftoken"}}
    chosen_documents = [str(value) for value in form.getlist("documents")]
    failure: str | None = None
    try:
        filed, errors = counter.file_request(
            session,
            staff,
            youth,
            code,
            typed,
            chosen_documents,
            ip_address=client_ip(request),
        )
    except requests_service.RequestError as error:
        filed, errors, failure = None, {}, str(error)
    if filed is None:
        # Nothing was written: the same form again, with what was typed and why.
        return _counter_page(
            request,
            session,
            staff,
            youth,
            **_request_form(catalogue.kind(code), typed, errors, chosen_documents),
            error=failure,
            status_code=422,
        )
    return see_other(f"/pro/jeunes/{youth.id}/guichet?envoyee={filed.id}")


@router.post("/jeunes/{youth_id}/guichet/documents")
def counter_upload(
    request: Request,
    session: SessionDep,
    staff: CurrentStaff,
    youth_id: str,
    youth: CounterYouth,
    fichier: Annotated[UploadFile | None, File()] = None,
    type_document: Annotated[str, Form()] = "",
) -> Response:
    if counter.active(session, staff, youth) is None:
        return see_other(f"/pro/jeunes/{youth.id}?guichet=ferme")
    kind = parse_enum(type_document, DocumentKind, None)
    if kind is None or fichier is None or not fichier.filename:
        return _counter_page(
            request,
            session,
            staff,
            youth,
            status_code=422,
            error=_("Choisissez le type de document et le fichier."),
        )
    content = fichier.file.read(MAX_BYTES + 1)
    try:
        counter.upload_document(
            session,
            request.app.state.document_store,
            staff,
            youth,
            kind=kind,
            filename=fichier.filename,
            content=content,
            size=fichier.size,
            ip_address=client_ip(request),
        )
    except RefusedFile as refusal:
        return _counter_page(request, session, staff, youth, status_code=422, error=str(refusal))
    return see_other(f"/pro/jeunes/{youth.id}/guichet?document=ajoute")


@router.post("/jeunes/{youth_id}/guichet/fin")
def counter_end(
    request: Request, session: SessionDep, staff: CurrentStaff, youth_id: str, youth: CounterYouth
) -> Response:
    current = counter.active(session, staff, youth)
    if current is not None:
        counter.end(current)
    return see_other(f"/pro/jeunes/{youth.id}")


@router.get("/jeunes/{youth_id}/guichet/rendez-vous")
def counter_slots(
    request: Request,
    session: SessionDep,
    staff: CurrentStaff,
    youth_id: str,
    youth: CounterYouth,
    motif: str = "referent",
) -> Response:
    kind = COUNTER_APPOINTMENTS.get(motif)
    if kind is None:
        raise HTTPException(status_code=404)
    slots = appointments.slots_for(session, youth, kind)
    return _counter_page(request, session, staff, youth, **_appointment_form(motif, kind, slots))


@router.post("/jeunes/{youth_id}/guichet/rendez-vous")
def counter_book(
    request: Request,
    session: SessionDep,
    staff: CurrentStaff,
    youth_id: str,
    youth: CounterYouth,
    motif: Annotated[str, Form()] = "",
    creneau: Annotated[str, Form()] = "",
) -> Response:
    kind = COUNTER_APPOINTMENTS.get(motif)
    if kind is None:
        raise HTTPException(status_code=400)
    if counter.active(session, staff, youth) is None:
        return see_other(f"/pro/jeunes/{youth.id}?guichet=ferme")
    try:
        appointment = appointments.book(
            session, youth, kind, creneau, base_url=base_url(request), booked_by_staff_id=staff.id
        )
    except appointments.SlotTaken as taken:
        return _counter_page(
            request,
            session,
            staff,
            youth,
            **_appointment_form(motif, kind, taken.alternatives),
            error=str(taken),
            status_code=409,
        )
    audit.record(
        session,
        "counter.appointment",
        actor_staff_id=staff.id,
        youth_id=youth.id,
        object_type="appointment",
        object_id=appointment.id,
        on_behalf_of_youth=True,
        ip_address=client_ip(request),
    )
    return see_other(f"/pro/jeunes/{youth.id}/guichet?rendez_vous=1")


COUNTER_APPOINTMENTS = {"referent": AppointmentKind.REFERENT, "guichet": AppointmentKind.COUNTER}
