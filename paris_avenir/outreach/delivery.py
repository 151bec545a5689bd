"""The delivery fallback's periodic pass (scheduler.py, every few minutes): what did not
reach a youth is followed up on the other channel (messaging/fallback.py), after the
admin's delay for an SMS without a receipt; what failed twice gives the référent a task
"Numéro à vérifier" (staff/tasks.py), in the same transaction.

A pass of its own rather than a step of the outbox's dispatcher: the dispatcher runs every
few seconds and only sends; this pass reads receipts that come hours later, and a slow
query here never holds a sign-in code back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from paris_avenir.db import utcnow
from paris_avenir.messaging import fallback
from paris_avenir.outreach import policy as outreach_policy
from paris_avenir.staff import tasks


@dataclass
class FallbackReport:
    queued: int = 0
    tasks: list[str] = field(default_factory=list)  # the tasks' ids


def run(
    session: Session, *, base_url: str, receipts: bool, now: datetime | None = None
) -> FallbackReport:
    """One pass; the caller commits. `receipts`: delivery receipts arrive (the SMS webhook
    is set up), so an SMS without one after the delay counts as not delivered."""
    now = now or utcnow()
    policy = outreach_policy.load(session)
    found = fallback.run_pass(
        session,
        base_url=base_url,
        delay=policy.fallback_delay,
        receipts=receipts,
        now=now,
        quiet=policy.quiet_hours,
    )
    report = FallbackReport(queued=len(found.queued))
    for failure in found.second_failures:
        task = tasks.open_number_check(session, failure, now=now)
        if task is not None:
            report.tasks.append(str(task.id))
    return report
