"""What the watch achieves, per référent: youths contacted and how many of them answered
within a week, per reason, step and channel. For the supervisor's team page (names, not
statistics: the supervisor already sees these youths). Only contacts whose week is over
count, so that today's messages do not read as unanswered."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from paris_avenir.outreach import labels
from paris_avenir.outreach.models import OutreachAttempt, OutreachReason
from paris_avenir.staff import assignments
from paris_avenir.staff.models import CaseloadAssignment
from paris_avenir.youths.models import Channel

ANSWER_WINDOW = timedelta(days=7)
PERIOD = timedelta(days=90)


@dataclass(frozen=True)
class WatchResult:
    referent_id: uuid.UUID
    reason: OutreachReason
    step: int
    channel: Channel | None
    contacted: int  # youths, not messages
    answered: int  # youths who answered within a week of a contact

    @property
    def label(self) -> str:
        step = labels.step_label(self.reason, self.step)
        name = labels.reason_label(self.reason)
        return f"{name} — {step}" if step else name

    @property
    def channel_label(self) -> str:
        return labels.channel_label(self.channel)


def results_by_referent(
    session: Session, referent_ids: list[uuid.UUID], *, now: datetime
) -> list[WatchResult]:
    """Contacts of the youths each référent follows now, made between 97 and 7 days ago
    (90 days of complete weeks), in one query."""
    if not referent_ids:
        return []
    rows = session.execute(
        select(
            CaseloadAssignment.referent_id,
            OutreachAttempt.youth_id,
            OutreachAttempt.reason,
            OutreachAttempt.step,
            OutreachAttempt.channel,
            OutreachAttempt.attempted_at,
            OutreachAttempt.responded_at,
        )
        .join(CaseloadAssignment, CaseloadAssignment.youth_id == OutreachAttempt.youth_id)
        .where(
            CaseloadAssignment.referent_id.in_(referent_ids),
            assignments.is_current(),
            OutreachAttempt.attempted_at >= now - PERIOD - ANSWER_WINDOW,
            OutreachAttempt.attempted_at <= now - ANSWER_WINDOW,
        )
    ).all()
    youths: dict[tuple[uuid.UUID, OutreachReason, int, Channel | None], set[uuid.UUID]] = (
        defaultdict(set)
    )
    answering: dict[tuple[uuid.UUID, OutreachReason, int, Channel | None], set[uuid.UUID]] = (
        defaultdict(set)
    )
    for referent_id, youth_id, reason, step, channel, attempted_at, responded_at in rows:
        cell = (referent_id, reason, int(step), channel)
        youths[cell].add(youth_id)
        if responded_at is not None and responded_at - attempted_at <= ANSWER_WINDOW:
            answering[cell].add(youth_id)
    counts = {cell: (len(ids), len(answering[cell])) for cell, ids in youths.items()}
    order = {reason: index for index, reason in enumerate(OutreachReason)}
    return [
        WatchResult(referent_id, reason, step, channel, contacted, answered)
        for (referent_id, reason, step, channel), (contacted, answered) in sorted(
            counts.items(),
            key=lambda item: (str(item[0][0]), order[item[0][1]], item[0][2]),
        )
    ]


def latest_attempts(
    session: Session, youth_id: uuid.UUID, *, limit: int = 20
) -> list[OutreachAttempt]:
    """The watch's latest contacts with the youth, for their file."""
    return list(session.scalars(_LATEST_ATTEMPTS, {"youth_id": youth_id, "limit": limit}))


# Built once: every youth file runs it (see auth.sessions).
_LATEST_ATTEMPTS = (
    select(OutreachAttempt)
    .where(OutreachAttempt.youth_id == bindparam("youth_id"))
    .order_by(OutreachAttempt.attempted_at.desc())
    .limit(bindparam("limit"))
)
