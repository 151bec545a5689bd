"""The référent's side of a request: the queue of requests to decide, the request page and
the decisions (take on, ask for documents, grant, confirm, send back, refuse). Every request
id goes through the caller's scope (404 and an audit entry outside it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy import select

from paris_avenir.aid_requests import attestation, duties, instruction
from paris_avenir.aid_requests import kinds as catalogue
from paris_avenir.aid_requests import service as requests_service
from paris_avenir.aid_requests.kinds.base import Eligibility, Verdict
from paris_avenir.aid_requests.models import AidRequest, RequestStatus
from paris_avenir.aid_requests.routes import attestation_download
from paris_avenir.audit import service as audit
from paris_avenir.auth.dependencies import CurrentStaff, client_ip
from paris_avenir.backoffice import labels
from paris_avenir.db import SessionDep, utcnow
from paris_avenir.documents import service as documents
from paris_avenir.kit.dates import paris_today
from paris_avenir.kit.forms import parse_euros
from paris_avenir.staff import reasons
from paris_avenir.staff.models import StaffUser
from paris_avenir.web.i18n import gettext as _
from paris_avenir.web.routing import Route, base_url, see_other
from paris_avenir.web.templating import render
from paris_avenir.youths import labels as youth_labels
from paris_avenir.youths.models import Youth

router = APIRouter(route_class=Route, prefix="/pro")
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


@router.get("/demandes/{request_id}/attestation.pdf")
def attestation_for_staff(
    request: Request, session: SessionDep, staff: CurrentStaff, request_id: str
) -> Response:
    """The youth's attestation, for a référent who hands it over at the counter or sends it
    on the youth's behalf: the same code as the youth's copies; the download is audited."""
    aid_request = instruction.request_for_staff(
        session, staff, request_id, ip_address=client_ip(request)
    )
    youth = session.get_one(Youth, aid_request.youth_id)
    facts = attestation.attested(session, aid_request, youth)
    if facts is None:
        raise HTTPException(status_code=404)
    audit.record(
        session,
        "aid_request.attestation",
        actor_staff_id=staff.id,
        youth_id=youth.id,
        object_type="aid_request",
        object_id=aid_request.id,
        ip_address=client_ip(request),
    )
    return attestation_download(facts, base_url=base_url(request))


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
    by = instruction.Decider(staff, base_url(request), client_ip(request))
    try:
        # A refusal undoes whatever the action had begun (the savepoint), and the page
        # says why, with the refusal's own status (409 when someone decided first).
        with session.begin_nested():
            if action == "prendre":
                instruction.take_on(session, aid_request, by)
            elif action == "pieces":
                youth = session.get_one(Youth, aid_request.youth_id)
                what = reasons.for_youth(reasons.DOCUMENT_REQUESTS, motif, texte, youth.language)
                instruction.ask_for_documents(session, aid_request, by, what=what)
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
                            by,
                            amount_cents=parse_euros(montant) if montant.strip() else None,
                            message=texte,
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
                    session, aid_request, by, amount_cents=amount, message=texte
                )
                done = "accorde=1" if granted else "a_confirmer=1"
                return see_other(f"/pro/demandes/{aid_request.id}?{done}")
            elif action == "confirmer":
                instruction.confirm_grant(session, aid_request, by)
                return see_other(f"/pro/demandes/{aid_request.id}?accorde=1")
            elif action == "renvoyer":
                instruction.reject_grant(session, aid_request, by)
            elif action == "refuser":
                youth = session.get_one(Youth, aid_request.youth_id)
                reason = reasons.for_youth(reasons.REFUSAL_REASONS, motif, texte, youth.language)
                instruction.refuse(session, aid_request, by, reason=reason)
            else:
                raise HTTPException(status_code=404)
    except requests_service.RequestError as error:
        session.expire_all()  # the page shows the request as stored now (decided by another?)
        return _instruction_page(
            request, session, staff, request_id, error=str(error), status_code=error.status_code
        )
    return see_other(f"/pro/demandes/{aid_request.id}")
