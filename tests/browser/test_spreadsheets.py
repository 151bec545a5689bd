"""Spreadsheets in Chromium: the statistics page's two downloads arrive as files a French
spreadsheet opens (the .xlsx typed, the CSV with its BOM), and the import page says which
encoding it read a Windows-1252 export in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from openpyxl import load_workbook
from sqlalchemy import select

from paris_avenir.staff.models import StaffRole, StaffUser
from tests.browser.conftest import LiveServer

pytestmark = pytest.mark.browser

COLUMNS = (
    "ase_ref;last_name;first_name;birth_date;phone;email;ase_exit_date;referent_email;language"
)


def test_the_statistics_downloads_are_files_a_spreadsheet_opens(
    live_server: LiveServer, browser: Any, admin_cookies: list[Any], tmp_path: Path
) -> None:
    desk = browser.new_context(viewport={"width": 360, "height": 640}, locale="fr-FR")
    desk.add_cookies(admin_cookies)
    page = desk.new_page()
    page.goto(live_server.url + "/pro/statistiques")
    with page.expect_download() as xlsx_download:
        page.get_by_role("link", name="Télécharger pour Excel (.xlsx)").click()
    workbook_path = tmp_path / xlsx_download.value.suggested_filename
    xlsx_download.value.save_as(workbook_path)
    assert workbook_path.suffix == ".xlsx"
    sheet = load_workbook(workbook_path).worksheets[0]
    assert [cell.value for cell in sheet[1]][:5] == [
        "Indicateur",
        "Aide ou motif",
        "Étape",
        "Détail",
        "Valeur",
    ]
    assert sheet.freeze_panes == "A2"
    assert all(
        isinstance(row[4], int | float | type(None)) for row in sheet.iter_rows(2, values_only=True)
    )
    with page.expect_download() as csv_download:
        page.get_by_role("link", name="Télécharger en CSV").click()
    content = Path(csv_download.value.path()).read_bytes()
    assert content.startswith(b"\xef\xbb\xbfIndicateur;Aide ou motif;")
    assert page.url.endswith("/pro/statistiques")  # still on the page: a download, no swap
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    desk.close()


def test_the_import_page_says_it_read_windows_1252(
    live_server: LiveServer, browser: Any, admin_cookies: list[Any]
) -> None:
    with live_server.session_factory() as session:
        referent = session.scalars(
            select(StaffUser.email)
            .where(StaffUser.role == StaffRole.REFERENT, StaffUser.is_active.is_(True))
            .order_by(StaffUser.email)
            .limit(1)
        ).one()
    content = "\r\n".join(
        [COLUMNS + ";;", f"XL-B1;Hérault;Zoé;14/03/2005;;;;{referent};fr;;", ""]
    ).encode("cp1252")
    desk = browser.new_context(viewport={"width": 360, "height": 640}, locale="fr-FR")
    desk.add_cookies(admin_cookies)
    page = desk.new_page()
    page.goto(live_server.url + "/pro/import")
    page.get_by_label("Fichier CSV").set_input_files(
        {"name": "export.csv", "mimeType": "text/csv", "buffer": content}
    )
    page.get_by_label("Essai : vérifier sans rien enregistrer").check()  # nothing written
    page.get_by_role("button", name="Importer", exact=True).click()
    status = page.get_by_role("status").filter(has_text="Fichier lu en Windows-1252.")
    status.wait_for()
    assert "1 nouveaux jeunes" in status.inner_text()
    desk.close()
