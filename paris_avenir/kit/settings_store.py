"""Settings an admin changes at run time (outreach policy, message texts), stored as JSON
rows with who changed them; the code's defaults apply until then. A few facts the platform
itself writes for its other processes live here too, with nobody as their author (the last
outreach cycle's figures: outreach/last_cycle.py)."""

from __future__ import annotations

import uuid
from dataclasses import fields
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import JSON, ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from paris_avenir.db import Base, RecordMixin, UTCDateTime, utcnow


class PlatformSetting(RecordMixin, Base):
    __tablename__ = "platform_setting"

    key: Mapped[str] = mapped_column(String(100), unique=True)
    value: Mapped[Any] = mapped_column(JSON)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    changed_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_user.id"))


def load(session: Session, key: str) -> Any | None:
    row = session.scalar(select(PlatformSetting).where(PlatformSetting.key == key))
    return None if row is None else row.value


Numbers = TypeVar("Numbers")


def load_numbers(session: Session, key: str, shape: type[Numbers]) -> Numbers:
    """A dataclass of whole numbers from the stored record: the fields it names, read as
    ints; its defaults for the others. Several dataclasses may share one record (the
    outreach and appointments policies are one admin page)."""
    stored = load(session, key) or {}
    known = {field.name for field in fields(shape)}  # type: ignore[arg-type]
    return shape(**{name: int(value) for name, value in stored.items() if name in known})


def save(
    session: Session, key: str, value: Any, *, by_id: uuid.UUID | None, now: datetime | None = None
) -> None:
    now = now or utcnow()
    row = session.scalar(select(PlatformSetting).where(PlatformSetting.key == key))
    if row is None:
        session.add(PlatformSetting(key=key, value=value, changed_at=now, changed_by_id=by_id))
    else:
        row.value = value
        row.changed_at = now
        row.changed_by_id = by_id
    session.flush()
