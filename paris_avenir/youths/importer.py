"""Import of the youths leaving care, from the ASE information system's CSV export.

Format (PRODUCT.md): `ase_ref;last_name;first_name;birth_date;phone;email;ase_exit_date;
referent_email;language`, UTF-8 with or without BOM, `;` or `,`. All or nothing: one bad line
and nothing is written, every error reported with its line number in French. Idempotent:
upsert by ase_ref, so importing the same file twice changes nothing the second time.
New youths get an invitation to open their space through the outbox.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from paris_avenir.auth.links import create_login_link
from paris_avenir.db import utcnow
from paris_avenir.kit import phone as phones
from paris_avenir.kit.email_address import InvalidEmail, normalise_email
from paris_avenir.messaging import message_templates, notifications, sms_texts, texts
from paris_avenir.staff import tasks
from paris_avenir.staff.models import CaseloadAssignment, StaffRole, StaffUser
from paris_avenir.web import i18n
from paris_avenir.web.i18n import LANGUAGES
from paris_avenir.youths.models import Youth

COLUMNS = (
    "ase_ref",
    "last_name",
    "first_name",
    "birth_date",
    "phone",
    "email",
    "ase_exit_date",
    "referent_email",
    "language",
)
REQUIRED = ("ase_ref", "last_name", "first_name", "birth_date", "referent_email")
INVITATION_LIFETIME = timedelta(days=14)
LANGUAGE_CODES = {code.lower().replace("_", "-"): code for code, _name in LANGUAGES}


@dataclass(frozen=True)
class LineError:
    line: int  # as a spreadsheet shows it: the header is line 1
    message: str


@dataclass
class ImportReport:
    dry_run: bool
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    invitations: int = 0
    errors: list[LineError] = field(default_factory=list)

    @property
    def imported(self) -> bool:
        return not self.errors and not self.dry_run


@dataclass(frozen=True)
class YouthLine:
    line: int
    ase_ref: str
    last_name: str
    first_name: str
    birth_date: date
    phone: str | None
    email: str | None
    ase_exit_date: date | None
    referent: StaffUser
    language: str


def _parse_date(raw: str) -> date | None:
    """2004-05-17 (ISO) or 17/05/2004 (as French spreadsheets write it)."""
    raw = raw.strip()
    try:
        if "/" in raw:
            day, month, year = (int(part) for part in raw.split("/"))
            return date(year, month, day)
        return date.fromisoformat(raw)
    except ValueError:
        return None


def _decode(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = content[: error.start].count(b"\n") + 1
        raise _FileError(
            LineError(
                line,
                i18n.gettext(
                    "Le fichier n’est pas en UTF-8 (caractère illisible). "
                    "Enregistrez-le en « CSV UTF-8 »."
                ),
            )
        ) from None


class _FileError(Exception):
    def __init__(self, error: LineError) -> None:
        self.error = error


def _rows(text: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    first_line = text.split("\n", 1)[0]
    separator = ";" if first_line.count(";") >= first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise _FileError(LineError(1, i18n.gettext("Le fichier est vide."))) from None
    rows = []
    for values in reader:
        if not any(value.strip() for value in values):
            continue
        rows.append(
            (reader.line_num, dict(zip(header, (value.strip() for value in values), strict=False)))
        )
    return header, rows


def _check_header(header: list[str]) -> list[LineError]:
    errors = []
    missing = [name for name in COLUMNS if name not in header]
    unknown = [name for name in header if name not in COLUMNS]
    if missing:
        errors.append(
            LineError(1, i18n.gettext("Colonnes manquantes : %(names)s.", names=", ".join(missing)))
        )
    if unknown:
        errors.append(
            LineError(1, i18n.gettext("Colonnes inconnues : %(names)s.", names=", ".join(unknown)))
        )
    return errors


def _validate(
    session: Session, rows: list[tuple[int, dict[str, str]]], today: date
) -> tuple[list[YouthLine], list[LineError]]:
    emails = {row.get("referent_email", "").lower() for _line, row in rows}
    referents = {
        staff.email.lower(): staff
        for staff in session.scalars(
            select(StaffUser).where(func.lower(StaffUser.email).in_(emails))
        )
    }
    seen: dict[str, int] = {}
    lines: list[YouthLine] = []
    errors: list[LineError] = []
    for number, row in rows:
        problems = []
        for name in REQUIRED:
            if not row.get(name):
                problems.append(i18n.gettext("la colonne « %(name)s » est vide", name=name))
        ase_ref = row.get("ase_ref", "")
        if ase_ref and ase_ref in seen:
            problems.append(
                i18n.gettext(
                    "la référence %(ref)s est déjà à la ligne %(line)s",
                    ref=ase_ref,
                    line=seen[ase_ref],
                )
            )
        elif ase_ref:
            seen[ase_ref] = number
        if len(ase_ref) > 40:
            problems.append(i18n.gettext("la référence ASE est trop longue"))
        birth = _parse_date(row.get("birth_date", "")) if row.get("birth_date") else None
        if row.get("birth_date") and birth is None:
            problems.append(
                i18n.gettext(
                    "date de naissance illisible « %(value)s » "
                    "(attendu : AAAA-MM-JJ ou JJ/MM/AAAA)",
                    value=row["birth_date"],
                )
            )
        elif birth is not None and not (date(today.year - 27, 1, 1) <= birth <= today):
            problems.append(
                i18n.gettext("date de naissance impossible pour un jeune de 18 à 25 ans")
            )
        exit_date = None
        if row.get("ase_exit_date"):
            exit_date = _parse_date(row["ase_exit_date"])
            if exit_date is None:
                problems.append(
                    i18n.gettext(
                        "date de sortie de l’ASE illisible « %(value)s »",
                        value=row["ase_exit_date"],
                    )
                )
        phone = None
        if row.get("phone"):
            try:
                phone = phones.normalise_phone(row["phone"])
            except phones.InvalidPhoneNumber:
                problems.append(i18n.gettext("numéro de téléphone invalide"))
        email = None
        if row.get("email"):
            try:
                email = normalise_email(row["email"])
            except InvalidEmail:
                problems.append(i18n.gettext("adresse e-mail invalide"))
        referent = referents.get(row.get("referent_email", "").lower())
        if row.get("referent_email") and (
            referent is None or referent.role is not StaffRole.REFERENT or not referent.is_active
        ):
            problems.append(
                i18n.gettext(
                    "aucun référent actif avec l’e-mail %(email)s", email=row["referent_email"]
                )
            )
        language = LANGUAGE_CODES.get((row.get("language") or "fr").lower().replace("_", "-"))
        if language is None:
            problems.append(
                i18n.gettext("langue inconnue « %(value)s »", value=row.get("language", ""))
            )
        if problems:
            errors.extend(LineError(number, problem) for problem in problems)
            continue
        assert birth is not None and referent is not None and language is not None
        lines.append(
            YouthLine(
                number,
                ase_ref,
                row["last_name"],
                row["first_name"],
                birth,
                phone,
                email,
                exit_date,
                referent,
                language,
            )
        )
    return lines, errors


def _invite(session: Session, youth: Youth, *, base_url: str, now: datetime) -> bool:
    link = create_login_link(
        session,
        youth.id,
        purpose="invitation",
        base_url=base_url,
        lifetime=INVITATION_LIFETIME,
        now=now,
    )
    sms = sms_texts.render(sms_texts.INVITATION, youth.language, link=link)
    subject, text = texts.invitation_email(youth.first_name, link, youth.language)
    sms = message_templates.render_sms(session, "invitation", youth.language, sms, link=link)
    return (
        notifications.notify(
            session,
            youth,
            template="invitation",
            key=f"invitation:{youth.id}",
            sms_text=sms,
            email_subject=subject,
            email_text=text,
            now=now,
        )
        is not None
    )


def _apply(
    session: Session, line: YouthLine, report: ImportReport, *, base_url: str, now: datetime
) -> None:
    youth = session.scalar(select(Youth).where(Youth.ase_ref == line.ase_ref))
    values = {
        "last_name": line.last_name,
        "first_name": line.first_name,
        "birth_date": line.birth_date,
        "phone": line.phone,
        "email": line.email,
        "ase_exit_date": line.ase_exit_date,
        "language": line.language,
    }
    created = youth is None
    if youth is None:
        youth = Youth(ase_ref=line.ase_ref, **values)
        session.add(youth)
        session.flush()
        changed = True
    else:
        changed = any(getattr(youth, name) != value for name, value in values.items())
        for name, value in values.items():
            setattr(youth, name, value)
    current = session.scalar(
        select(CaseloadAssignment).where(
            CaseloadAssignment.youth_id == youth.id, CaseloadAssignment.ended_at.is_(None)
        )
    )
    if current is None or current.referent_id != line.referent.id:
        if current is not None:
            current.ended_at = now
            session.flush()
        session.add(
            CaseloadAssignment(
                youth_id=youth.id,
                referent_id=line.referent.id,
                started_at=now,
                reason="Import du SI de l’ASE",
            )
        )
        changed = True
        if current is not None:
            session.flush()
            # The youth's open tasks follow them to the référent the export names.
            tasks.follow_reassignment(session, youth.id, now=now, by_id=None, base_url=base_url)
    session.flush()
    if created:
        report.created += 1
        if _invite(session, youth, base_url=base_url, now=now):
            report.invitations += 1
    elif changed:
        report.updated += 1
    else:
        report.unchanged += 1


def import_youths(
    session: Session,
    content: bytes,
    *,
    base_url: str,
    dry_run: bool = False,
    now: datetime | None = None,
) -> ImportReport:
    """Checks every line, then writes all of them or none. A dry run checks and counts, and
    writes nothing."""
    now = now or utcnow()
    report = ImportReport(dry_run=dry_run)
    try:
        header, rows = _rows(_decode(content))
    except _FileError as error:
        report.errors.append(error.error)
        return report
    report.errors.extend(_check_header(header))
    if report.errors:
        return report
    if not rows:
        report.errors.append(LineError(2, i18n.gettext("Aucune ligne de données.")))
        return report
    lines, errors = _validate(session, rows, now.date())
    report.errors.extend(errors)
    if report.errors:
        return report
    savepoint = session.begin_nested()
    for line in lines:
        _apply(session, line, report, base_url=base_url, now=now)
    if dry_run:
        savepoint.rollback()
    else:
        savepoint.commit()
    return report


def describe(report: ImportReport) -> list[str]:
    """The report in plain French, one line each (CLI and web page)."""
    if report.errors:
        return [i18n.gettext("Rien n’a été importé : corrigez ces lignes, puis recommencez.")] + [
            i18n.gettext("Ligne %(line)s : %(problem)s", line=error.line, problem=error.message)
            for error in report.errors
        ]
    summary = i18n.gettext(
        "%(created)s nouveaux jeunes (%(invitations)s invitations), %(updated)s mis à jour, "
        "%(unchanged)s inchangés.",
        created=report.created,
        invitations=report.invitations,
        updated=report.updated,
        unchanged=report.unchanged,
    )
    prefix = (
        i18n.gettext("Essai, rien n’est enregistré :")
        if report.dry_run
        else i18n.gettext("Importé :")
    )
    return [f"{prefix} {summary}"]
