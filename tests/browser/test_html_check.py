"""The HTML check records what the browser tests visit (tests/html_check.py), and the pages
the testers' Nu HTML Checker run flagged are now valid: a youth's documents (each one's
"Supprimer" form used to sit inside a <p>) and the statistics (an unescaped "<")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests import html_check
from tests.browser.conftest import DemoYouth, LiveServer, new_phone_context, sign_in_youth
from tests.factories import PDF_BYTES

pytestmark = pytest.mark.browser


def recorded(live: LiveServer, path: str, holding: bytes) -> html_check.Document:
    """The page in the state this test put it in (holding `holding`). Pages are recorded
    once per shape for the whole run, so on the second database the copy may be the
    first server's, which has the same markup."""
    found = [
        document
        for (route, _), document in html_check.RECORDER.documents.items()
        if route[1] == path and holding in document.html
    ]
    assert found, f"{path} was not recorded"
    return found[0]


def test_the_documents_and_statistics_pages_are_recorded_and_valid(
    live_server: LiveServer, browser: Any, staff_cookies: list[Any], tmp_path: Path
) -> None:
    # Without JavaScript each page is a navigation; with it, htmx's boosted requests.
    context = new_phone_context(browser, javascript=False)
    page = context.new_page()
    sign_in_youth(page, live_server, DemoYouth(24))
    page.goto(live_server.url + "/mon-espace/documents")
    page.get_by_label("Quel document ?").select_option(label="RIB (relevé d’identité bancaire)")
    page.get_by_label("Photo ou fichier").set_input_files(
        {"name": "rib.pdf", "mimeType": "application/pdf", "buffer": PDF_BYTES}
    )
    page.get_by_role("button", name="Ajouter", exact=True).click()
    page.get_by_text("Le document est ajouté.").wait_for()
    delete = page.get_by_role("button", name="Supprimer : RIB (relevé d’identité bancaire)")
    assert delete.is_visible()
    context.close()

    staff = browser.new_context()
    staff.add_cookies(staff_cookies)
    page = staff.new_page()
    page.goto(live_server.url + "/pro/statistiques")
    assert "est masquée (« < 10 »)" in page.locator("main").inner_text()
    staff.close()

    vault = recorded(live_server, "/mon-espace/documents", b"/supprimer")
    statistics = recorded(live_server, "/pro/statistiques", "« &lt; 10 »".encode())
    assert html_check.check([vault, statistics], tmp_path) == []
