"""The follow-up journal: notes by the team about a youth, encrypted at rest, audited."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from cryptography.fernet import MultiFernet
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from paris_avenir.audit import service as audit
from paris_avenir.db import utcnow
from paris_avenir.kit.errors import DomainError
from paris_avenir.staff.models import StaffUser
from paris_avenir.web.i18n import gettext
from paris_avenir.youths.models import FollowUpNote


class NoteError(DomainError):
    """The message is for the staff member."""


def add_note(
    session: Session,
    cipher: MultiFernet,
    *,
    youth_id: uuid.UUID,
    author: StaffUser,
    text: str,
    on_behalf_of_youth: bool = False,
    now: datetime | None = None,
) -> FollowUpNote:
    text = text.strip()
    if not text:
        raise NoteError(gettext("Écrivez la note avant de l’enregistrer."))
    now = now or utcnow()
    note = FollowUpNote(
        youth_id=youth_id,
        author_staff_id=author.id,
        written_at=now,
        body_encrypted=cipher.encrypt(text[:10000].encode()).decode(),
        on_behalf_of_youth=on_behalf_of_youth,
    )
    session.add(note)
    session.flush()
    audit.record(
        session,
        "youth.note",
        actor_staff_id=author.id,
        youth_id=youth_id,
        object_type="follow_up_note",
        object_id=note.id,
        now=now,
    )
    return note


@dataclass(frozen=True)
class JournalEntry:
    written_at: datetime
    author: str
    text: str


# Built once: every youth file runs it (see auth.sessions).
_JOURNAL = (
    select(FollowUpNote, StaffUser.full_name)
    .join(StaffUser, StaffUser.id == FollowUpNote.author_staff_id)
    .where(FollowUpNote.youth_id == bindparam("youth_id"))
    .order_by(FollowUpNote.written_at.desc())
)


def journal(session: Session, cipher: MultiFernet, youth_id: uuid.UUID) -> list[JournalEntry]:
    rows = session.execute(_JOURNAL, {"youth_id": youth_id}).all()
    return [
        JournalEntry(note.written_at, name, cipher.decrypt(note.body_encrypted.encode()).decode())
        for note, name in rows
    ]
