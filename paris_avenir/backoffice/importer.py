"""Import of the youths leaving care, from the ASE information system's CSV export.

Format (PRODUCT.md): `ase_ref;last_name;first_name;birth_date;phone;email;ase_exit_date;
referent_email;language`, UTF-8 with or without BOM, `;` or `,`; what a French Excel saves by
default (Windows-1252) and its "Texte Unicode" (UTF-16, tabs) are read too, and the report
says which encoding was read. Dates are JJ/MM/AAAA or AAAA-MM-JJ, never a two-digit year.
All or nothing: one bad line and nothing is written, every error reported with its line
number in French. Idempotent: upsert by ase_ref, so importing the same file twice changes
nothing the second time. New youths get an invitation to open their space through the outbox.

Scope: a supervisor imports only the youths their team follows, for référents of their team;
any other line (a youth of another team, or an ase_ref nobody has) is refused with the same
words, so that an import never tells whether an ase_ref exists. An admin imports for every
team. Whoever imports, a change to a youth already followed — phone, email or référent — is
never applied silently: it is listed ("Changements sur des jeunes déjà suivis"), applied only
when the importer confirms exactly that list, audited with the youth's id, and the previous
phone or email is told. A référent change goes through staff.reassignment.reassign.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import phonenumbers
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from paris_avenir.audit import service as audit
from paris_avenir.auth.links import create_login_link
from paris_avenir.config import get_settings
from paris_avenir.db import utcnow
from paris_avenir.kit import phone as phones
from paris_avenir.kit.crypto import keyed_hash
from paris_avenir.kit.dates import years_before
from paris_avenir.kit.email_address import InvalidEmail, mask_email, normalise_email
from paris_avenir.messaging import notifications
from paris_avenir.staff import assignments, notices, reassignment
from paris_avenir.staff.models import CaseloadAssignment, StaffRole, StaffUser
from paris_avenir.web import i18n
from paris_avenir.web.i18n import LANGUAGES
from paris_avenir.youths.models import Channel, Youth

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


@dataclass(frozen=True)
class Change:
    """A phone, email or référent of a youth already followed that the file would change.
    `before`/`after` are the raw values (never shown, never logged); the labels are masked."""

    line: int
    youth_id: uuid.UUID
    youth_name: str
    ase_ref: str
    field: str  # "phone", "email" or "referent"
    before: str | None
    after: str | None
    before_label: str
    after_label: str

    @property
    def field_label(self) -> str:
        return i18n.gettext(FIELD_LABELS[self.field])


FIELD_LABELS = {
    "phone": i18n.N_("Téléphone"),
    "email": i18n.N_("E-mail"),
    "referent": i18n.N_("Référent"),
}


@dataclass
class ImportReport:
    dry_run: bool
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    invitations: int = 0
    errors: list[LineError] = field(default_factory=list)
    # Changes to youths already followed, listed apart; applied only once confirmed.
    changes: list[Change] = field(default_factory=list)
    # The fingerprint of `changes` that a confirmation must name (keyed: it hashes phones).
    plan_digest: str = ""
    # True when the file was checked but not written because its changes await confirmation.
    awaiting_confirmation: bool = False
    applied: bool = False
    # False on the command line: no person there to confirm changes.
    confirmable: bool = True
    # The encoding the file was read in ("UTF-8", "Windows-1252"), said to the importer.
    encoding: str = ""
    # Lines that passed every check (the file is refused whole if any other did not).
    valid_lines: int = 0

    @property
    def imported(self) -> bool:
        return self.applied


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


# What a spreadsheet may write for a date: ISO, or the French JJ/MM/AAAA (a midnight time,
# as LibreOffice adds to a date-and-time cell, is allowed). A two-digit year is recognised
# only to be refused: "30/11/25" could be 1925 or 2025, and was once stored as the year 25.
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]00:00(?::00)?)?")
_FRENCH_DATE = re.compile(r"(\d{1,2})[/.](\d{1,2})[/.](\d{4})(?: 00:00(?::00)?)?")
_TWO_DIGIT_YEAR = re.compile(r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2}")
# The programme is for 18-25 year olds; the ASE exports them around their leaving care, so an
# import accepts 16 to 26 at the day of import, and nothing further off. A youth of 26 left
# care at most some eight years ago; an exit may be planned a little ahead.
YOUNGEST, OLDEST = 16, 26
EXIT_YEARS_BEFORE, EXIT_YEARS_AFTER = 10, 2


class _DateProblem(ValueError):
    def __init__(self, *, two_digit_year: bool) -> None:
        super().__init__()
        self.two_digit_year = two_digit_year


def _parse_date(raw: str) -> date:
    """2004-05-17 (ISO) or 17/05/2004 (as French spreadsheets write it); anything else, a
    two-digit year above all, raises _DateProblem."""
    raw = raw.strip()
    if _TWO_DIGIT_YEAR.fullmatch(raw):
        raise _DateProblem(two_digit_year=True)
    try:
        if match := _ISO_DATE.fullmatch(raw):
            year, month, day = (int(part) for part in match.groups())
            return date(year, month, day)
        if match := _FRENCH_DATE.fullmatch(raw):
            day, month, year = (int(part) for part in match.groups())
            return date(year, month, day)
    except ValueError:
        pass  # 31/02/2005: the shape of a date, not a date
    raise _DateProblem(two_digit_year=False)


def _age(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def _birth_date(raw: str, today: date) -> tuple[date | None, str | None]:
    try:
        birth = _parse_date(raw)
    except _DateProblem as problem:
        if problem.two_digit_year:
            return None, i18n.gettext(
                "date de naissance « %(value)s » avec une année sur deux chiffres : écrivez "
                "l’année en entier (JJ/MM/AAAA)",
                value=raw,
            )
        return None, i18n.gettext(
            "date de naissance illisible « %(value)s » (attendu : JJ/MM/AAAA ou AAAA-MM-JJ)",
            value=raw,
        )
    if birth > today:
        return None, i18n.gettext(
            "date de naissance « %(value)s » dans le futur", value=_shown(birth)
        )
    age = _age(birth, today)
    if not YOUNGEST <= age <= OLDEST:
        return None, i18n.gettext(
            "date de naissance « %(value)s » invraisemblable : le jeune aurait %(age)s ans "
            "(attendu : de %(youngest)s à %(oldest)s ans)",
            value=_shown(birth),
            age=age,
            youngest=YOUNGEST,
            oldest=OLDEST,
        )
    return birth, None


def _exit_date(raw: str, today: date) -> tuple[date | None, str | None]:
    try:
        left = _parse_date(raw)
    except _DateProblem as problem:
        if problem.two_digit_year:
            return None, i18n.gettext(
                "date de sortie de l’ASE « %(value)s » avec une année sur deux chiffres : "
                "écrivez l’année en entier (JJ/MM/AAAA)",
                value=raw,
            )
        return None, i18n.gettext(
            "date de sortie de l’ASE illisible « %(value)s » (attendu : JJ/MM/AAAA ou AAAA-MM-JJ)",
            value=raw,
        )
    earliest = years_before(today, EXIT_YEARS_BEFORE)
    latest = years_before(today, -EXIT_YEARS_AFTER)
    if not earliest <= left <= latest:
        return None, i18n.gettext(
            "date de sortie de l’ASE « %(value)s » invraisemblable (attendu : entre le "
            "%(earliest)s et le %(latest)s)",
            value=_shown(left),
            earliest=_shown(earliest),
            latest=_shown(latest),
        )
    return left, None


def _shown(day: date) -> str:
    return f"{day.day:02d}/{day.month:02d}/{day.year:04d}"  # strftime writes the year 25 as "25"


# Tried in this order. Excel saves "CSV (séparateur : point-virgule)" in Windows-1252 and
# "CSV UTF-8" with a BOM; a file that is valid UTF-8 is read as UTF-8.
ENCODINGS = (("utf-8-sig", "UTF-8"), ("cp1252", "Windows-1252"))


def _decode(content: bytes) -> tuple[str, str]:
    """The text and the name of the encoding it was read in."""
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Texte Unicode"
        try:
            return content.decode("utf-16"), "UTF-16"
        except UnicodeDecodeError:
            pass
    for codec, name in ENCODINGS:
        try:
            return content.decode(codec), name
        except UnicodeDecodeError as error:
            failure = error
    line = content[: failure.start].count(b"\n") + 1
    raise _FileError(
        LineError(
            line,
            i18n.gettext(
                "Le fichier n’est ni en UTF-8 ni en Windows-1252 (caractère illisible). "
                "Enregistrez-le en « CSV UTF-8 »."
            ),
        )
    )


class _FileError(Exception):
    def __init__(self, error: LineError) -> None:
        self.error = error


def _rows(text: str) -> tuple[list[str], list[tuple[int, dict[str, str]]], list[LineError]]:
    """The header (trailing empty columns dropped, as a spreadsheet leaves them), the data
    lines with their line numbers, and the lines that hold values beyond the header."""
    first_line = text.split("\n", 1)[0]
    separator = max((";", ",", "\t"), key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise _FileError(LineError(1, i18n.gettext("Le fichier est vide."))) from None
    while header and not header[-1]:
        header.pop()
    rows = []
    beyond: list[LineError] = []
    for values in reader:
        if not any(value.strip() for value in values):
            continue
        if any(value.strip() for value in values[len(header) :]):
            beyond.append(
                LineError(
                    reader.line_num,
                    i18n.gettext(
                        "la ligne a plus de valeurs que l’en-tête n’a de colonnes (%(count)s)",
                        count=len(header),
                    ),
                )
            )
            continue
        rows.append(
            (reader.line_num, dict(zip(header, (value.strip() for value in values), strict=False)))
        )
    return header, rows, beyond


def _check_header(header: list[str]) -> list[LineError]:
    errors = []
    missing = [name for name in COLUMNS if name not in header]
    unknown = [f"« {name} »" for name in header if name and name not in COLUMNS]
    unnamed = [str(number) for number, name in enumerate(header, start=1) if not name]
    if missing:
        errors.append(
            LineError(1, i18n.gettext("Colonnes manquantes : %(names)s.", names=", ".join(missing)))
        )
    if unknown:
        errors.append(
            LineError(1, i18n.gettext("Colonnes inconnues : %(names)s.", names=", ".join(unknown)))
        )
    if unnamed:
        errors.append(
            LineError(
                1,
                i18n.gettext(
                    "Colonnes sans nom (n° %(numbers)s) : donnez-leur un nom ou supprimez-les.",
                    numbers=", ".join(unnamed),
                ),
            )
        )
    return errors


def _covers_every_team(by: StaffUser | None) -> bool:
    """An admin, or the operator's command line (no staff member): every team."""
    return by is None or by.role is StaffRole.ADMIN


def _existing(
    session: Session, refs: set[str]
) -> tuple[dict[str, Youth], dict[uuid.UUID, StaffUser]]:
    """The youths these ase_refs name and their current référents: two queries whatever the
    file holds, the same whether a reference exists or not (no timing to tell them apart)."""
    named = Youth.ase_ref.in_(refs or {""})
    youths = {youth.ase_ref: youth for youth in session.scalars(select(Youth).where(named))}
    ids = {youth.id for youth in youths.values()}
    return youths, assignments.current_referents(session, ids, always_query=True)


def _in_scope(by: StaffUser | None, referent: StaffUser | None) -> bool:
    if _covers_every_team(by):
        return True
    assert by is not None
    return (
        by.role is StaffRole.SUPERVISOR
        and by.team_id is not None
        and referent is not None
        and referent.team_id == by.team_id
    )


def _validate(
    session: Session,
    rows: list[tuple[int, dict[str, str]]],
    today: date,
    *,
    by: StaffUser | None,
    youths: dict[str, Youth],
    current: dict[uuid.UUID, StaffUser],
    ip_address: str | None,
    now: datetime,
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
        birth = None
        if row.get("birth_date"):
            birth, problem = _birth_date(row["birth_date"], today)
            if problem:
                problems.append(problem)
        exit_date = None
        if row.get("ase_exit_date"):
            exit_date, problem = _exit_date(row["ase_exit_date"], today)
            if problem:
                problems.append(problem)
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
        if ase_ref and not _covers_every_team(by):
            # The same words, and the same audit entry, for a youth of another team and for
            # a reference nobody has: the answer must not tell which it is.
            youth = youths.get(ase_ref)
            if not _in_scope(by, current.get(youth.id) if youth else None):
                problems.append(
                    i18n.gettext(
                        "la référence %(ref)s n’est pas celle d’un jeune suivi par votre "
                        "équipe : seul un administrateur importe les nouveaux jeunes et ceux "
                        "des autres équipes",
                        ref=ase_ref,
                    )
                )
                _refused(session, by, number, "youth_out_of_scope", youth, ip_address, now)
        referent = referents.get(row.get("referent_email", "").lower())
        if row.get("referent_email") and (
            referent is None
            or referent.role is not StaffRole.REFERENT
            or not referent.is_active
            or not _in_scope(by, referent)
        ):
            if _covers_every_team(by):
                problems.append(
                    i18n.gettext(
                        "aucun référent actif avec l’e-mail %(email)s", email=row["referent_email"]
                    )
                )
            else:
                problems.append(
                    i18n.gettext(
                        "aucun référent actif de votre équipe avec l’e-mail %(email)s",
                        email=row["referent_email"],
                    )
                )
                _refused(session, by, number, "referent_out_of_scope", None, ip_address, now)
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


def _refused(
    session: Session,
    by: StaffUser | None,
    line: int,
    reason: str,
    youth: Youth | None,
    ip_address: str | None,
    now: datetime,
) -> None:
    """A line refused for scope, traced like any access out of scope (staff.scope.deny): the
    security officer sees who tried which youth; the importer is told nothing more."""
    audit.record(
        session,
        "access_denied",
        actor_staff_id=by.id if by else None,
        object_type="youth" if reason == "youth_out_of_scope" else "staff_user",
        object_id=youth.id if youth else None,
        ip_address=ip_address,
        detail={"via": "import", "line": line, "reason": reason},
        now=now,
    )


def masked_phone(e164: str | None) -> str:
    """06 •• •• •• 12: enough to recognise a number, not enough to use it."""
    if not e164:
        return i18n.gettext("(aucun)")
    try:
        groups = phones.format_for_display(e164).split(" ")
    except phonenumbers.NumberParseException:  # an odd stored value is still masked
        return phones.mask(e164)
    if len(groups) < 3:
        return phones.mask(e164)
    return " ".join([groups[0], *("••" for _group in groups[1:-1]), groups[-1]])


def _masked_email(value: str | None) -> str:
    return mask_email(value) if value else i18n.gettext("(aucune)")


@dataclass
class _Plan:
    line: YouthLine
    youth: Youth | None
    values: dict[str, Any]
    other_fields: list[str]  # names, dates, language: applied without confirmation
    changes: list[Change]


def _changes_of(line: YouthLine, youth: Youth, referent: StaffUser | None) -> list[Change]:
    name = f"{youth.first_name} {youth.last_name}"
    found: list[tuple[str, str | None, str | None, str, str]] = []
    if youth.phone != line.phone:
        found.append(
            ("phone", youth.phone, line.phone, masked_phone(youth.phone), masked_phone(line.phone))
        )
    if youth.email != line.email:
        found.append(
            (
                "email",
                youth.email,
                line.email,
                _masked_email(youth.email),
                _masked_email(line.email),
            )
        )
    if referent is None or referent.id != line.referent.id:
        found.append(
            (
                "referent",
                str(referent.id) if referent else None,
                str(line.referent.id),
                referent.full_name if referent else i18n.gettext("(aucun)"),
                line.referent.full_name,
            )
        )
    return [Change(line.line, youth.id, name, youth.ase_ref, *values) for values in found]


def _plan(
    lines: list[YouthLine], youths: dict[str, Youth], current: dict[uuid.UUID, StaffUser]
) -> list[_Plan]:
    plans = []
    for line in lines:
        youth = youths.get(line.ase_ref)
        values: dict[str, Any] = {
            "last_name": line.last_name,
            "first_name": line.first_name,
            "birth_date": line.birth_date,
            "ase_exit_date": line.ase_exit_date,
            "language": line.language,
        }
        if youth is None:
            plans.append(_Plan(line, None, values, [], []))
            continue
        others = [name for name, value in values.items() if getattr(youth, name) != value]
        changes = _changes_of(line, youth, current.get(youth.id))
        plans.append(_Plan(line, youth, values, others, changes))
    return plans


def plan_digest(changes: list[Change], *, secret_key: str) -> str:
    """What the importer saw and confirms: keyed, because it covers phone numbers."""
    items = sorted(
        [str(change.youth_id), change.field, change.before or "", change.after or ""]
        for change in changes
    )
    return keyed_hash(secret_key, json.dumps(items), purpose="import-plan")


def _invite(session: Session, youth: Youth, *, base_url: str, now: datetime) -> bool:
    link = create_login_link(
        session,
        youth.id,
        purpose="invitation",
        base_url=base_url,
        lifetime=INVITATION_LIFETIME,
        now=now,
    )
    notice = notices.invitation(youth_id=youth.id, first_name=youth.first_name, link=link)
    return notifications.notify(session, youth, notice, now=now) is not None


@dataclass(frozen=True)
class _Applying:
    """What writing each line of a confirmed import needs: who imports (None: the command
    line), from where, the platform's address for the invitations, and when."""

    by: StaffUser | None
    ip_address: str | None
    base_url: str
    now: datetime


def _create(session: Session, plan: _Plan, report: ImportReport, run: _Applying) -> None:
    line = plan.line
    youth = Youth(ase_ref=line.ase_ref, phone=line.phone, email=line.email, **plan.values)
    session.add(youth)
    session.flush()
    session.add(
        CaseloadAssignment(
            youth_id=youth.id,
            referent_id=line.referent.id,
            started_at=run.now,
            assigned_by_id=run.by.id if run.by else None,
            reason="Import du SI de l’ASE",
        )
    )
    session.flush()
    audit.record(
        session,
        "youth.imported",
        actor_staff_id=run.by.id if run.by else None,
        youth_id=youth.id,
        object_type="youth",
        object_id=youth.id,
        ip_address=run.ip_address,
        detail={"line": line.line},
        now=run.now,
    )
    report.created += 1
    if _invite(session, youth, base_url=run.base_url, now=run.now):
        report.invitations += 1


def _update(session: Session, plan: _Plan, report: ImportReport, run: _Applying) -> None:
    youth, line = plan.youth, plan.line
    assert youth is not None
    if not plan.other_fields and not plan.changes:
        report.unchanged += 1
        return
    report.updated += 1
    actor = run.by.id if run.by else None
    for name in plan.other_fields:
        setattr(youth, name, plan.values[name])
    if plan.other_fields:
        audit.record(
            session,
            "youth.update",
            actor_staff_id=actor,
            youth_id=youth.id,
            object_type="youth",
            object_id=youth.id,
            ip_address=run.ip_address,
            detail={"via": "import", "line": line.line, "fields": plan.other_fields},
            now=run.now,
        )
    previous = {"phone": youth.phone, "email": youth.email}
    for change in plan.changes:
        if change.field == "referent":
            assert run.by is not None  # confirmed changes always have a staff member behind them
            reassignment.reassign(
                session,
                youth.id,
                to_referent_id=line.referent.id,
                by=run.by,
                reason="Import du SI de l’ASE",
                now=run.now,
                base_url=run.base_url,
            )
            continue
        changed = Channel.SMS if change.field == "phone" else Channel.EMAIL
        if changed is Channel.SMS:
            youth.phone = change.after
            youth.phone_unreachable_at = None
            youth.phone_reported_wrong_at = None
        else:
            youth.email = change.after
            youth.email_unreachable_at = None
        # Told where the youth could be reached before: the old value itself, or, when there
        # was none (a phone added to a youth known by email), their other previous contact.
        other = "email" if changed is Channel.SMS else "phone"
        if change.before is not None:
            told: tuple[Channel, str] | None = (changed, change.before)
        elif previous[other] is not None:
            told = (Channel.EMAIL if other == "email" else Channel.SMS, str(previous[other]))
        else:
            told = None
        event = audit.record(
            session,
            f"youth.{change.field}_changed",
            actor_staff_id=actor,
            youth_id=youth.id,
            object_type="youth",
            object_id=youth.id,
            ip_address=run.ip_address,
            detail={
                "via": "import",
                "line": line.line,
                "told_on": told[0].value if told else None,
            },
            now=run.now,
        )
        if told is not None:
            notifications.notify_previous_contact(
                session,
                youth,
                changed=changed,
                channel=told[0],
                recipient=told[1],
                key=f"contact-changed:{event.id}",
                now=run.now,
            )
    session.flush()


def import_youths(
    session: Session,
    content: bytes,
    *,
    base_url: str,
    dry_run: bool = False,
    now: datetime | None = None,
    by: StaffUser | None = None,
    confirmed_plan: str | None = None,
    ip_address: str | None = None,
    secret_key: str | None = None,
) -> ImportReport:
    """Checks every line, then writes all of them or none. A dry run checks and counts, and
    writes nothing but its audit entries. Changes to youths already followed (phone, email,
    référent) are applied only when `confirmed_plan` is the `plan_digest` of exactly those
    changes, as a dry run reported them; otherwise nothing is written and the report says
    it awaits confirmation. `by` is who imports (None: the command line, which can never
    confirm changes)."""
    now = now or utcnow()
    secret_key = secret_key or get_settings().secret_key
    report = ImportReport(dry_run=dry_run, confirmable=by is not None)
    try:
        text, report.encoding = _decode(content)
        header, rows, beyond = _rows(text)
    except _FileError as error:
        report.errors.append(error.error)
        return report
    report.errors.extend(_check_header(header))
    if report.errors:
        return report
    if not rows and not beyond:
        report.errors.append(LineError(2, i18n.gettext("Aucune ligne de données.")))
        return report
    youths, current = _existing(session, {row.get("ase_ref", "") for _line, row in rows})
    lines, errors = _validate(
        session,
        rows,
        now.date(),
        by=by,
        youths=youths,
        current=current,
        ip_address=ip_address,
        now=now,
    )
    report.valid_lines = len(lines)
    report.errors.extend(sorted([*beyond, *errors], key=lambda error: error.line))
    if report.errors:
        return report
    plans = _plan(lines, youths, current)
    report.changes = [change for plan in plans for change in plan.changes]
    report.plan_digest = plan_digest(report.changes, secret_key=secret_key)
    for plan in plans:
        if plan.youth is None:
            report.created += 1
            report.invitations += bool(plan.line.phone or plan.line.email)
        elif plan.other_fields or plan.changes:
            report.updated += 1
        else:
            report.unchanged += 1
    confirmed = by is not None and confirmed_plan == report.plan_digest
    if dry_run or (report.changes and not confirmed):
        report.awaiting_confirmation = bool(report.changes) and not dry_run
        # What the importer is shown of each youth's data is traced on that youth.
        for youth_id in dict.fromkeys(change.youth_id for change in report.changes):
            audit.record(
                session,
                "youth.import_checked",
                actor_staff_id=by.id if by else None,
                youth_id=youth_id,
                object_type="youth",
                object_id=youth_id,
                ip_address=ip_address,
                detail={"via": "import"},
                now=now,
            )
        return report
    report.created = report.updated = report.unchanged = report.invitations = 0
    run = _Applying(by=by, ip_address=ip_address, base_url=base_url, now=now)
    with session.begin_nested():
        for plan in plans:
            if plan.youth is None:
                _create(session, plan, report, run)
            else:
                _update(session, plan, report, run)
    report.applied = True
    return report


def content_sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def describe(report: ImportReport) -> list[str]:
    """The report in plain French, one line each (CLI and web page)."""
    read_in = (
        [i18n.gettext("Fichier lu en %(encoding)s.", encoding=report.encoding)]
        if report.encoding
        else []
    )
    if report.errors:
        refused = len({error.line for error in report.errors if error.line > 1})
        others = (
            [
                i18n.ngettext(
                    "L’autre ligne est correcte : elle sera importée avec le fichier corrigé.",
                    "Les %(num)s autres lignes sont correctes : elles seront importées avec le "
                    "fichier corrigé.",
                    report.valid_lines,
                )
            ]
            if refused and report.valid_lines
            else []
        )
        return (
            [i18n.gettext("Rien n’a été importé : corrigez ces lignes, puis recommencez.")]
            + [
                i18n.gettext("Ligne %(line)s : %(problem)s", line=error.line, problem=error.message)
                for error in report.errors
            ]
            + others
            + read_in
        )
    summary = i18n.gettext(
        "%(created)s nouveaux jeunes (%(invitations)s invitations), %(updated)s mis à jour, "
        "%(unchanged)s inchangés.",
        created=report.created,
        invitations=report.invitations,
        updated=report.updated,
        unchanged=report.unchanged,
    )
    if report.applied:
        prefix = i18n.gettext("Importé :")
    elif report.awaiting_confirmation:
        prefix = i18n.gettext(
            "Rien n’est encore enregistré : le fichier change des jeunes déjà suivis, "
            "confirmez ces changements pour importer :"
        )
    else:
        prefix = i18n.gettext("Essai, rien n’est enregistré :")
    described = [f"{prefix} {summary}"]
    if report.changes and not report.applied:
        described.append(i18n.gettext("Changements sur des jeunes déjà suivis :"))
        described.extend(
            i18n.gettext(
                "Ligne %(line)s, %(name)s (%(ref)s) : %(what)s %(before)s → %(after)s",
                line=change.line,
                name=change.youth_name,
                ref=change.ase_ref,
                what=change.field_label,
                before=change.before_label,
                after=change.after_label,
            )
            for change in report.changes
        )
        if not report.confirmable:
            described.append(
                i18n.gettext(
                    "Ces changements se confirment dans l’espace pro, page « Importer », par "
                    "un superviseur de l’équipe ou un administrateur."
                )
            )
    return described + read_in
