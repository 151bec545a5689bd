"""Statistics for the Observatoire: anonymised aggregates only. Any cell that counts fewer
than 10 people is suppressed (statistical secrecy), so no youth can be singled out."""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests import kinds as catalogue
from paris_avenir.aid_requests.models import AidCode, AidRequest, RequestStatus
from paris_avenir.aid_requests.service import status_label
from paris_avenir.db import utcnow
from paris_avenir.outreach import labels
from paris_avenir.outreach.models import OutreachAttempt
from paris_avenir.web.i18n import gettext
from paris_avenir.youths.models import Youth

THRESHOLD = 10
QUIET_AFTER = timedelta(days=30)


@dataclass(frozen=True)
class Cell:
    """A count or a measure, or None when it covers fewer than THRESHOLD people."""

    value: float | None

    @property
    def suppressed(self) -> bool:
        return self.value is None

    def shown(self, unit: str = "") -> str:
        if self.value is None:
            return gettext("< %(threshold)s", threshold=THRESHOLD)
        number = f"{self.value:.0f}" if float(self.value).is_integer() else f"{self.value:.1f}"
        return f"{number}{unit}"


def _count(value: int) -> Cell:
    return Cell(float(value) if value >= THRESHOLD else None)


@dataclass(frozen=True)
class AidRow:
    aid: str
    by_status: dict[RequestStatus, Cell]
    total: Cell
    median_days_to_decision: Cell


@dataclass(frozen=True)
class OutreachRow:
    reason: str
    step: int
    channel: str
    attempts: Cell
    response_rate: Cell  # percent


@dataclass(frozen=True)
class Statistics:
    aids: list[AidRow]
    outreach: list[OutreachRow]
    active_youths: Cell
    quiet_youths: Cell
    statuses: list[RequestStatus]


def compute(session: Session, *, now: datetime | None = None) -> Statistics:
    now = now or utcnow()
    counts: dict[tuple[AidCode, RequestStatus], int] = {
        (row[0], row[1]): int(row[2])
        for row in session.execute(
            select(AidRequest.aid_code, AidRequest.status, func.count()).group_by(
                AidRequest.aid_code, AidRequest.status
            )
        )
    }
    delays: dict[AidCode, list[float]] = {}
    for code, submitted_at, decided_at in session.execute(
        select(AidRequest.aid_code, AidRequest.submitted_at, AidRequest.decided_at).where(
            AidRequest.submitted_at.is_not(None), AidRequest.decided_at.is_not(None)
        )
    ):
        if submitted_at is not None and decided_at is not None:
            delays.setdefault(code, []).append((decided_at - submitted_at).total_seconds() / 86400)
    statuses: list[RequestStatus] = [
        status for status in RequestStatus if status is not RequestStatus.DRAFT
    ]
    aids = []
    for code in AidCode:
        by_status: dict[RequestStatus, Cell] = {
            status: _count(counts.get((code, status), 0)) for status in statuses
        }
        total = sum(counts.get((code, status), 0) for status in statuses)
        decided_delays = delays.get(code, [])
        aids.append(
            AidRow(
                aid=catalogue.kind(code).name,
                by_status=by_status,
                total=_count(total),
                median_days_to_decision=Cell(
                    statistics.median(decided_delays) if len(decided_delays) >= THRESHOLD else None
                ),
            )
        )
    outreach = [
        OutreachRow(
            reason=labels.reason_label(reason),
            step=int(step),
            channel=labels.channel_label(channel),
            attempts=_count(int(attempts)),
            response_rate=Cell(
                100.0 * int(responded) / int(attempts) if attempts >= THRESHOLD else None
            ),
        )
        for reason, step, channel, attempts, responded in session.execute(
            select(
                OutreachAttempt.reason,
                OutreachAttempt.step,
                OutreachAttempt.channel,
                func.count(),
                func.sum(case((OutreachAttempt.responded_at.is_not(None), 1), else_=0)),
            )
            .group_by(OutreachAttempt.reason, OutreachAttempt.step, OutreachAttempt.channel)
            .order_by(OutreachAttempt.reason, OutreachAttempt.step)
        )
    ]
    quiet = (
        session.scalar(
            select(func.count())
            .select_from(Youth)
            .where(
                (Youth.last_activity_at.is_(None)) | (Youth.last_activity_at <= now - QUIET_AFTER)
            )
        )
        or 0
    )
    total_youths = session.scalar(select(func.count()).select_from(Youth)) or 0
    return Statistics(
        aids=aids,
        outreach=outreach,
        active_youths=_count(total_youths - quiet),
        quiet_youths=_count(quiet),
        statuses=statuses,
    )


def to_csv(stats: Statistics) -> str:
    """One line per cell: what it measures and its value ("<10" when suppressed)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")
    writer.writerow(["indicateur", "aide_ou_etape", "detail", "valeur"])
    secret = f"<{THRESHOLD}"
    for row in stats.aids:
        for status, cell in row.by_status.items():
            writer.writerow(
                [
                    "demandes",
                    row.aid,
                    status_label(status),
                    secret if cell.suppressed else int(cell.value or 0),
                ]
            )
        median = row.median_days_to_decision
        writer.writerow(
            [
                "delai_median_decision_jours",
                row.aid,
                "",
                secret if median.suppressed else f"{median.value:.1f}",
            ]
        )
    for item in stats.outreach:
        writer.writerow(
            [
                "relances",
                f"{item.reason} etape {item.step}",
                item.channel,
                secret if item.attempts.suppressed else int(item.attempts.value or 0),
            ]
        )
        writer.writerow(
            [
                "taux_de_reponse_pourcent",
                f"{item.reason} etape {item.step}",
                item.channel,
                secret if item.response_rate.suppressed else f"{item.response_rate.value:.1f}",
            ]
        )
    writer.writerow(
        [
            "jeunes_actifs_30_jours",
            "",
            "",
            secret if stats.active_youths.suppressed else int(stats.active_youths.value or 0),
        ]
    )
    writer.writerow(
        [
            "jeunes_silencieux_30_jours",
            "",
            "",
            secret if stats.quiet_youths.suppressed else int(stats.quiet_youths.value or 0),
        ]
    )
    return buffer.getvalue()


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    width: float  # 0 to 100, share of the largest bar
    shown: str


def bars(stats: Statistics) -> list[Bar]:
    """Requests per aid for a server-drawn SVG chart; suppressed cells are left out."""
    visible = [(row.aid, row.total) for row in stats.aids if not row.total.suppressed]
    largest = max((cell.value or 0 for _label, cell in visible), default=0) or 1
    return [
        Bar(label, cell.value or 0, 100 * (cell.value or 0) / largest, cell.shown())
        for label, cell in visible
    ]
