"""Issue 15 in Chromium: the staff pages speak French. A référent, a supervisor, an admin and
a psychologist each walk the pages their menu leads to; no page shows a code of any enum
(statuses, kinds, places, roles, reasons…) nor a raw answer of a request form. Each role lands
on its own home; the changed pages pass axe; the youth reads the staff's work on their file
grouped per person and day."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from paris_avenir.aid_requests import kinds as catalogue
from paris_avenir.aid_requests.models import AidCode
from paris_avenir.backoffice import labels
from paris_avenir.demo import DEMO_STAFF_PASSWORD
from tests.browser.conftest import (
    DemoYouth,
    LiveServer,
    new_phone_context,
    sign_in_youth,
    unused_totp,
)

pytestmark = pytest.mark.browser

INES = DemoYouth(2)  # followed by Awa Diallo
# Codes that are also ordinary French words a page may use in its sentences ("au guichet",
# "un message", "à la rue"): a raw code that is a word cannot be told from the word. The
# others (reserve, annule, deposee, referent, cdi, sms, point_regulier…) must never show.
FRENCH_WORDS = {
    "allocation",
    "appeler",
    "apprentissage",
    "autre",
    "bail",
    "bourse",
    "bureau",
    "connexion",
    "couple",
    "date",
    "enfant",
    "fait",
    "formation",
    "guichet",
    "inconnu",
    "injoignable",  # « numéro injoignable », a badge of the caseload
    "invitation",
    "joint",
    "lien",
    "logement",
    "manque",
    "message",
    "navigo",
    "non",
    "oui",
    "photo",
    "poste",
    "psychologue",
    "recherche",
    "ressources",  # « justificatifs de ressources », in a task's hint
    "rue",
    "seul",
    "stable",
    "stage",
    "superviseur",
    "transmis",
    "urgence",
    "visio",
}


def raw_values() -> set[str]:
    values = {member.value for enum_class in labels.MAPPINGS for member in enum_class}
    values |= {code.value for code in AidCode}
    values |= {
        choice
        for kind in catalogue.all_kinds()
        for field in kind.questions
        for choice, _label in field.choices
    }
    return values - FRENCH_WORDS


def codes_in(text: str, values: set[str]) -> list[str]:
    text = re.sub(r"\S+@\S+", " ", text)  # staff emails (referent.diallo@…) are not codes
    return sorted(
        value
        for value in values
        if re.search(r"(?<![\w·’'-])" + re.escape(value) + r"(?![\w·’'-])", text)
    )


def assert_accessible(page: Any) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, f"{page.url}\n{results.generate_report()}"


def sign_in_demo(page: Any, live: LiveServer, email: str) -> None:
    """A demo account; a TOTP code works once, so another test's sign-in in the same
    30 seconds means waiting for the next code."""
    for _attempt in range(3):
        page.goto(live.url + "/pro/connexion")
        page.get_by_label("E-mail professionnel").fill(email)
        page.get_by_label("Mot de passe").fill(DEMO_STAFF_PASSWORD)
        page.get_by_label("Code de votre application d’authentification").fill(
            unused_totp(live, email)
        )
        page.get_by_role("button", name="Se connecter").click()
        try:
            page.wait_for_url(lambda url: "/pro/connexion" not in url, timeout=8000)
            return
        except PlaywrightTimeout:
            time.sleep(31 - time.time() % 30)
    raise AssertionError(f"{email} could not sign in")


def walk(page: Any, live: LiveServer, *, limit: int = 30) -> dict[str, str]:
    """The pages the menu and their links lead to (GET only), each page's text."""
    seen: dict[str, str] = {}
    todo = [urlsplit(page.url).path + ("?" + urlsplit(page.url).query if "?" in page.url else "")]
    shapes: dict[str, int] = {}
    while todo and len(seen) < limit:
        path = todo.pop(0)
        if path in seen:
            continue
        # One or two of each kind of page: a youth's file, a request, a day of the agenda.
        shape = re.sub(r"[0-9a-f-]{36}|\d{4}-\d{2}-\d{2}", "X", path.split("?")[0])
        shapes[shape] = shapes.get(shape, 0) + 1
        if shapes[shape] > 2:
            continue
        page.goto(live.url + path)
        # <code> holds what is typed or read by a machine on purpose (the CSV columns of
        # the import, an error detail): not words for a person, so not checked.
        seen[path] = page.evaluate(
            "() => { const body = document.body.cloneNode(true);"
            " body.querySelectorAll('code').forEach(e => e.remove());"
            " document.documentElement.appendChild(body); const text = body.innerText;"
            " body.remove(); return text; }"
        )
        for href in page.eval_on_selector_all(
            "a[href^='/pro']", "els => els.map(e => e.getAttribute('href'))"
        ):
            href = href.split("#")[0]
            if any(part in href for part in ("/documents/", ".csv", ".xlsx", ".ics", "connexion")):
                continue
            if href not in seen:
                todo.append(href)
    return seen


@pytest.mark.parametrize(
    ("email", "home_heading", "home_path"),
    [
        ("referent.diallo@example.org", "Mes jeunes", "/pro"),
        ("superviseure@example.org", "Mon équipe et les demandes", "/pro"),
        ("admin@example.org", "Administration", "/pro/admin"),
        ("psychologue@example.org", "Mon agenda", "/pro/agenda"),
    ],
)
def test_staff_pages_show_words_never_codes(
    live_server: LiveServer, browser: Any, email: str, home_heading: str, home_path: str
) -> None:
    desk = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    page = desk.new_page()
    sign_in_demo(page, live_server, email)
    # Each role lands on its own home.
    assert urlsplit(page.url).path == home_path
    page.get_by_role("heading", name=home_heading).first.wait_for()
    assert_accessible(page)
    if email.startswith("admin"):
        assert "0 jeunes" not in page.locator("body").inner_text()

    values = raw_values()
    pages = walk(page, live_server)
    assert len(pages) >= 5, pages.keys()
    shown = {path: codes_in(text, values) for path, text in pages.items()}
    assert {path: found for path, found in shown.items() if found} == {}
    desk.close()


def test_changed_staff_pages_pass_axe(live_server: LiveServer, browser: Any) -> None:
    desk = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    page = desk.new_page()
    sign_in_demo(page, live_server, "admin@example.org")
    for path in ("/pro/admin", "/pro/admin/messages", "/pro/admin/aides", "/pro/statistiques"):
        page.goto(live_server.url + path)
        assert_accessible(page)
    # The SMS editor shows the default text, and counts Arabic in UCS-2 (with JavaScript).
    page.goto(live_server.url + "/pro/admin/messages")
    arabic = page.locator("#invitation-ar")
    assert "Texte par défaut" in arabic.inner_text()
    assert "UCS-2" in arabic.locator("output").inner_text()
    arabic.locator("textarea").fill("Paris avenir {link}")
    assert arabic.locator("output").inner_text() == "1 SMS (GSM-7)"
    arabic.locator("textarea").fill("باريس أفنير: مساحتك مفتوحة. ادخل من هنا {link}")
    assert re.fullmatch(r"[23] SMS \(UCS-2\)", arabic.locator("output").inner_text())
    arabic.locator("textarea").fill("")
    assert arabic.locator("output").inner_text().endswith("(UCS-2) — texte par défaut")
    desk.close()

    desk = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    page = desk.new_page()
    sign_in_demo(page, live_server, "referent.diallo@example.org")
    page.goto(live_server.url + "/pro/disponibilites")
    assert_accessible(page)
    # Her request is reached from her file: the queue only lists what is still to decide,
    # and other tests sharing this server may have decided it already.
    page.goto(live_server.url + "/pro")
    page.get_by_role("link", name=f"Petit {INES.first_name}").click()
    page.locator("a[href^='/pro/demandes/']").first.click()
    page.get_by_role("heading", name="Réponses du jeune").wait_for()
    assert_accessible(page)
    page.goto(live_server.url + "/pro")
    page.get_by_role("link", name=f"Petit {INES.first_name}").click()
    page.get_by_role("heading", name="Journal de suivi").wait_for()
    # No consent ticked: the counter section stays open with the message.
    page.get_by_text("Mode guichet : agir pour le jeune présent").click()
    page.get_by_role("button", name="Commencer").click()
    page.locator("#guichet-erreur").wait_for()
    assert page.locator("details#guichet[open]").count() == 1
    assert "Cochez la case" in page.locator("body").inner_text()
    assert_accessible(page)
    desk.close()


def test_the_youth_reads_the_staff_work_grouped(live_server: LiveServer, browser: Any) -> None:
    desk = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    staff = desk.new_page()
    sign_in_demo(staff, live_server, "referent.diallo@example.org")
    for _time in range(3):
        staff.goto(live_server.url + "/pro")
        staff.get_by_role("link", name=f"Petit {INES.first_name}").click()
        staff.get_by_role("heading", name="Journal de suivi").wait_for()
    desk.close()

    phone = new_phone_context(browser)
    youth = phone.new_page()
    sign_in_youth(youth, live_server, INES)
    youth.goto(live_server.url + "/mon-espace/acces")
    first = youth.locator(".access-list > li").first
    text = first.inner_text()
    assert "Awa Diallo" in text
    match = re.search(r"a consulté votre dossier \((\d+) fois\)", text)
    assert match and int(match.group(1)) >= 3
    assert re.search(r"Le \w+ \d+ \w+ \d{4}(, de \d\d:\d\d à \d\d:\d\d| à \d\d:\d\d)", text)
    assert_accessible(youth)
    phone.close()
