"""The ASE import in Chromium (issue 13): an admin's file changes a followed youth's phone;
the check lists it apart, masked, axe-clean at 360x640 and 1280x800; nothing changes until
the admin confirms; then the previous phone gets the notice, and the youth, signing in by
email, reads in "Qui a consulté mon dossier" who changed the number."""

from __future__ import annotations

from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from sqlalchemy import select

from paris_avenir.messaging import sms_texts
from paris_avenir.messaging.sms_segments import fit_gsm7
from paris_avenir.staff import assignments
from paris_avenir.youths.models import Youth
from tests.browser.conftest import DemoYouth, LiveServer, new_phone_context, sign_in_youth

pytestmark = pytest.mark.browser

YOUTH = DemoYouth(29)  # no other browser test uses this youth
NEW_PHONE = "+33639989929"
HEADER = "ase_ref;last_name;first_name;birth_date;phone;email;ase_exit_date;referent_email;language"


def assert_accessible(page: Any) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, f"{page.url}\n{results.generate_report()}"


def export_with_new_phone(live: LiveServer) -> bytes:
    """The youth's line as the ASE export writes it, with another phone."""
    with live.session_factory() as session:
        youth = session.scalars(select(Youth).where(Youth.phone == YOUTH.phone)).one()
        referent = assignments.current_referent(session, youth.id)
        assert referent is not None
        values = [
            youth.ase_ref,
            youth.last_name,
            youth.first_name,
            youth.birth_date.isoformat(),
            "06 39 98 99 29",
            youth.email or "",
            youth.ase_exit_date.isoformat() if youth.ase_exit_date else "",
            referent.email,
            youth.language,
        ]
    return ("\n".join([HEADER, ";".join(values)]) + "\n").encode()


def check_file(page: Any, live: LiveServer, content: bytes) -> None:
    page.goto(live.url + "/pro/import")
    page.get_by_label("Fichier CSV").set_input_files(
        {"name": "export.csv", "mimeType": "text/csv", "buffer": content}
    )
    page.get_by_label("Essai : vérifier sans rien enregistrer").check()
    page.get_by_role("button", name="Importer", exact=True).click()
    page.get_by_role("heading", name="Changements sur des jeunes déjà suivis").wait_for()


def current_phone(live: LiveServer) -> str | None:
    with live.session_factory() as session:
        return session.scalar(select(Youth.phone).where(Youth.email == YOUTH.email))


def test_an_admins_phone_change_is_checked_confirmed_told_and_shown_to_the_youth(
    live_server: LiveServer, browser: Any, admin_cookies: list[Any]
) -> None:
    content = export_with_new_phone(live_server)
    for width, height in ((360, 640), (1280, 800)):
        desk = browser.new_context(viewport={"width": width, "height": height}, locale="fr-FR")
        desk.add_cookies(admin_cookies)
        page = desk.new_page()
        check_file(page, live_server, content)
        table = page.get_by_role("table", name="Avant et après, ligne par ligne")
        assert "06 •• •• •• 29" in table.inner_text().replace(
            "\u00a0", " "
        )  # before and after, both masked
        assert "06 39 98" not in page.content()
        assert_accessible(page)
        # Nothing fits wider than the phone: the table scrolls inside its own region.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        if width == 360:
            desk.close()
    assert current_phone(live_server) == YOUTH.phone, "a check changes nothing"

    sms_before = live_server.sms_count()
    page.get_by_role("button", name="Confirmer ce changement et importer le fichier").click()
    page.get_by_text("Importé : 0 nouveaux jeunes").wait_for()
    assert_accessible(page)
    desk.close()
    assert current_phone(live_server) == NEW_PHONE

    live_server.dispatch_outbox()
    notice = live_server.last_sms_to(YOUTH.phone, after=sms_before)
    # In the youth's language (this one reads English), whatever the importer's.
    with live_server.session_factory() as session:
        language = session.scalar(select(Youth.language).where(Youth.email == YOUTH.email))
    assert language is not None
    assert notice == fit_gsm7(sms_texts.render(sms_texts.PHONE_CHANGED, language))
    assert "changed" in notice if language == "en" else "changé" in notice

    phone = new_phone_context(browser)
    youth = phone.new_page()
    sign_in_youth(youth, live_server, YOUTH, by_email=True)
    youth.goto(live_server.url + "/mon-espace/acces")
    entry = youth.get_by_role("listitem").filter(has_text="a changé votre numéro de téléphone")
    assert "Agent Navigateur" in entry.first.inner_text()
    assert_accessible(youth)
    phone.close()
