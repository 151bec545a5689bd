"""A youth asks for their file to be deleted: the référent gets a task, the youth is told."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from paris_avenir.audit import service as audit
from paris_avenir.db import utcnow
from paris_avenir.staff import tasks
from paris_avenir.staff.models import TaskKind
from paris_avenir.youths.models import Youth

# --- Deletion request ---------------------------------------------------------------------


def request_deletion(session: Session, youth: Youth, *, now: datetime | None = None) -> None:
    """Not immediate: the référent checks what must be kept (aid paid, legal duties) and
    handles it; the youth is told what happens."""
    now = now or utcnow()
    if youth.deletion_requested_at is not None:
        return
    youth.deletion_requested_at = now
    tasks.open_task(
        session,
        youth_id=youth.id,
        kind=TaskKind.DELETION_REQUEST,
        key=f"deletion:{youth.id}:{now.isoformat()}",
        now=now,
    )
    audit.record(
        session, "youth.deletion_requested", actor_youth_id=youth.id, youth_id=youth.id, now=now
    )
