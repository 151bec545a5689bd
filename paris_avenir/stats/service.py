"""Statistics for the Observatoire: anonymised aggregates only. Any cell that counts fewer
than 10 people is suppressed (statistical secrecy), so no youth can be singled out."""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from sqlalchemy import ColumnElement, and_, case, false, func, select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests import kinds as catalogue
from paris_avenir.aid_requests.models import AidCode, AidRequest, RequestStatus
from paris_avenir.aid_requests.service import status_label
from paris_avenir.appointments import answers
from paris_avenir.appointments.models import Appointment, AppointmentKind, AppointmentStatus
from paris_avenir.db import utcnow
from paris_avenir.kit.dates import paris_day
from paris_avenir.kit.forms import french_number
from paris_avenir.outreach import labels
from paris_avenir.outreach.models import OutreachAttempt
from paris_avenir.web.i18n import N_, gettext
from paris_avenir.youths.models import Youth

THRESHOLD = 10
QUIET_AFTER = timedelta(days=30)


@dataclass(frozen=True)
class Cell:
    """A count of people, or a measure (a median, a rate) computed over people; None when
    fewer than THRESHOLD people are behind it. A count is suppressed when it counts fewer
    than THRESHOLD people; a measure only when it is computed over fewer than THRESHOLD
    people (a rate of 3 answers out of 20 youths is shown: it protects 20 people)."""

    value: float | None
    measure: bool = False

    @property
    def suppressed(self) -> bool:
        return self.value is None

    def shown(self, unit: str = "") -> str:
        if self.value is None:
            if self.measure:
                return gettext("secret (moins de %(threshold)s personnes)", threshold=THRESHOLD)
            return gettext("< %(threshold)s", threshold=THRESHOLD)
        # Staff pages are in French: "13,3 %", "4,5 j".
        return french_number(self.value) + ("\u00a0" + unit.strip() if unit.strip() else "")


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
class NoShowPeriod:
    """Appointments of one kind that took place (marked held or missed by the staff
    member), booked before or after the one-tap answers, and the share of them missed."""

    held: Cell  # held + missed: the appointments that were due
    missed: Cell
    rate: Cell  # percent of `held` missed


@dataclass(frozen=True)
class NoShowRow:
    kind: str
    before: NoShowPeriod
    after: NoShowPeriod


@dataclass(frozen=True)
class Statistics:
    aids: list[AidRow]
    outreach: list[OutreachRow]
    active_youths: Cell
    quiet_youths: Cell
    statuses: list[RequestStatus]
    as_of: date  # the day the figures were computed, in Paris
    no_shows: list[NoShowRow] = field(default_factory=list)
    # When confirmations and reminders started to carry the one-tap link ("Je ne peux pas
    # venir"); None on a database that never recorded it (then everything is "before").
    answers_since: datetime | None = None


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
                    statistics.median(decided_delays) if len(decided_delays) >= THRESHOLD else None,
                    measure=True,
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
                100.0 * int(responded) / int(attempts) if attempts >= THRESHOLD else None,
                measure=True,
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
    # An anonymised file (retention) is nobody followed any more: neither active nor quiet.
    followed = Youth.anonymised_at.is_(None)
    quiet = (
        session.scalar(
            select(func.count())
            .select_from(Youth)
            .where(
                followed,
                (Youth.last_activity_at.is_(None)) | (Youth.last_activity_at <= now - QUIET_AFTER),
            )
        )
        or 0
    )
    total_youths = session.scalar(select(func.count()).select_from(Youth).where(followed)) or 0
    since = answers.answers_since(session)
    return Statistics(
        aids=aids,
        outreach=outreach,
        no_shows=_no_shows(session, since),
        answers_since=since,
        active_youths=_count(total_youths - quiet),
        quiet_youths=_count(quiet),
        statuses=statuses,
        as_of=paris_day(now),
    )


NO_SHOW_KINDS: dict[AppointmentKind, str] = {
    AppointmentKind.REFERENT: N_("Avec le référent"),
    AppointmentKind.FOLLOW_UP_INTERVIEW: N_("Entretien des 6 mois"),
    AppointmentKind.COUNTER: N_("Guichet démarches"),
    AppointmentKind.PSYCHOLOGIST: N_("Psychologue"),
}


def _period(held: int, missed: int) -> NoShowPeriod:
    return NoShowPeriod(
        held=_count(held),
        missed=_count(missed),
        rate=Cell(100.0 * missed / held if held >= THRESHOLD else None, measure=True),
    )


def _no_shows(session: Session, since: datetime | None) -> list[NoShowRow]:
    """No-shows per kind of appointment, split at `since`: an appointment counts "after"
    when it was booked from that moment on (its confirmation and reminders carried the
    link), wherever its date falls; cancelled ones are not due, so not counted."""
    after = Appointment.created_at >= since if since is not None else false()
    missed = Appointment.status == AppointmentStatus.MISSED

    def total(*conditions: ColumnElement[bool]) -> ColumnElement[int]:
        return func.sum(case((and_(*conditions), 1), else_=0))

    counts: dict[tuple[AppointmentKind, bool], tuple[int, int]] = {}
    for kind, held_before, missed_before, held_after, missed_after in session.execute(
        select(
            Appointment.kind,
            total(~after),
            total(~after, missed),
            total(after),
            total(after, missed),
        )
        .where(Appointment.status.in_([AppointmentStatus.ATTENDED, AppointmentStatus.MISSED]))
        .group_by(Appointment.kind)
    ):
        counts[(kind, False)] = (int(held_before or 0), int(missed_before or 0))
        counts[(kind, True)] = (int(held_after or 0), int(missed_after or 0))
    return [
        NoShowRow(
            kind=gettext(label),
            before=_period(*counts.get((kind, False), (0, 0))),
            after=_period(*counts.get((kind, True), (0, 0))),
        )
        for kind, label in NO_SHOW_KINDS.items()
    ]


# The export's columns, in French words: a spreadsheet shows them as its header row.
HEADERS = (
    N_("Indicateur"),
    N_("Aide ou motif"),
    N_("Étape"),
    N_("Détail"),
    N_("Valeur"),
    N_("Secret statistique"),
    N_("Arrêté au"),
)
Value = int | float | str | date | None


def table(stats: Statistics) -> list[list[Value]]:
    """The export as typed cells, header first: counts are ints, measures floats (a rate in
    percent, a delay in days), the date a date. A suppressed cell has no value and says why
    in its own column, so the "Valeur" column holds only numbers and sums stay right."""
    secret = gettext("moins de %(threshold)s personnes", threshold=THRESHOLD)

    def row(indicator: str, about: str, step: int | None, detail: str, cell: Cell) -> list[Value]:
        value: Value = None
        if cell.value is not None:
            value = int(cell.value) if float(cell.value).is_integer() else round(cell.value, 1)
        return [
            indicator,
            about,
            step,
            detail,
            value,
            secret if cell.suppressed else "",
            stats.as_of,
        ]

    rows: list[list[Value]] = [[gettext(name) for name in HEADERS]]
    for aid in stats.aids:
        for status, cell in aid.by_status.items():
            rows.append(row(gettext("Demandes"), aid.aid, None, status_label(status), cell))
        rows.append(
            row(
                gettext("Délai médian de décision (jours)"),
                aid.aid,
                None,
                "",
                aid.median_days_to_decision,
            )
        )
    for item in stats.outreach:
        rows.append(row(gettext("Relances"), item.reason, item.step, item.channel, item.attempts))
        rows.append(
            row(
                gettext("Taux de réponse (%)"),
                item.reason,
                item.step,
                item.channel,
                item.response_rate,
            )
        )
    for no_show in stats.no_shows:
        for period, when in (
            (no_show.before, gettext("avant")),
            (no_show.after, gettext("après")),
        ):
            detail = gettext("%(when)s les réponses en un clic", when=when)
            rows.append(row(gettext("Rendez-vous dus"), no_show.kind, None, detail, period.held))
            rows.append(
                row(gettext("Rendez-vous manqués"), no_show.kind, None, detail, period.missed)
            )
            rows.append(
                row(
                    gettext("Taux de rendez-vous manqués (%)"),
                    no_show.kind,
                    None,
                    detail,
                    period.rate,
                )
            )
    rows.append(
        row(gettext("Jeunes actifs ces 30 derniers jours"), "", None, "", stats.active_youths)
    )
    rows.append(
        row(gettext("Jeunes silencieux depuis 30 jours ou plus"), "", None, "", stats.quiet_youths)
    )
    return rows


def _french(value: Value) -> str:
    """A cell as a French Excel or LibreOffice reads it: 13,3 and 01/12/2026."""
    if value is None:
        return ""
    if isinstance(value, date):
        return f"{value.day:02d}/{value.month:02d}/{value.year:04d}"
    if isinstance(value, float):
        return f"{value:.1f}".replace(".", ",")
    return str(value)


def to_csv(stats: Statistics) -> bytes:
    """UTF-8 with a BOM (without it, Excel reads "DÃ©posÃ©e"), `;` between cells, decimal
    comma and JJ/MM/AAAA dates: what a French spreadsheet opens as numbers and dates."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    for cells in table(stats):
        writer.writerow([_french(value) for value in cells])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(stats: Statistics) -> bytes:
    """The same table as an Excel workbook: numbers and dates typed, the header row bold and
    frozen, the columns wide enough to read."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = gettext("Statistiques")
    rows = table(stats)
    for cells in rows:
        sheet.append(cells)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    value_column, date_column = HEADERS.index("Valeur") + 1, HEADERS.index("Arrêté au") + 1
    for line in sheet.iter_rows(min_row=2):
        line[value_column - 1].number_format = (
            "0.0" if isinstance(line[value_column - 1].value, float) else "0"
        )
        line[date_column - 1].number_format = "DD/MM/YYYY"
    for index, _name in enumerate(HEADERS, start=1):
        longest = max(len(_french(cells[index - 1])) for cells in rows)
        sheet.column_dimensions[get_column_letter(index)].width = min(max(longest + 2, 8), 50)
    buffer = io.BytesIO()
    workbook.save(buffer)
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
