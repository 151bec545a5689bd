"""The youth's journey of issue 4, in Chromium at 360x640, with JavaScript on and off:
sign in, check the rights, file an allocation with two documents of the vault, see it
"Déposée", read the référent's message and answer. Every page on the way is axe-clean."""

from __future__ import annotations

import io
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from PIL import Image

from tests.browser.conftest import DemoYouth, LiveServer, new_phone_context, sign_in_youth
from tests.factories import PDF_BYTES

pytestmark = pytest.mark.browser


def check_accessibility(page: Any, javascript: bool) -> None:
    """axe runs inside the page, so only with JavaScript on; the HTML is the same without."""
    if javascript:
        results = Axe().run(page)
        assert results.violations_count == 0, f"{page.url}\n{results.generate_report()}"


def photo_of_a_document() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), (230, 230, 240)).save(buffer, format="JPEG")
    return buffer.getvalue()


def add_from_step(
    page: Any, label: str, filename: str, content: bytes, mime: str, javascript: bool
) -> None:
    """In the documents step itself: the row's « Photo ou fichier »."""
    page.get_by_role("group", name=label, exact=True).get_by_label(
        "Photo ou fichier"
    ).set_input_files({"name": filename, "mimeType": mime, "buffer": content})


@pytest.mark.parametrize(("javascript", "number"), [(True, 9), (False, 17)], ids=["js", "no-js"])
def test_a_youth_files_an_allocation_and_answers_the_referent(
    live_server: LiveServer, browser: Any, javascript: bool, number: int
) -> None:
    youth = DemoYouth(number)
    context = new_phone_context(browser, javascript=javascript)
    page = context.new_page()
    sign_in_youth(page, live_server, youth)

    page.get_by_role("link", name="Mes droits").first.click()
    page.get_by_role("heading", name="Mes droits", level=1).wait_for()
    check_accessibility(page, javascript)
    page.get_by_role("link", name="Allocation Paris avenir").click()
    page.get_by_role("heading", name="Est-ce pour vous ?").wait_for()
    assert "651,69" in page.content()
    page.get_by_role("button", name="Faire la demande").click()

    page.get_by_role("heading", name="Étape 1 sur 3").wait_for()
    check_accessibility(page, javascript)
    page.get_by_label("Je cherche du travail").check()
    page.get_by_label("Combien gagnez-vous par mois, en euros ?").fill("120")
    page.get_by_role(
        "group", name="Votre famille vous aide-t-elle avec de l’argent ?"
    ).get_by_label("Non").check()
    page.get_by_role("button", name="Enregistrer et continuer").click()

    page.get_by_role("heading", name="Étape 2 sur 3").wait_for()
    check_accessibility(page, javascript)
    add_from_step(
        page, "Pièce d’identité", "carte.jpg", photo_of_a_document(), "image/jpeg", javascript
    )
    add_from_step(
        page,
        "RIB (relevé d’identité bancaire)",
        "rib.pdf",
        PDF_BYTES,
        "application/pdf",
        javascript,
    )
    page.get_by_role("button", name="Enregistrer et continuer").click()

    page.get_by_role("heading", name="Étape 3 sur 3").wait_for()
    check_accessibility(page, javascript)
    assert "carte.jpg" in page.content() and "rib.pdf" in page.content()
    page.get_by_label("Je certifie que mes réponses sont vraies.").check()
    page.get_by_role("button", name="Envoyer ma demande").click()
    page.get_by_role("heading", name="Et maintenant ?").wait_for()
    check_accessibility(page, javascript)
    assert page.locator(".badge").first.inner_text() == "Déposée"

    page.get_by_role("link", name="Messages").first.click()
    page.get_by_role("link", name="Mon référent").click()
    page.get_by_role("heading", name="Répondre").wait_for()
    check_accessibility(page, javascript)
    assert f"Bonjour {youth.first_name}" in page.content()
    page.get_by_label("Votre message").fill("Merci, j'ai envoyé ma demande d'allocation.")
    page.get_by_role("button", name="Envoyer", exact=True).click()
    page.get_by_text("Merci, j'ai envoyé ma demande d'allocation.").wait_for()
    assert page.locator(".message--mine .message__receipt").last.inner_text() == "Envoyé"
    context.close()
