"""Issue 5's journey in Chromium: a référent signs in with TOTP, sees a quiet youth flagged,
opens a youth's file (the youth then sees that access), asks for a missing document, then
grants the request; the youth sees each step."""

from __future__ import annotations

import re
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe

from paris_avenir.demo import DEMO_STAFF_PASSWORD
from tests.browser.conftest import (
    DemoYouth,
    LiveServer,
    new_phone_context,
    sign_in_youth,
    unused_totp,
)
from tests.factories import PDF_BYTES

pytestmark = pytest.mark.browser

INES = DemoYouth(2)  # followed by Awa Diallo, her allocation request is "Déposée"


def assert_accessible(page: Any) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, f"{page.url}\n{results.generate_report()}"


def test_a_referent_instructs_a_request_and_the_youth_follows_it(
    live_server: LiveServer, browser: Any
) -> None:
    desk = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    staff = desk.new_page()
    staff.goto(live_server.url + "/pro/connexion")
    staff.get_by_label("E-mail professionnel").fill("referent.diallo@example.org")
    staff.get_by_label("Mot de passe").fill(DEMO_STAFF_PASSWORD)
    staff.get_by_label("Code de votre application d’authentification").fill(
        unused_totp(live_server, "referent.diallo@example.org")
    )
    staff.get_by_role("button", name="Se connecter").click()
    staff.get_by_role("heading", name="Mes jeunes").wait_for()
    assert_accessible(staff)
    # The demo's requests now go through the services, which count the filing as the
    # youth's activity: of Diallo's caseload, Sarah is silent and Hawa never signed in.
    assert staff.locator(".row--quiet").count() >= 1
    assert "jamais connecté" in staff.content()
    assert "silencieux depuis 61 jours" in staff.content()  # Sarah, quiet for two months

    staff.get_by_role("link", name=f"Petit {INES.first_name}").click()
    staff.get_by_role("heading", name="Journal de suivi").wait_for()
    assert_accessible(staff)

    phone = new_phone_context(browser)
    youth = phone.new_page()
    sign_in_youth(youth, live_server, INES)
    youth.goto(live_server.url + "/mon-espace/acces")
    assert "Awa Diallo" in youth.content() and "a consulté votre dossier" in youth.content()

    staff.get_by_role("link", name="Demandes à instruire").click()
    staff.get_by_role("link", name=f"{INES.first_name} Petit").first.click()
    staff.get_by_role("heading", name="Réponses du jeune").wait_for()
    staff.get_by_role("button", name="Prendre en charge").click()
    # Wait for the page the action returns before opening its next form.
    staff.locator(".badge", has_text="En cours d’examen").wait_for()
    staff.get_by_text("Demander des pièces").click()
    staff.get_by_label("Ce qui manque (le jeune lit ce texte)").fill(
        "Il manque votre RIB, s’il vous plaît."
    )
    staff.get_by_role("button", name="Demander au jeune").click()
    staff.get_by_text("Il manque votre RIB, s’il vous plaît.").first.wait_for()
    assert_accessible(staff)

    youth.goto(live_server.url + "/mon-espace/demandes")
    youth.get_by_role("link", name="Allocation Paris avenir").click()
    youth.get_by_role("heading", name="Et maintenant ?").wait_for()
    assert "Il manque un document" in youth.content()
    assert "Il manque votre RIB, s’il vous plaît." in youth.content()

    # The youth adds the RIB on the request's own step, which hands it back in one tap.
    youth.get_by_role("link", name="Ajouter le document demandé").click()
    youth.get_by_role("group", name=re.compile("RIB")).get_by_label(
        "Photo ou fichier"
    ).set_input_files({"name": "rib.pdf", "mimeType": "application/pdf", "buffer": PDF_BYTES})
    youth.get_by_role("button", name="Envoyer à mon référent").click()
    youth.locator(".badge", has_text="En cours d’examen").wait_for()

    staff.reload()
    staff.locator(".badge", has_text="En cours d’examen").wait_for()
    staff.get_by_text("Accorder", exact=True).click()
    staff.get_by_role("button", name="Accorder l’aide").click()
    # Inès earns more than the rule's ceiling: the grant is confirmed, not one click.
    staff.get_by_role(
        "heading", name="Une règle n’est pas remplie : confirmer l’accord ?"
    ).wait_for()
    assert_accessible(staff)
    staff.get_by_label("J’ai vérifié : l’aide est accordée malgré cette règle.").check()
    staff.get_by_role("button", name="Confirmer l’accord").click()
    staff.locator(".badge", has_text="Accordée").wait_for()

    youth.reload()
    youth.get_by_role("heading", name="Et maintenant ?").wait_for()
    assert youth.locator(".badge").first.inner_text() == "Accordée"
    assert "651,69" in youth.content()
    history = youth.locator(".timeline").inner_text()
    for step in ("Déposée", "En cours d’examen", "Il manque un document", "Accordée"):
        assert step in history
    desk.close()
    phone.close()
