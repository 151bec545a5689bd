"""The last outreach cycle's duration and contacts, for /metrics.

The cycle runs in the scheduler's process (`serve` with one worker, or a process of its
own), the metrics are read by any web worker: the figures are kept in the database, in one
row of the settings store (kit/settings_store.py, key LAST_CYCLE_KEY), overwritten by each
cycle that ran (a cycle another scheduler held the lock for is not one)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from paris_avenir.kit import settings_store

LAST_CYCLE_KEY = "outreach.last_cycle"


@dataclass(frozen=True)
class LastCycle:
    finished_at: datetime
    duration_seconds: float
    contacts: int
    tasks: int


def record(session: Session, cycle: LastCycle) -> None:
    value = {
        "finished_at": cycle.finished_at.isoformat(),
        "duration_seconds": cycle.duration_seconds,
        "contacts": cycle.contacts,
        "tasks": cycle.tasks,
    }
    settings_store.save(session, LAST_CYCLE_KEY, value, by_id=None, now=cycle.finished_at)


def load(session: Session) -> LastCycle | None:
    stored = settings_store.load(session, LAST_CYCLE_KEY)
    if not stored:
        return None
    return LastCycle(
        finished_at=datetime.fromisoformat(stored["finished_at"]),
        duration_seconds=float(stored["duration_seconds"]),
        contacts=int(stored["contacts"]),
        tasks=int(stored["tasks"]),
    )
