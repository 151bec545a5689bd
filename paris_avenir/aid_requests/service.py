"""A youth's requests: drafts saved at every step, prefilled so nothing is asked twice,
and a life cycle where every transition is recorded (who, when, why)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import bindparam, exists, select
from sqlalchemy.orm import Session, defer, selectinload

from paris_avenir.aid_requests import kinds as catalogue
from paris_avenir.aid_requests.kinds.base import AidKind, AmountPeriod, FieldKind, FormField
from paris_avenir.aid_requests.models import (
    Aid,
    AidCode,
    AidRequest,
    AidRequestEvent,
    RequestStatus,
    aid_request_document,
)
from paris_avenir.db import utcnow
from paris_avenir.documents import dates
from paris_avenir.documents.models import Document
from paris_avenir.kit.dates import paris_day
from paris_avenir.kit.errors import DomainError
from paris_avenir.kit.forms import format_euros, format_euros_input, parse_euros
from paris_avenir.messaging.models import MessageThread
from paris_avenir.staff import tasks
from paris_avenir.staff.models import TaskKind
from paris_avenir.staff.tasks import TaskDetail
from paris_avenir.web.i18n import N_, SOURCE_LOCALE, gettext, using_locale
from paris_avenir.youths.activity import Activity, record_activity
from paris_avenir.youths.models import EmploymentSituation, HousingSituation, Youth

# Where a request may go from each status. Staff decide; the youth drafts, sends,
# answers a request for documents and may withdraw until a decision.
TRANSITIONS: dict[RequestStatus, set[RequestStatus]] = {
    RequestStatus.DRAFT: {RequestStatus.SUBMITTED, RequestStatus.WITHDRAWN},
    RequestStatus.SUBMITTED: {
        RequestStatus.UNDER_REVIEW,
        RequestStatus.MISSING_DOCUMENTS,
        RequestStatus.GRANTED,
        RequestStatus.TO_CONFIRM,
        RequestStatus.REFUSED,
        RequestStatus.WITHDRAWN,
    },
    RequestStatus.UNDER_REVIEW: {
        RequestStatus.MISSING_DOCUMENTS,
        RequestStatus.GRANTED,
        RequestStatus.TO_CONFIRM,
        RequestStatus.REFUSED,
        RequestStatus.WITHDRAWN,
    },
    # A second person confirms the grant, or sends it back to the référent's review.
    RequestStatus.TO_CONFIRM: {
        RequestStatus.GRANTED,
        RequestStatus.UNDER_REVIEW,
        RequestStatus.WITHDRAWN,
    },
    RequestStatus.MISSING_DOCUMENTS: {
        RequestStatus.UNDER_REVIEW,
        RequestStatus.REFUSED,
        RequestStatus.WITHDRAWN,
    },
    RequestStatus.GRANTED: {RequestStatus.PAID, RequestStatus.RENEWAL_DUE},
    RequestStatus.PAID: {RequestStatus.RENEWAL_DUE},
    RequestStatus.RENEWAL_DUE: set(),
    RequestStatus.REFUSED: set(),
    RequestStatus.WITHDRAWN: set(),
}
WITHDRAWABLE = {
    RequestStatus.DRAFT,
    RequestStatus.SUBMITTED,
    RequestStatus.UNDER_REVIEW,
    RequestStatus.MISSING_DOCUMENTS,
    RequestStatus.TO_CONFIRM,
}
OPEN_STATUSES = WITHDRAWABLE
RENEWAL_NOTICE = timedelta(days=30)

STATUS_LABELS: dict[RequestStatus, str] = {
    RequestStatus.DRAFT: N_("Pas encore envoyée"),
    RequestStatus.SUBMITTED: N_("Déposée"),
    RequestStatus.UNDER_REVIEW: N_("En cours d’examen"),
    RequestStatus.MISSING_DOCUMENTS: N_("Il manque un document"),
    RequestStatus.GRANTED: N_("Accordée"),
    RequestStatus.REFUSED: N_("Refusée"),
    RequestStatus.PAID: N_("Versée"),
    RequestStatus.RENEWAL_DUE: N_("À renouveler"),
    RequestStatus.WITHDRAWN: N_("Retirée"),
    # The youth reads the same as under review: nothing is decided until it is confirmed.
    RequestStatus.TO_CONFIRM: N_("En cours d’examen"),
}
NEXT_STEPS: dict[RequestStatus, str] = {
    RequestStatus.DRAFT: N_("Finissez la demande, puis envoyez-la."),
    RequestStatus.SUBMITTED: N_("Votre référent va la lire. Vous n’avez rien à faire."),
    RequestStatus.UNDER_REVIEW: N_(
        "Votre référent étudie votre demande. Vous n’avez rien à faire."
    ),
    RequestStatus.MISSING_DOCUMENTS: N_(
        "Ajoutez le document demandé, puis prévenez votre référent."
    ),
    RequestStatus.GRANTED: N_("C’est oui. Votre référent vous dit quand l’aide arrive."),
    RequestStatus.REFUSED: N_("C’est non. Vous pouvez en parler avec votre référent."),
    RequestStatus.PAID: N_("L’argent a été versé sur votre compte."),
    RequestStatus.RENEWAL_DUE: N_("Faites une nouvelle demande pour continuer à recevoir l’aide."),
    RequestStatus.WITHDRAWN: N_("Vous avez retiré cette demande."),
    RequestStatus.TO_CONFIRM: N_("Votre référent étudie votre demande. Vous n’avez rien à faire."),
}


class RequestError(DomainError):
    """Refused action; the message is for the youth."""


class RequestConflict(RequestError):
    """The request is no longer in a state that allows it (decided meanwhile, another tab)."""

    status_code: ClassVar[int] = 409


def check_transition(request: AidRequest, to: RequestStatus) -> None:
    """Refuses, before anything is changed, a move the request's status does not allow."""
    if to not in TRANSITIONS[request.status]:
        raise RequestConflict(gettext("Cette demande ne peut plus changer de cette façon."))


def status_label(status: RequestStatus) -> str:
    return gettext(STATUS_LABELS[status])


def next_step(status: RequestStatus) -> str:
    return gettext(NEXT_STEPS[status])


def aid_parameters(session: Session) -> dict[AidCode, dict[str, Any]]:
    return {aid.code: dict(aid.parameters or {}) for aid in session.scalars(select(Aid))}


def open_aid_codes(session: Session) -> set[AidCode]:
    return set(session.scalars(select(Aid.code).where(Aid.is_open.is_(True))))


# --- Reading -----------------------------------------------------------------------------


# Built once, with a bound value (see auth.sessions): the youth's dashboard and the youth
# file run it on every view. The answers and the decision's reason (encrypted) load when
# read: neither list shows them, and decrypting is most of a row's cost.
_REQUESTS_OF_YOUTH = (
    select(AidRequest)
    .where(AidRequest.youth_id == bindparam("youth_id"))
    .options(defer(AidRequest.form_data), defer(AidRequest.decision_reason))
    .order_by(AidRequest.created_at.desc())
)


def youth_requests(session: Session, youth_id: uuid.UUID) -> list[AidRequest]:
    return list(session.scalars(_REQUESTS_OF_YOUTH, {"youth_id": youth_id}))


def request_of_youth(session: Session, youth_id: uuid.UUID, request_id: str) -> AidRequest | None:
    """The request with its history and documents, if it is this youth's; else None."""
    try:
        parsed = uuid.UUID(request_id)
    except ValueError:
        return None
    return session.scalar(_REQUEST_OF_YOUTH, {"request_id": parsed, "youth_id": youth_id})


# Built once: the request page runs it on every view (see auth.sessions).
_REQUEST_OF_YOUTH = (
    select(AidRequest)
    .where(AidRequest.id == bindparam("request_id"), AidRequest.youth_id == bindparam("youth_id"))
    .options(selectinload(AidRequest.events), selectinload(AidRequest.documents))
)


def renewals_due(requests: list[AidRequest], today: date) -> list[AidRequest]:
    """Granted aids whose renewal date is within 30 days (or past), not yet renewed."""
    due = []
    for request in requests:
        if request.status is RequestStatus.RENEWAL_DUE or (
            request.renewal_due_on is not None
            and request.status in {RequestStatus.GRANTED, RequestStatus.PAID}
            and request.renewal_due_on.date() - today <= RENEWAL_NOTICE
        ):
            due.append(request)
    renewed = {
        (request.aid_code, request.created_at)
        for request in requests
        if request.status not in {RequestStatus.WITHDRAWN, RequestStatus.REFUSED}
    }
    return [
        request
        for request in due
        if not any(
            code == request.aid_code and created > request.created_at for code, created in renewed
        )
    ]


# --- Drafting ----------------------------------------------------------------------------


def _profile_value(youth: Youth, field: FormField) -> str | None:
    if field.profile_attribute is None:
        return None
    value = getattr(youth, field.profile_attribute)
    if value is None:
        return None
    if field.kind is FieldKind.MONEY:
        return format_euros_input(int(value))
    if field.kind is FieldKind.YES_NO:
        return "oui" if value else "non"
    if isinstance(value, EmploymentSituation | HousingSituation):
        return None if value.value == "inconnu" else value.value
    return str(value)


def prefill(youth: Youth, kind: AidKind, earlier: list[AidRequest]) -> dict[str, str]:
    """From the profile first, then from the youth's latest request that asked the same."""
    answers: dict[str, str] = {}
    for field in kind.questions:
        value = _profile_value(youth, field)
        if value is None:
            for request in earlier:  # newest first
                if field.name in (request.form_data or {}):
                    value = str(request.form_data[field.name])
                    break
        if value is not None:
            answers[field.name] = value
    return answers


def record_transition(
    session: Session,
    request: AidRequest,
    to: RequestStatus,
    *,
    actor_staff_id: uuid.UUID | None = None,
    actor_is_youth: bool = False,
    on_behalf_of_youth: bool = False,
    reason: str | None = None,
    now: datetime | None = None,
) -> AidRequestEvent:
    now = now or utcnow()
    check_transition(request, to)
    event = AidRequestEvent(
        aid_request_id=request.id,
        from_status=request.status,
        to_status=to,
        occurred_at=now,
        actor_staff_id=actor_staff_id,
        actor_is_youth=actor_is_youth,
        on_behalf_of_youth=on_behalf_of_youth,
        reason=reason,
    )
    session.add(event)
    request.status = to
    session.flush()
    return event


def open_draft(
    session: Session,
    youth: Youth,
    code: AidCode,
    *,
    form_data: dict[str, Any],
    current_step: int = 1,
    staff_id: uuid.UUID | None = None,
    now: datetime,
) -> AidRequest:
    """A new draft and the event that opens its life cycle, by the youth or by a staff
    member on their behalf; every later step goes through record_transition."""
    request = AidRequest(
        youth_id=youth.id,
        aid_code=code,
        status=RequestStatus.DRAFT,
        form_data=form_data,
        current_step=current_step,
        filed_by_staff_id=staff_id,
    )
    session.add(request)
    session.flush()
    session.add(
        AidRequestEvent(
            aid_request_id=request.id,
            from_status=None,
            to_status=RequestStatus.DRAFT,
            occurred_at=now,
            actor_staff_id=staff_id,
            actor_is_youth=staff_id is None,
            on_behalf_of_youth=staff_id is not None,
        )
    )
    return request


def start_request(
    session: Session,
    youth: Youth,
    code: AidCode,
    *,
    staff_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> AidRequest:
    """A draft for this aid; the unfinished one if there is one already."""
    now = now or utcnow()
    kind = catalogue.kind(code)
    if kind.by_appointment:
        raise RequestError(
            gettext("Pour cette aide, il n’y a rien à remplir : prenez rendez-vous.")
        )
    if code not in open_aid_codes(session):
        raise RequestError(gettext("Cette aide n’est pas ouverte en ce moment."))
    earlier = youth_requests(session, youth.id)
    for request in earlier:
        if request.aid_code is code and request.status is RequestStatus.DRAFT:
            return request
    request = open_draft(
        session, youth, code, form_data=prefill(youth, kind, earlier), staff_id=staff_id, now=now
    )
    record_activity(session, youth, Activity.REQUEST, now)
    session.flush()
    return request


def _clean(field: FormField, raw: str) -> tuple[str | None, str | None]:
    """(canonical value, error) for one answer."""
    value = raw.strip()
    if not value:
        return None, (gettext("Répondez à cette question.") if field.required else None)
    if field.kind is FieldKind.MONEY:
        cents = parse_euros(value)
        if cents is None:
            return None, gettext("Écrivez un montant en euros, par exemple 350 ou 350,50.")
        return format_euros_input(cents), None
    if field.kind is FieldKind.DATE:
        day = dates.parse(value)
        if day is None:
            return None, gettext("Écrivez une date qui existe : le jour, le mois, puis l’année.")
        return day.isoformat(), None
    if field.kind in {FieldKind.CHOICE, FieldKind.YES_NO}:
        allowed = {choice for choice, _label in field.choices}
        return (value, None) if value in allowed else (None, gettext("Choisissez une réponse."))
    limit = 2000 if field.kind is FieldKind.LONG_TEXT else 200
    if len(value) > limit:
        return None, gettext("Ce texte est trop long (%(limit)s caractères au plus).", limit=limit)
    return value, None


def _require_draft(request: AidRequest) -> None:
    if request.status is not RequestStatus.DRAFT:
        raise RequestError(
            gettext("Cette demande est déjà envoyée : elle ne peut plus être modifiée.")
        )


def save_answers(request: AidRequest, kind: AidKind, raw: Mapping[str, str]) -> dict[str, str]:
    """Keeps every valid answer (the draft is saved even when others are missing) and
    returns the errors by field name."""
    _require_draft(request)
    errors: dict[str, str] = {}
    answers = dict(request.form_data or {})
    for field in kind.questions:
        # A date comes in three boxes (day, month, year): dates.typed joins them.
        typed = dates.typed(raw, field.name) if field.kind is FieldKind.DATE else None
        given = typed if typed is not None else raw.get(field.name, "")
        value, error = _clean(field, given)
        if error:
            errors[field.name] = error
            answers[field.name] = given.strip()[:2000]
        elif value is None:
            answers.pop(field.name, None)
        else:
            answers[field.name] = value
    request.form_data = answers  # a new dict: JSON columns only see reassignment
    return errors


def set_documents(
    session: Session, request: AidRequest, youth_id: uuid.UUID, document_ids: list[str]
) -> None:
    """Attach documents of the vault (the youth's own only) to the request."""
    wanted = set()
    for raw in document_ids:
        try:
            wanted.add(uuid.UUID(raw))
        except ValueError:
            continue
    owned = set(
        session.scalars(
            select(Document.id).where(Document.id.in_(wanted), Document.youth_id == youth_id)
        )
    )
    session.execute(
        aid_request_document.delete().where(aid_request_document.c.aid_request_id == request.id)
    )
    if owned:
        session.execute(
            aid_request_document.insert(),
            [{"aid_request_id": request.id, "document_id": document_id} for document_id in owned],
        )
    session.expire(request, ["documents"])
    session.flush()


def attached_document_ids(session: Session, request: AidRequest) -> set[uuid.UUID]:
    return set(
        session.scalars(
            select(aid_request_document.c.document_id).where(
                aid_request_document.c.aid_request_id == request.id
            )
        )
    )


@dataclass(frozen=True)
class Missing:
    questions: list[str]  # field names
    documents: list[str]  # document kinds (values)


def missing_for_submission(session: Session, request: AidRequest, kind: AidKind) -> Missing:
    answers = request.form_data or {}
    questions = [
        field.name
        for field in kind.questions
        if field.required and _clean(field, str(answers.get(field.name, "")))[1] is not None
    ]
    attached = set(
        session.scalars(
            select(Document.kind)
            .join(aid_request_document, aid_request_document.c.document_id == Document.id)
            .where(aid_request_document.c.aid_request_id == request.id)
        )
    )
    documents = [
        document.kind.value
        for document in kind.documents
        if document.required and document.kind not in attached
    ]
    return Missing(questions, documents)


def _apply_to_profile(youth: Youth, kind: AidKind, answers: Mapping[str, Any]) -> None:
    """The youth's answers update their profile, so the next form asks nothing twice."""
    for field in kind.questions:
        if field.profile_attribute is None or field.name not in answers:
            continue
        raw = str(answers[field.name])
        if field.kind is FieldKind.MONEY:
            cents = parse_euros(raw)
            if cents is not None:
                setattr(youth, field.profile_attribute, cents)
        elif field.kind is FieldKind.YES_NO:
            setattr(youth, field.profile_attribute, raw == "oui")
        elif field.profile_attribute == "employment_situation":
            youth.employment_situation = EmploymentSituation(raw)
        elif field.profile_attribute == "housing_situation":
            youth.housing_situation = HousingSituation(raw)


def submit(
    session: Session,
    request: AidRequest,
    youth: Youth,
    *,
    staff_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> None:
    now = now or utcnow()
    _require_draft(request)
    kind = catalogue.kind(request.aid_code)
    missing = missing_for_submission(session, request, kind)
    if missing.questions or missing.documents:
        raise RequestError(gettext("Il manque des réponses ou des documents."))
    record_transition(
        session,
        request,
        RequestStatus.SUBMITTED,
        actor_staff_id=staff_id,
        actor_is_youth=staff_id is None,
        on_behalf_of_youth=staff_id is not None,
        now=now,
    )
    request.submitted_at = now
    _apply_to_profile(youth, kind, request.form_data or {})
    record_activity(session, youth, Activity.REQUEST, now)


def withdraw(
    session: Session,
    request: AidRequest,
    youth: Youth,
    *,
    reason: str | None,
    now: datetime | None = None,
) -> None:
    if request.status not in WITHDRAWABLE:
        raise RequestConflict(
            gettext("Une décision a été prise : cette demande ne peut plus être retirée.")
        )
    now = now or utcnow()
    record_transition(
        session,
        request,
        RequestStatus.WITHDRAWN,
        actor_is_youth=True,
        reason=(reason or "").strip()[:500] or None,
        now=now,
    )
    tasks.close_done(
        session,
        kinds=[TaskKind.DOCUMENTS_RECEIVED, TaskKind.REQUEST_WAITING],
        aid_request_id=request.id,
        by_id=None,
        now=now,
    )
    record_activity(session, youth, Activity.REQUEST, now)


def documents_supplied(
    session: Session, request: AidRequest, youth: Youth, *, now: datetime | None = None
) -> None:
    """The youth added what was missing: back to the référent, with a task to check it."""
    from paris_avenir.documents.service import kind_label

    if request.status is not RequestStatus.MISSING_DOCUMENTS:
        raise RequestConflict(gettext("Aucun document n’est demandé pour cette demande."))
    now = now or utcnow()
    event = record_transition(
        session,
        request,
        RequestStatus.UNDER_REVIEW,
        actor_is_youth=True,
        now=now,
    )
    attached = session.scalars(
        select(Document.kind)
        .join(aid_request_document, aid_request_document.c.document_id == Document.id)
        .where(aid_request_document.c.aid_request_id == request.id)
        .order_by(Document.created_at)
    ).all()
    with using_locale(SOURCE_LOCALE):  # the back office reads French
        detail: TaskDetail = {
            "aid": catalogue.kind(request.aid_code).name,
            "request": request.reference,
            "documents": [kind_label(kind) for kind in attached],
        }
    tasks.open_task(
        session,
        youth_id=youth.id,
        kind=TaskKind.DOCUMENTS_RECEIVED,
        key=f"documents-received:{event.id}",
        now=now,
        aid_request_id=request.id,
        detail=detail,
    )
    record_activity(session, youth, Activity.REQUEST, now)


# --- What a decision means for the youth ---------------------------------------------------

GRANTED_STATUSES = {RequestStatus.GRANTED, RequestStatus.PAID}
RECENT_DECISION = timedelta(days=30)


@dataclass(frozen=True)
class Granted:
    """A grant in the youth's words: what, how much and how often, from when to when, and
    what happens next and when. Read on the request's page and on "Mon espace"."""

    aid_name: str
    amount: str | None  # "651,69 € par mois"
    starts_on: date | None
    ends_on: date | None
    renew_from: date | None  # when a new request can be made to go on
    next_steps: list[str]


def granted_summary(request: AidRequest) -> Granted | None:
    if request.status not in GRANTED_STATUSES:
        return None
    kind = catalogue.kind(request.aid_code)
    starts_on = paris_day(request.decided_at) if request.decided_at else None
    ends_on = paris_day(request.renewal_due_on) if request.renewal_due_on else None
    amount = None
    steps = []
    if request.granted_amount_cents:
        euros = format_euros(request.granted_amount_cents)
        if kind.amount_period is AmountPeriod.MONTH:
            amount = gettext("%(amount)s par mois", amount=euros)
            steps.append(gettext("L’argent est versé chaque mois sur le compte de votre RIB."))
        elif kind.amount_period is AmountPeriod.ONCE:
            amount = gettext("%(amount)s, en une fois", amount=euros)
            steps.append(gettext("L’argent est versé une fois sur le compte de votre RIB."))
        else:
            amount = euros
    steps.append(
        gettext("Votre référent vous dit la date du premier versement et répond à vos questions.")
        if request.granted_amount_cents
        else gettext("Votre référent vous dit la suite et répond à vos questions.")
    )
    renew_from = ends_on - RENEWAL_NOTICE if ends_on else None
    return Granted(kind.name, amount, starts_on, ends_on, renew_from, steps)


@dataclass(frozen=True)
class Decision:
    request: AidRequest
    aid_name: str
    granted: Granted | None  # None: refused


def recent_decisions(requests: list[AidRequest], today: date) -> list[Decision]:
    """What "Mon espace" tells: the aids granted and still running (or decided within 30
    days), and the refusals of the last 30 days."""
    shown = []
    for request in requests:
        decided = paris_day(request.decided_at) if request.decided_at else None
        recent = decided is not None and today - decided <= RECENT_DECISION
        if request.status in GRANTED_STATUSES:
            summary = granted_summary(request)
            assert summary is not None
            running = summary.ends_on is not None and summary.ends_on >= today
            if running or recent:
                shown.append(Decision(request, summary.aid_name, summary))
        elif request.status is RequestStatus.REFUSED and recent:
            shown.append(Decision(request, catalogue.kind(request.aid_code).name, None))
    return shown


# --- What a request shares with other domains -----------------------------------------------


def request_thread(session: Session, request: AidRequest) -> MessageThread:
    """The conversation about this request (created on first use), titled with its aid."""
    thread = session.scalar(select(MessageThread).where(MessageThread.aid_request_id == request.id))
    if thread is None:
        thread = MessageThread(
            youth_id=request.youth_id,
            aid_request_id=request.id,
            subject=f"{catalogue.kind(request.aid_code).name} ({request.reference})",
        )
        session.add(thread)
        session.flush()
    return thread


def document_in_use(session: Session, document_id: uuid.UUID) -> bool:
    """Attached to a request that left the draft stage: the référent relies on it."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    aid_request_document.c.document_id == document_id,
                    aid_request_document.c.aid_request_id == AidRequest.id,
                    AidRequest.status != RequestStatus.DRAFT,
                )
            )
        )
    )


def detach_document(session: Session, document_id: uuid.UUID) -> None:
    """Before the youth deletes a document: out of the drafts it was attached to."""
    session.execute(
        aid_request_document.delete().where(aid_request_document.c.document_id == document_id)
    )
