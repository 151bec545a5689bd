"""Counter mode ("mode guichet"): a staff member acts for a youth who is present, after
recording their consent. Every action is marked as done for the youth, in the request's
history and in the audit log, and the youth sees it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests import kinds as catalogue
from paris_avenir.aid_requests import service as requests_service
from paris_avenir.aid_requests.models import AidCode, AidRequest
from paris_avenir.audit import service as audit
from paris_avenir.db import utcnow
from paris_avenir.documents import service as documents
from paris_avenir.documents.models import Document, DocumentKind
from paris_avenir.documents.storage import DocumentStore
from paris_avenir.staff.models import CounterSession, StaffUser
from paris_avenir.youths.models import Youth

DURATION = timedelta(hours=2)


def start(
    session: Session,
    staff: StaffUser,
    youth: Youth,
    *,
    ip_address: str | None = None,
    now: datetime | None = None,
) -> CounterSession:
    now = now or utcnow()
    counter = CounterSession(
        staff_id=staff.id, youth_id=youth.id, consent_recorded_at=now, expires_at=now + DURATION
    )
    session.add(counter)
    session.flush()
    audit.record(
        session,
        "counter.start",
        actor_staff_id=staff.id,
        youth_id=youth.id,
        object_type="counter_session",
        object_id=counter.id,
        on_behalf_of_youth=True,
        ip_address=ip_address,
        now=now,
    )
    return counter


def active(
    session: Session, staff: StaffUser, youth: Youth, *, now: datetime | None = None
) -> CounterSession | None:
    now = now or utcnow()
    return session.scalar(
        select(CounterSession)
        .where(
            CounterSession.staff_id == staff.id,
            CounterSession.youth_id == youth.id,
            CounterSession.ended_at.is_(None),
            CounterSession.expires_at > now,
        )
        .order_by(CounterSession.consent_recorded_at.desc())
        .limit(1)
    )


def end(counter: CounterSession, *, now: datetime | None = None) -> None:
    counter.ended_at = now or utcnow()


def file_request(
    session: Session,
    staff: StaffUser,
    youth: Youth,
    code: AidCode,
    answers: Mapping[str, str],
    document_ids: list[str],
    *,
    ip_address: str | None = None,
    now: datetime | None = None,
) -> tuple[AidRequest | None, dict[str, str]]:
    """Fills and sends a request for the youth in one go; returns it with the answers'
    errors. All or nothing: a filing that fails (an answer missing, a document missing, the
    aid closed) leaves no draft behind, and a draft the youth had started is left as it was
    (the form is shown again with what was typed)."""
    now = now or utcnow()
    kind = catalogue.kind(code)
    savepoint = session.begin_nested()
    try:
        request = requests_service.start_request(session, youth, code, staff_id=staff.id, now=now)
        errors = requests_service.save_answers(request, kind, answers)
        requests_service.set_documents(session, request, youth.id, document_ids)
        if errors:
            savepoint.rollback()
            return None, errors
        requests_service.submit(session, request, youth, staff_id=staff.id, now=now)
    except BaseException:
        savepoint.rollback()
        raise
    savepoint.commit()
    audit.record(
        session,
        "counter.request",
        actor_staff_id=staff.id,
        youth_id=youth.id,
        object_type="aid_request",
        object_id=request.id,
        on_behalf_of_youth=True,
        ip_address=ip_address,
        now=now,
    )
    return request, {}


def upload_document(
    session: Session,
    store: DocumentStore,
    staff: StaffUser,
    youth: Youth,
    *,
    kind: DocumentKind,
    filename: str,
    content: bytes,
    size: int | None = None,
    ip_address: str | None = None,
    now: datetime | None = None,
) -> Document:
    document = documents.add_document(
        session,
        store,
        youth_id=youth.id,
        kind=kind,
        filename=filename,
        content=content,
        size=size,
        uploaded_by_staff_id=staff.id,
    )
    audit.record(
        session,
        "counter.document",
        actor_staff_id=staff.id,
        youth_id=youth.id,
        object_type="document",
        object_id=document.id,
        on_behalf_of_youth=True,
        ip_address=ip_address,
        now=now,
    )
    return document
