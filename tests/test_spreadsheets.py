"""Spreadsheets made by software we did not write: the statistics export opened by
LibreOffice Calc in French (Debian's libreoffice-calc, headless), and the youths' import fed
what a French Excel saves (Windows-1252, trailing empty columns, JJ/MM/AAAA dates).

LibreOffice runs twice per session at most (a module-scoped fixture): once to import the CSV
with the fr-FR CSV filter, once to open the .xlsx download; each takes a few seconds
(3.5 s measured with a fresh profile on a quiet machine, 5 to 7 s with 2 cores under load)."""

from __future__ import annotations

import csv
import html
import io
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests.models import AidCode, RequestStatus
from paris_avenir.audit.models import AuditEvent
from paris_avenir.backoffice.importer import describe, import_youths
from paris_avenir.staff.models import StaffRole, StaffUser
from paris_avenir.stats import service
from paris_avenir.stats.service import AidRow, Cell, OutreachRow, Statistics
from paris_avenir.youths.models import Youth
from tests.conftest import skip_or_fail
from tests.factories import create_aid_request, create_staff, create_youth
from tests.helpers import csrf_token, sign_in_as

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
# The CSV import filter's tokens (LibreOffice help, "CSV Filter Options"): field separator
# 59 (;), text delimiter 34 ("), character set 76 (UTF-8), first line 1, column formats
# (none: standard), language 1036 (fr-FR), quoted fields as text false, detect special
# numbers true (dates as dates).
FRENCH_CSV = "CSV:59,34,76,1,,1036,false,true"
STATUSES: list[RequestStatus] = [
    status for status in RequestStatus if status is not RequestStatus.DRAFT
]


def figures() -> Statistics:
    """Statistics as compute() returns them, with a count, a suppressed cell, a decimal
    median and a response rate of 13.3 %."""

    def counts(granted: float | None) -> dict[RequestStatus, Cell]:
        cells: dict[RequestStatus, Cell] = {status: Cell(None) for status in STATUSES}
        cells[RequestStatus.SUBMITTED] = Cell(42.0)
        cells[RequestStatus.GRANTED] = Cell(granted)
        return cells

    return Statistics(
        aids=[
            AidRow("Allocation Paris avenir", counts(12.0), Cell(54.0), Cell(4.5)),
            AidRow("Garantie contre les impayés (FSL)", counts(None), Cell(42.0), Cell(None)),
        ],
        outreach=[
            OutreachRow("Silencieux depuis longtemps", 2, "SMS", Cell(30.0), Cell(40 / 3)),
        ],
        active_youths=Cell(1234.0),
        quiet_youths=Cell(None),
        statuses=STATUSES,
        as_of=date(2026, 12, 1),
    )


@dataclass(frozen=True)
class Converted:
    csv_as_read: list[tuple[Any, ...]]  # the CSV as LibreOffice Calc fr-FR read it
    xlsx_as_read: list[tuple[Any, ...]]  # our .xlsx as LibreOffice read it (and saved it)
    seconds: list[float]


def _soffice(profile: Path, outdir: Path, source: Path, *arguments: str) -> float:
    started = time.monotonic()
    subprocess.run(
        [
            "soffice",
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--norestore",
            *arguments,
            "--outdir",
            str(outdir),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return time.monotonic() - started


def _rows(path: Path) -> list[tuple[Any, ...]]:
    return list(load_workbook(path).worksheets[0].iter_rows(values_only=True))


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Converted]:
    if shutil.which("soffice") is None:
        skip_or_fail("LibreOffice is not installed (apt-get install libreoffice-calc)")
    work = tmp_path_factory.mktemp("libreoffice")
    profile = work / "profile"  # a profile of this session's own: runs never collide
    stats = figures()
    (work / "statistiques.csv").write_bytes(service.to_csv(stats))
    (work / "telechargement.xlsx").write_bytes(service.to_xlsx(stats))
    (work / "from-csv").mkdir()
    (work / "from-xlsx").mkdir()
    seconds = [
        _soffice(
            profile,
            work / "from-csv",
            work / "statistiques.csv",
            f"--infilter={FRENCH_CSV}",
            "--convert-to",
            "xlsx",
        ),
        _soffice(profile, work / "from-xlsx", work / "telechargement.xlsx", "--convert-to", "xlsx"),
    ]
    print(f"LibreOffice conversions: {', '.join(f'{second:.1f} s' for second in seconds)}")
    yield Converted(
        _rows(work / "from-csv" / "statistiques.xlsx"),
        _rows(work / "from-xlsx" / "telechargement.xlsx"),
        seconds,
    )


def _find(rows: list[tuple[Any, ...]], *start: Any) -> tuple[Any, ...]:
    matches = [row for row in rows if row[: len(start)] == start]
    assert len(matches) == 1, (start, rows)
    return matches[0]


HEADER = (
    "Indicateur",
    "Aide ou motif",
    "Étape",
    "Détail",
    "Valeur",
    "Secret statistique",
    "Arrêté au",
)


@pytest.mark.parametrize("source", ["csv", "xlsx"])
def test_libreoffice_in_french_reads_numbers_dates_and_accents(
    converted: Converted, source: str
) -> None:
    rows = converted.csv_as_read if source == "csv" else converted.xlsx_as_read
    # The BOM is not glued to the first header, the accents are intact.
    assert rows[0] == HEADER
    submitted = _find(rows, "Demandes", "Allocation Paris avenir", None, "Déposée")
    assert submitted[4] == 42 and isinstance(submitted[4], int)
    # A date, not the text "01/12/2026".
    assert isinstance(submitted[6], datetime) and submitted[6].date() == date(2026, 12, 1)
    median = _find(rows, "Délai médian de décision (jours)", "Allocation Paris avenir")
    assert median[4] == pytest.approx(4.5) and isinstance(median[4], float)
    rate = _find(rows, "Taux de réponse (%)", "Silencieux depuis longtemps", 2, "SMS")
    assert rate[4] == pytest.approx(13.3) and isinstance(rate[4], float)
    assert _find(rows, "Jeunes actifs ces 30 derniers jours")[4] == 1234
    hidden = _find(rows, "Demandes", "Garantie contre les impayés (FSL)", None, "Accordée")
    assert hidden[4] is None and hidden[5] == "moins de 10 personnes"
    # Nothing in the "Valeur" column is text: sums and charts work on it.
    assert all(isinstance(row[4], int | float | type(None)) for row in rows[1:])


def test_the_conversions_stay_quick(converted: Converted) -> None:
    assert len(converted.seconds) == 2 and max(converted.seconds) < 60


def test_the_csv_is_what_a_french_excel_expects() -> None:
    content = service.to_csv(figures())
    assert content.startswith(b"\xef\xbb\xbf")  # without it, Excel shows "DÃ©posÃ©e"
    text = content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert rows[0] == list(HEADER)
    rate = next(row for row in rows if row[0] == "Taux de réponse (%)")
    assert rate[4] == "13,3" and rate[6] == "01/12/2026"  # a number, not "13.3 %"
    assert "\r\n" in text and "Déposée" in text


def test_the_xlsx_types_its_cells_and_freezes_its_header() -> None:
    sheet = load_workbook(io.BytesIO(service.to_xlsx(figures()))).worksheets[0]
    assert sheet.freeze_panes == "A2"
    assert all(cell.font.bold for cell in sheet[1])
    rate = next(row for row in sheet.iter_rows(min_row=2) if row[0].value == "Taux de réponse (%)")
    assert rate[4].data_type == "n" and rate[4].value == pytest.approx(13.3)
    assert isinstance(rate[6].value, datetime) and rate[6].value.date() == date(2026, 12, 1)
    assert rate[6].number_format == "DD/MM/YYYY"


async def test_both_downloads_from_the_statistics_page(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    for _number in range(11):
        youth = create_youth(session)
        create_aid_request(session, youth, aid_code=AidCode.NAVIGO, status=RequestStatus.SUBMITTED)
    supervisor = create_staff(session, StaffRole.SUPERVISOR)
    referent = create_staff(session, StaffRole.REFERENT)
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    assert (await client.get("/pro/statistiques.xlsx")).status_code == 403
    client.cookies.clear()
    sign_in_as(client, app, session, staff=supervisor)
    page = await client.get("/pro/statistiques")
    assert (
        'href="/pro/statistiques.xlsx"' in page.text and 'href="/pro/statistiques.csv"' in page.text
    )
    assert "Déposée" in page.text and ">submitted<" not in page.text  # words, not enum values
    workbook = await client.get("/pro/statistiques.xlsx")
    assert workbook.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert ".xlsx" in workbook.headers["content-disposition"]
    rows = list(load_workbook(io.BytesIO(workbook.content)).worksheets[0].values)
    assert _find(rows, "Demandes", "Passe Navigo gratuit", None, "Déposée")[4] == 11
    exported = await client.get("/pro/statistiques.csv")
    assert exported.content.startswith(b"\xef\xbb\xbf")
    assert "Demandes;Passe Navigo gratuit;;Déposée;11;;" in exported.content.decode("utf-8-sig")
    formats = session.scalars(
        select(AuditEvent.detail).where(AuditEvent.action == "stats.export")
    ).all()
    assert sorted(detail["format"] for detail in formats if detail) == ["csv", "xlsx"]


# The import, fed what a French Excel saves.

COLUMNS = (
    "ase_ref;last_name;first_name;birth_date;phone;email;ase_exit_date;referent_email;language"
)


@pytest.fixture
def referent(session: Session) -> StaffUser:
    referent = create_staff(session, StaffRole.REFERENT, email="awa@example.org")
    session.commit()
    return referent


def excel_csv(*lines: str, header: str = COLUMNS, encoding: str = "cp1252") -> bytes:
    """As Excel's "CSV (séparateur : point-virgule)" saves it: Windows-1252, CRLF."""
    return "\r\n".join([header, *lines, ""]).encode(encoding)


def youths(session: Session) -> dict[str, Youth]:
    return {youth.ase_ref: youth for youth in session.scalars(select(Youth))}


def test_a_windows_1252_export_is_imported_with_its_accents_and_says_so(
    session: Session, referent: StaffUser
) -> None:
    content = excel_csv(
        "XL-1;Hérault;Zoé;14/03/2005;06 39 98 40 01;;14/03/2023;awa@example.org;fr",
        "XL-2;Cœur;Ahmad;17/09/2004;;ahmad@example.org;;awa@example.org;fr",
    )
    # é as the single byte 0xE9, and œ as 0x9C, which Latin-1 does not have.
    assert b"H\xe9rault;Zo\xe9" in content and b"C\x9cur" in content
    report = import_youths(session, content, base_url="http://x", now=NOW)
    assert report.errors == [] and report.created == 2
    zoe = youths(session)["XL-1"]
    assert (zoe.last_name, zoe.first_name) == ("Hérault", "Zoé")
    assert zoe.birth_date == date(2005, 3, 14) and zoe.ase_exit_date == date(2023, 3, 14)
    assert youths(session)["XL-2"].last_name == "Cœur"
    assert "Fichier lu en Windows-1252." in describe(report)


def test_a_utf8_file_with_bom_says_utf8(session: Session, referent: StaffUser) -> None:
    content = b"\xef\xbb\xbf" + excel_csv(
        "XL-1;Hérault;Zoé;2005-03-14;;;;awa@example.org;fr", encoding="utf-8"
    )
    report = import_youths(session, content, base_url="http://x", now=NOW)
    assert report.errors == [] and youths(session)["XL-1"].first_name == "Zoé"
    assert "Fichier lu en UTF-8." in describe(report)


def test_trailing_empty_columns_are_ignored(session: Session, referent: StaffUser) -> None:
    content = excel_csv(
        "XL-1;Hérault;Zoé;14/03/2005;;;;awa@example.org;fr;;;",
        "XL-2;Roux;Léa;02/01/2006;;;;awa@example.org;fr",
        ";;;;;;;;;;;",
        header=COLUMNS + ";;;",
    )
    report = import_youths(session, content, base_url="http://x", now=NOW)
    assert report.errors == [], describe(report)
    assert set(youths(session)) == {"XL-1", "XL-2"}


def test_a_named_extra_column_or_a_value_beyond_the_header_is_refused(
    session: Session, referent: StaffUser
) -> None:
    unknown = import_youths(
        session,
        excel_csv("XL-1;Roux;Léa;02/01/2006;;;;awa@example.org;fr;x", header=COLUMNS + ";notes"),
        base_url="http://x",
        now=NOW,
    )
    assert "Ligne 1 : Colonnes inconnues : « notes »." in describe(unknown)
    beyond = import_youths(
        session,
        excel_csv(
            "XL-1;Roux;Léa;02/01/2006;;;;awa@example.org;fr;;;oublié",
            "XL-2;Gebre;Selam;2006-01-02;;;;awa@example.org;fr",
        ),
        base_url="http://x",
        now=NOW,
    )
    text = "\n".join(describe(beyond))
    assert "Ligne 2 : la ligne a plus de valeurs que l’en-tête n’a de colonnes (9)" in text
    assert youths(session) == {}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "XL-3;Roux;Léa;30/11/05;;;;awa@example.org;fr",
            "Ligne 3 : date de naissance « 30/11/05 » avec une année sur deux chiffres",
        ),
        (
            "XL-3;Roux;Léa;14/03/2005;;;30/11/25;awa@example.org;fr",
            "Ligne 3 : date de sortie de l’ASE « 30/11/25 » avec une année sur deux chiffres",
        ),
        (
            # Born in 0025 is what "30/11/25" used to become.
            "XL-3;Roux;Léa;30/11/0025;;;;awa@example.org;fr",
            "Ligne 3 : date de naissance « 30/11/0025 » invraisemblable : le jeune aurait 2001 ans",
        ),
        (
            "XL-3;Roux;Léa;02/12/2010;;;;awa@example.org;fr",
            "Ligne 3 : date de naissance « 02/12/2010 » invraisemblable : le jeune aurait 15 ans "
            "(attendu : de 16 à 26 ans)",
        ),
        (
            "XL-3;Roux;Léa;01/12/1999;;;;awa@example.org;fr",
            "le jeune aurait 27 ans",
        ),
        (
            "XL-3;Roux;Léa;02/12/2026;;;;awa@example.org;fr",
            "Ligne 3 : date de naissance « 02/12/2026 » dans le futur",
        ),
        (
            "XL-3;Roux;Léa;14/03/2005;;;14/03/2003;awa@example.org;fr",
            "Ligne 3 : date de sortie de l’ASE « 14/03/2003 » invraisemblable (attendu : entre "
            "le 01/12/2016 et le 01/12/2028)",
        ),
        (
            "XL-3;Roux;Léa;31/02/2005;;;;awa@example.org;fr",
            "Ligne 3 : date de naissance illisible « 31/02/2005 »",
        ),
    ],
)
def test_an_ambiguous_or_implausible_date_is_refused_with_its_line(
    session: Session, referent: StaffUser, line: str, expected: str
) -> None:
    content = excel_csv(
        "XL-1;Hérault;Zoé;14/03/2005;;;;awa@example.org;fr",
        line,
        "XL-4;Gebre;Selam;2006-01-02;;;;awa@example.org;fr",
    )
    report = import_youths(session, content, base_url="http://x", now=NOW)
    said = describe(report)
    assert said[0] == "Rien n’a été importé : corrigez ces lignes, puis recommencez."
    assert any(expected in sentence for sentence in said), said
    assert [error.line for error in report.errors] == [3]
    assert (
        "Les 2 autres lignes sont correctes : elles seront importées avec le fichier corrigé."
        in said
    )
    assert session.scalar(select(func.count()).select_from(Youth)) == 0


def test_the_boundaries_of_the_ages_are_accepted(session: Session, referent: StaffUser) -> None:
    content = excel_csv(
        # 16 today, and 26 until tomorrow.
        "XL-1;Roux;Léa;01/12/2010;;;;awa@example.org;fr",
        "XL-2;Roux;Max;02/12/1999;;;01/12/2028;awa@example.org;fr",
    )
    report = import_youths(session, content, base_url="http://x", now=NOW)
    assert report.errors == [], describe(report)
    assert report.created == 2


async def test_the_import_page_names_the_encoding_and_refuses_a_two_digit_year(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser
) -> None:
    admin = create_staff(session, StaffRole.ADMIN)
    session.commit()
    sign_in_as(client, app, session, staff=admin)
    token = await csrf_token(client)
    refused = await client.post(
        "/pro/import",
        data={"csrftoken": token},
        files={
            "fichier": (
                "export.csv",
                excel_csv(
                    "XL-1;Hérault;Zoé;30/11/05;;;;awa@example.org;fr",
                    "XL-2;Roux;Léa;02/01/2006;;;;awa@example.org;fr",
                ),
                "text/csv",
            )
        },
    )
    assert refused.status_code == 422
    assert "Ligne 2 : date de naissance « 30/11/05 » avec une année sur deux chiffres" in (
        html.unescape(refused.text)
    )
    assert "L’autre ligne est correcte" in html.unescape(refused.text)
    assert "Fichier lu en Windows-1252." in refused.text
    assert youths(session) == {}
    imported = await client.post(
        "/pro/import",
        data={"csrftoken": token},
        files={
            "fichier": (
                "export.csv",
                excel_csv("XL-1;Hérault;Zoé;30/11/2005;;;;awa@example.org;fr;;"),
                "text/csv",
            )
        },
    )
    assert imported.status_code == 200 and "1 nouveaux jeunes" in imported.text
    assert "Fichier lu en Windows-1252." in imported.text
    session.expire_all()
    assert youths(session)["XL-1"].last_name == "Hérault"


def test_excels_unicode_text_is_read_too(session: Session, referent: StaffUser) -> None:
    # "Texte Unicode (*.txt)": UTF-16 with its BOM, tabs between cells.
    content = "\r\n".join(
        [COLUMNS.replace(";", "\t"), "XL-1\tCœur\tZoé\t14/03/2005\t\t\t\tawa@example.org\tfr", ""]
    ).encode("utf-16")
    assert content.startswith(b"\xff\xfe")
    report = import_youths(session, content, base_url="http://x", now=NOW)
    assert report.errors == [], describe(report)
    assert youths(session)["XL-1"].last_name == "Cœur"
    assert "Fichier lu en UTF-16." in describe(report)


def test_an_unnamed_column_between_named_ones_is_explained(
    session: Session, referent: StaffUser
) -> None:
    header = COLUMNS.replace("birth_date;", "birth_date;;")
    report = import_youths(
        session,
        excel_csv("XL-1;Roux;Léa;02/01/2006;;;;;awa@example.org;fr", header=header),
        base_url="http://x",
        now=NOW,
    )
    assert describe(report)[1:3] == [
        "Ligne 1 : Colonnes sans nom (n° 5) : donnez-leur un nom ou supprimez-les.",
        "Fichier lu en Windows-1252.",
    ]
