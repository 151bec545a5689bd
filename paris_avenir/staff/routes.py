"""The back office. Every route that takes a youth or request id goes through auth.scope
(404 + audit outside the caller's scope); every view of a youth's data is audited."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import or_, select

from paris_avenir.aid_requests import duties, instruction
from paris_avenir.aid_requests import kinds as catalogue
from paris_avenir.aid_requests import service as requests_service
from paris_avenir.aid_requests.kinds.base import Eligibility, Verdict
from paris_avenir.aid_requests.models import AidCode, AidRequest, RequestStatus
from paris_avenir.appointments import labels as appointment_labels
from paris_avenir.appointments import service as appointments
from paris_avenir.appointments.models import Appointment, AppointmentKind
from paris_avenir.audit import service as audit
from paris_avenir.auth.dependencies import CurrentStaff, client_ip
from paris_avenir.auth.scope import youth_for_staff
from paris_avenir.config import Settings
from paris_avenir.db import SessionDep, utcnow
from paris_avenir.documents import service as documents
from paris_avenir.documents.models import DocumentKind
from paris_avenir.documents.validation import MAX_BYTES, RefusedFile
from paris_avenir.kit.dates import PARIS, paris_today
from paris_avenir.kit.forms import parse_euros
from paris_avenir.messaging import service as messaging
from paris_avenir.outreach import labels as outreach_labels
from paris_avenir.outreach.models import OutreachAttempt
from paris_avenir.staff import (
    assignments,
    caseload,
    counter,
    journal,
    labels,
    reasons,
    task_queue,
)
from paris_avenir.staff import service as staff_service
from paris_avenir.staff.models import Permission, StaffUser
from paris_avenir.staff.permissions import CounterStaff, CounterYouth, TeamYouth
from paris_avenir.web.forms import FormDep
from paris_avenir.web.i18n import gettext as _
from paris_avenir.web.templating import render
from paris_avenir.youths import labels as youth_labels
from paris_avenir.youths import service as youths_service
from paris_avenir.youths.models import Youth

router = APIRouter(prefix="/pro")
DASHBOARD_TASKS = 5


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def _base_url(request: Request) -> str:
    settings: Settings = request.app.state.settings
    return settings.base_url


def _enum(value: str, enum_class: Any, default: Any) -> Any:
    try:
        return enum_class(value)
    except ValueError:
        return default


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
        return _redirect(staff.home_path)
    chosen = _enum(filtre, caseload.Filter, caseload.Filter.ALL)
    sort = _enum(tri, caseload.Sort, caseload.Sort.QUIETEST)
    result = caseload.caseload(session, staff, chosen=chosen, sort=sort, search=q[:100], page=page)
    # The top of "À faire": urgent and overdue first.
    lines = task_queue.queue_for(session, staff) if staff.works_tasks else []
    return render(
        request,
        "staff/home.html",
        {
            "staff": staff,
            "team_loads": staff_service.team_load(session, staff)
            if staff.may(Permission.TEAM)
            else [],
            "queue_rows": instruction.queue(session, staff)[:DASHBOARD_TASKS]
            if staff.may(Permission.TEAM)
            else [],
            "task_lines": lines[:DASHBOARD_TASKS],
            "task_total": len(lines),
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


def _youth_file(
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
    appointments = list(
        session.scalars(
            select(Appointment)
            .where(
                Appointment.youth_id == youth.id,
                # Psychological support is health data: hidden unless the youth shares it.
                or_(
                    Appointment.kind != AppointmentKind.PSYCHOLOGIST,
                    Appointment.shared_with_referent,
                ),
            )
            .order_by(Appointment.starts_at.desc())
            .limit(20)
        )
    )
    return render(
        request,
        "staff/youth_file.html",
        {
            "staff": staff,
            "youth": youth,
            "referent": current,
            "requests": requests_service.youth_requests(session, youth.id),
            "documents": documents.youth_documents(session, youth.id),
            "messages": messaging.thread_messages(session, thread.id)[-30:],
            "appointments": appointments,
            "attempts": list(
                session.scalars(
                    select(OutreachAttempt)
                    .where(OutreachAttempt.youth_id == youth.id)
                    .order_by(OutreachAttempt.attempted_at.desc())
                    .limit(20)
                )
            ),
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
    return _youth_file(request, session, staff, youth_id)


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
        return _youth_file(request, session, staff, youth_id, error=str(error), status_code=422)
    return _redirect(f"/pro/jeunes/{youth.id}#journal")


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
        staff_service.reassign(
            session,
            youth.id,
            to_referent_id=uuid.UUID(referent),
            by=staff,
            reason=raison,
            base_url=_base_url(request),
        )
    except (ValueError, staff_service.AssignmentError) as error:
        message = (
            str(error)
            if isinstance(error, staff_service.AssignmentError)
            else _("Choisissez un référent actif de votre équipe.")
        )
        return _youth_file(request, session, staff, youth_id, error=message, status_code=422)
    return _redirect(f"/pro/jeunes/{youth.id}?reaffecte=1")


@router.post("/jeunes/{youth_id}/numero-bon")
def phone_is_right(
    request: Request, session: SessionDep, staff: CurrentStaff, youth_id: str
) -> Response:
    """ "Mauvais numéro" was a mistake: the number works again, for messages and sign-in."""
    youth = youth_for_staff(session, staff, youth_id, ip_address=client_ip(request), action=None)
    youths_service.confirm_phone(session, youth, by_staff_id=staff.id)
    return _redirect(f"/pro/jeunes/{youth.id}")


# --- Instruction --------------------------------------------------------------------------


@router.get("/demandes")
def request_queue(request: Request, session: SessionDep, staff: CurrentStaff) -> Response:
    return render(
        request,
        "staff/queue.html",
        {
            "staff": staff,
            "rows": instruction.queue(session, staff),
            "kind_name": lambda code: catalogue.kind(code).name,
            "status_label": duties.staff_status_label,
            "overdue_days": instruction.OVERDUE_DAYS,
        },
    )


def _eligibility(session: SessionDep, aid_request: AidRequest, youth: Youth) -> Eligibility:
    kind = catalogue.kind(aid_request.aid_code)
    parameters = requests_service.aid_parameters(session).get(kind.code, {})
    return kind.eligibility(youth, parameters, paris_today())


def _instruction_page(
    request: Request,
    session: SessionDep,
    staff: StaffUser,
    request_id: str,
    *,
    error: str | None = None,
    status_code: int = 200,
    confirm_grant: dict[str, str] | None = None,
) -> Response:
    aid_request = instruction.request_for_staff(
        session, staff, request_id, ip_address=client_ip(request)
    )
    audit.record(
        session,
        "aid_request.view",
        actor_staff_id=staff.id,
        youth_id=aid_request.youth_id,
        object_type="aid_request",
        object_id=aid_request.id,
        ip_address=client_ip(request),
    )
    youth = session.get_one(Youth, aid_request.youth_id)
    kind = catalogue.kind(aid_request.aid_code)
    parameters = requests_service.aid_parameters(session).get(kind.code, {})
    default_amount = parameters.get("monthly_amount_cents")
    eligibility = _eligibility(session, aid_request, youth)
    cap = duties.amount_cap(session, kind.code)
    # Who did what, by name, in the history and on a grant to confirm.
    actor_ids = {event.actor_staff_id for event in aid_request.events if event.actor_staff_id}
    actor_ids |= {
        staff_id
        for staff_id in (aid_request.proposed_by_staff_id, aid_request.filed_by_staff_id)
        if staff_id is not None
    }
    names = dict(
        session.execute(
            select(StaffUser.id, StaffUser.full_name).where(StaffUser.id.in_(actor_ids))
        ).all()
    )
    decidable = aid_request.status in {RequestStatus.SUBMITTED, RequestStatus.UNDER_REVIEW}
    return render(
        request,
        "staff/instruction.html",
        {
            "staff": staff,
            "aid_request": aid_request,
            "youth": youth,
            "kind": kind,
            "eligibility": eligibility,
            "failed_conditions": [
                condition
                for condition in eligibility.conditions
                if condition.verdict is Verdict.NOT_MET
            ],
            "confirm_grant": confirm_grant,
            "refusal_reasons": reasons.choices(reasons.REFUSAL_REASONS),
            "document_requests": reasons.choices(reasons.DOCUMENT_REQUESTS),
            "youth_language": youth_labels.language_name(youth.language),
            "youth_reads_french": youth.language == "fr",
            "answers": [
                (
                    field.label,
                    labels.answer_label(field, (aid_request.form_data or {}).get(field.name)),
                )
                for field in kind.questions
            ],
            "status_label": duties.staff_status_label,
            "document_label": documents.kind_label,
            "default_amount": f"{int(default_amount) / 100:.2f}".replace(".", ",")
            if default_amount
            else "",
            "days_waiting": (utcnow() - (aid_request.submitted_at or aid_request.created_at)).days,
            "overdue_days": instruction.OVERDUE_DAYS,
            "error": error,
            "can_take_on": aid_request.status is RequestStatus.SUBMITTED,
            "can_decide": decidable,
            "can_ask": decidable,
            "gives_money": kind.code in duties.AMOUNT_CAPS,
            "cap": cap,
            "threshold": duties.confirmation_threshold(session),
            "to_confirm": aid_request.status is RequestStatus.TO_CONFIRM,
            "can_confirm": duties.may_confirm(aid_request, staff),
            "names": names,
            "granted_now": request.query_params.get("accorde") == "1",
            "sent_to_confirm": request.query_params.get("a_confirmer") == "1",
        },
        status_code=status_code,
    )


@router.get("/demandes/{request_id}")
def instruction_page(
    request: Request, session: SessionDep, staff: CurrentStaff, request_id: str
) -> Response:
    return _instruction_page(request, session, staff, request_id)


@router.post("/demandes/{request_id}/{action}")
def instruct(
    request: Request,
    session: SessionDep,
    staff: CurrentStaff,
    request_id: str,
    action: str,
    texte: Annotated[str, Form()] = "",
    montant: Annotated[str, Form()] = "",
    malgre_regle: Annotated[str, Form()] = "",
    motif: Annotated[str, Form()] = "",
) -> Response:
    aid_request = instruction.request_for_staff(
        session, staff, request_id, ip_address=client_ip(request)
    )
    common: dict[str, Any] = {"base_url": _base_url(request), "ip_address": client_ip(request)}
    try:
        # A refusal undoes whatever the action had begun (the savepoint), and the page
        # says why, with the refusal's own status (409 when someone decided first).
        with session.begin_nested():
            if action == "prendre":
                instruction.take_on(session, aid_request, staff, **common)
            elif action == "pieces":
                youth = session.get_one(Youth, aid_request.youth_id)
                what = reasons.for_youth(reasons.DOCUMENT_REQUESTS, motif, texte, youth.language)
                instruction.ask_for_documents(session, aid_request, staff, what=what, **common)
            elif action == "accorder":
                youth = session.get_one(Youth, aid_request.youth_id)
                rule_fails = _eligibility(session, aid_request, youth).verdict is Verdict.NOT_MET
                if rule_fails and malgre_regle != "oui":
                    # No one-click grant when a rule says no: the page lists what is not met
                    # and asks to confirm (a plain form: it works without JavaScript). The
                    # grant's own refusals (an amount too high) come first: it is tried, then
                    # undone.
                    savepoint = session.begin_nested()
                    try:
                        instruction.grant(
                            session,
                            aid_request,
                            staff,
                            amount_cents=parse_euros(montant) if montant.strip() else None,
                            message=texte,
                            **common,
                        )
                    finally:
                        savepoint.rollback()
                    return _instruction_page(
                        request,
                        session,
                        staff,
                        request_id,
                        status_code=409,
                        confirm_grant={"montant": montant, "texte": texte},
                    )
                amount = parse_euros(montant) if montant.strip() else None
                if montant.strip() and amount is None:
                    raise requests_service.RequestError(
                        _("Écrivez un montant en euros, par exemple 651,69.")
                    )
                granted = instruction.grant(
                    session, aid_request, staff, amount_cents=amount, message=texte, **common
                )
                done = "accorde=1" if granted else "a_confirmer=1"
                return _redirect(f"/pro/demandes/{aid_request.id}?{done}")
            elif action == "confirmer":
                instruction.confirm_grant(session, aid_request, staff, **common)
                return _redirect(f"/pro/demandes/{aid_request.id}?accorde=1")
            elif action == "renvoyer":
                instruction.reject_grant(session, aid_request, staff, ip_address=client_ip(request))
            elif action == "refuser":
                youth = session.get_one(Youth, aid_request.youth_id)
                reason = reasons.for_youth(reasons.REFUSAL_REASONS, motif, texte, youth.language)
                instruction.refuse(session, aid_request, staff, reason=reason, **common)
            else:
                raise HTTPException(status_code=404)
    except requests_service.RequestError as error:
        session.expire_all()  # the page shows the request as stored now (decided by another?)
        return _instruction_page(
            request, session, staff, request_id, error=str(error), status_code=error.status_code
        )
    return _redirect(f"/pro/demandes/{aid_request.id}")


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
        return _youth_file(
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
    return _redirect(f"/pro/jeunes/{youth.id}/guichet")


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
        return _redirect(f"/pro/jeunes/{youth.id}?guichet=ferme")
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
    kind = catalogue.kind(_enum(aide, AidCode, AidCode.ALLOCATION))
    earlier = requests_service.youth_requests(session, youth.id)
    return _counter_page(
        request,
        session,
        staff,
        youth,
        template="staff/counter_request.html",
        kind=kind,
        answers=requests_service.prefill(youth, kind, earlier),
        errors={},
        chosen_documents=[],
    )


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
        return _redirect(f"/pro/jeunes/{youth.id}?guichet=ferme")
    code = _enum(str(form.get("aide", "")), AidCode, None)
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
            template="staff/counter_request.html",
            kind=catalogue.kind(code),
            answers=typed,
            errors=errors,
            error=failure,
            chosen_documents=chosen_documents,
            status_code=422,
        )
    return _redirect(f"/pro/jeunes/{youth.id}/guichet?envoyee={filed.id}")


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
        return _redirect(f"/pro/jeunes/{youth.id}?guichet=ferme")
    kind = _enum(type_document, DocumentKind, None)
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
    return _redirect(f"/pro/jeunes/{youth.id}/guichet?document=ajoute")


@router.post("/jeunes/{youth_id}/guichet/fin")
def counter_end(
    request: Request, session: SessionDep, staff: CurrentStaff, youth_id: str, youth: CounterYouth
) -> Response:
    current = counter.active(session, staff, youth)
    if current is not None:
        counter.end(current)
    return _redirect(f"/pro/jeunes/{youth.id}")


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
    return _counter_page(
        request,
        session,
        staff,
        youth,
        template="staff/counter_appointment.html",
        motif=motif,
        label=appointments.kind_label(kind),
        slots=appointments.slots_for(session, youth, kind),
    )


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
        return _redirect(f"/pro/jeunes/{youth.id}?guichet=ferme")
    try:
        appointment = appointments.book(
            session, youth, kind, creneau, base_url=_base_url(request), booked_by_staff_id=staff.id
        )
    except appointments.SlotTaken as taken:
        return _counter_page(
            request,
            session,
            staff,
            youth,
            template="staff/counter_appointment.html",
            motif=motif,
            label=appointments.kind_label(kind),
            slots=taken.alternatives,
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
    return _redirect(f"/pro/jeunes/{youth.id}/guichet?rendez_vous=1")


COUNTER_APPOINTMENTS = {"referent": AppointmentKind.REFERENT, "guichet": AppointmentKind.COUNTER}


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
        try:
            until = date.fromisoformat(jusqu_au.strip())
        except ValueError:
            return _youth_file(
                request,
                session,
                staff,
                youth_id,
                status_code=422,
                error=_("Choisissez la date de fin de la pause."),
            )
        today = paris_today()
        if not today < until <= today + timedelta(days=366):
            return _youth_file(
                request,
                session,
                staff,
                youth_id,
                status_code=422,
                error=_("La pause finit après aujourd’hui et dans un an au plus."),
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
    return _redirect(f"/pro/jeunes/{youth.id}")
