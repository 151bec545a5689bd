"""Plain factory functions: build a valid object, apply overrides, flush."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from paris_avenir.aid_requests.models import AidCode, AidRequest, RequestStatus
from paris_avenir.appointments.models import (
    Appointment,
    AppointmentKind,
    AppointmentPlace,
)
from paris_avenir.auth import codes
from paris_avenir.messaging.models import OutboxMessage, OutboxStatus
from paris_avenir.outreach.models import OutreachAttempt, OutreachReason
from paris_avenir.staff.models import CaseloadAssignment, StaffRole, StaffUser
from paris_avenir.youths.models import Channel, Youth

_sequence = itertools.count(1)


def create_youth(session: Session, **overrides: Any) -> Youth:
    number = next(_sequence)
    values: dict[str, Any] = {
        "ase_ref": f"TEST-{number:05d}",
        "first_name": "Camille",
        "last_name": f"Essai{number}",
        "birth_date": date(2005, 3, 14),
        "phone": f"+3363998{number % 10000:04d}",
        "email": f"camille.essai{number}@example.org",
        "ase_exit_date": date(2023, 3, 14),
    }
    values.update(overrides)
    youth = Youth(**values)
    session.add(youth)
    session.flush()
    return youth


def create_staff(
    session: Session, role: StaffRole = StaffRole.REFERENT, **overrides: Any
) -> StaffUser:
    number = next(_sequence)
    values: dict[str, Any] = {
        "email": f"agent{number}@example.org",
        "full_name": f"Agent Essai {number}",
        "role": role,
    }
    values.update(overrides)
    staff = StaffUser(**values)
    session.add(staff)
    session.flush()
    return staff


def assign(
    session: Session, youth: Youth, referent: StaffUser, **overrides: Any
) -> CaseloadAssignment:
    values: dict[str, Any] = {
        "youth_id": youth.id,
        "referent_id": referent.id,
        "started_at": datetime.now(UTC) - timedelta(days=30),
    }
    values.update(overrides)
    assignment = CaseloadAssignment(**values)
    session.add(assignment)
    session.flush()
    return assignment


def create_appointment(
    session: Session, youth: Youth, staff: StaffUser, starts_at: datetime, **overrides: Any
) -> Appointment:
    values: dict[str, Any] = {
        "youth_id": youth.id,
        "staff_id": staff.id,
        "kind": AppointmentKind.REFERENT,
        "place": AppointmentPlace.OFFICE,
        "starts_at": starts_at,
        "ends_at": starts_at + timedelta(minutes=30),
    }
    values.update(overrides)
    appointment = Appointment(**values)
    session.add(appointment)
    session.flush()
    return appointment


def create_check_in(session: Session, youth: Youth, *, at: datetime) -> OutreachAttempt:
    """A "Comment ça va ?" the watch sent to this youth, as a cycle writes it."""
    return create_outreach_attempt(
        session, youth, at=at, period_key=f"essai:{at.isoformat()}", channel=Channel.SMS
    )


def create_outreach_attempt(
    session: Session,
    youth: Youth,
    *,
    at: datetime,
    reason: OutreachReason = OutreachReason.CHECK_IN,
    step: int = 1,
    channel: Channel | None = Channel.SMS,
    period_key: str | None = None,
    **overrides: Any,
) -> OutreachAttempt:
    """One contact of the watch (unique per youth, reason, step and period)."""
    attempt = OutreachAttempt(
        youth_id=youth.id,
        reason=reason,
        step=step,
        period_key=period_key if period_key is not None else f"essai:{next(_sequence)}",
        channel=channel,
        attempted_at=at,
        **overrides,
    )
    session.add(attempt)
    session.flush()
    return attempt


def create_aid_request(
    session: Session,
    youth: Youth,
    aid_code: AidCode = AidCode.NAVIGO,
    status: RequestStatus = RequestStatus.SUBMITTED,
    **overrides: Any,
) -> AidRequest:
    """A request of this youth's, stored as it is (no event, no message)."""
    values: dict[str, Any] = {"youth_id": youth.id, "aid_code": aid_code, "status": status}
    values.update(overrides)
    request = AidRequest(**values)
    session.add(request)
    session.flush()
    return request


TEST_E164 = "+33639981234"


def create_outbox_message(
    session: Session,
    youth: Youth | None = None,
    *,
    key: str | None = None,
    channel: Channel = Channel.SMS,
    recipient: str | None = None,
    template: str = "test",
    body_text: str | None = None,
    now: datetime | None = None,
    status: OutboxStatus | None = None,
    provider_message_id: str | None = None,
    **enqueue_options: Any,
) -> OutboxMessage:
    """A message queued the only way messages are queued (messaging.outbox.enqueue), then,
    when `status` or `provider_message_id` is given, moved on as a sender would have."""
    from paris_avenir.messaging import outbox

    if recipient is None:
        contact = (youth.phone if channel is Channel.SMS else youth.email) if youth else None
        recipient = contact or (TEST_E164 if channel is Channel.SMS else "essai@example.org")
    if channel is Channel.EMAIL:
        enqueue_options.setdefault("subject", "Bonjour")
        enqueue_options.setdefault("body_html", "<p>Bonjour.</p>")
    message = outbox.enqueue(
        session,
        channel=channel,
        recipient=recipient,
        template=template,
        body_text=body_text
        if body_text is not None
        else ("Paris avenir : bonjour." if channel is Channel.SMS else "Bonjour."),
        idempotency_key=key if key is not None else f"essai:{next(_sequence)}",
        youth_id=youth.id if youth else None,
        now=now,
        **enqueue_options,
    )
    if status is not None:
        message.status = status
    if provider_message_id is not None:
        message.provider_message_id = provider_message_id
    session.flush()
    return message


@dataclass(frozen=True)
class QueuedCode(codes.CodeRequest):
    outbox_message: OutboxMessage | None = None  # None for an unknown destination


def request_code(session: Session, *, now: datetime | None = None, **request: Any) -> QueuedCode:
    """What the sign-in page does in its two steps (codes.start_code_request, then the code
    queued after the response), in one transaction."""
    started = codes.start_code_request(session, now=now, **request)
    message = codes.queue_pending_code(session, started.pending, now=now)
    return QueuedCode(started.attempt_token, started.masked_destination, started.pending, message)


def create_task(
    session: Session, youth: Youth, kind: Any, *, now: datetime, **overrides: Any
) -> Any:
    """A task opened the only way tasks open (staff.tasks.open_task), with a unique key."""
    from paris_avenir.staff import tasks

    values: dict[str, Any] = {"key": f"essai:{next(_sequence)}", "base_url": "http://testserver"}
    values.update(overrides)
    task = tasks.open_task(session, youth_id=youth.id, kind=kind, now=now, **values)
    assert task is not None, "a task with this key exists already"
    return task


# A Fernet key for tests only (it protects nothing real).
TEST_FERNET_KEY = "Bjg8yNO5Z59IeO4ftabBM1Rxue1PbH4VB8O9Ilr4mLQ="


def jpeg_bytes(size: tuple[int, int] = (40, 30), *, gps: bool = False) -> bytes:
    """A real JPEG photo, optionally carrying a GPS position in its EXIF, as phones do."""
    import io

    from PIL import Image

    image = Image.new("RGB", size, (180, 40, 40))
    exif = Image.Exif()
    if gps:
        exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


# A whole one-page PDF (with its cross-reference table): the vault opens every PDF with qpdf.
PDF_BYTES = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>> endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>> endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]/Resources<<>>>> endobj\n"
    b"xref\n0 4\n0000000000 65535 f \n0000000009 00000 n \n0000000053 00000 n \n"
    b"0000000103 00000 n \ntrailer<</Size 4/Root 1 0 R>>\nstartxref\n181\n%%EOF\n"
)


def create_document(session: Session, store: Any, youth: Youth, kind: Any, **overrides: Any) -> Any:
    from paris_avenir.documents import service as documents

    values: dict[str, Any] = {"filename": "piece.pdf", "content": PDF_BYTES}
    values.update(overrides)
    return documents.add_document(session, store, youth_id=youth.id, kind=kind, **values)
