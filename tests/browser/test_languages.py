"""Issue 8 in a real browser at 360x640: a youth picks their language with the switch,
signs in and files a request in French, Arabic and Dari, with JavaScript on and off. The
labels the test looks for come from the gettext catalogs, as a youth would read them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe

from paris_avenir.messaging import sms_texts
from paris_avenir.messaging.sms_segments import fit_gsm7
from paris_avenir.web import i18n
from tests.browser.conftest import DemoYouth, LiveServer, new_phone_context, sign_in_youth, words

pytestmark = pytest.mark.browser

# (language, JavaScript, demo youth): youths no other browser test signs in.
JOURNEYS = [
    ("fr", True, 19),
    ("fr", False, 22),
    ("ar", True, 18),
    ("ar", False, 8),
    ("fa_AF", True, 5),
    ("fa_AF", False, 25),
]


def check_page(page: Any, language: str, javascript: bool) -> None:
    """Language and direction of the page; with JavaScript, axe and the 320 px reflow."""
    html = page.locator("html")
    assert html.get_attribute("lang") == i18n.html_lang(language)
    assert html.get_attribute("dir") == i18n.text_direction(language)
    if not javascript:
        return  # axe and measurements run inside the page; the HTML is the same
    results = Axe().run(page)
    assert results.violations_count == 0, f"{page.url}\n{results.generate_report()}"
    page.set_viewport_size({"width": 320, "height": 640})
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    page.set_viewport_size({"width": 360, "height": 640})
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow} px at 320 px"


def check_mirroring_and_numbers(page: Any, language: str, javascript: bool) -> None:
    """Right-to-left pages put the brand on the right; numbers stay left-to-right."""
    brand = page.locator(".brand").bounding_box()
    menu = page.locator(".site-header .nav-list").bounding_box()
    assert brand and menu
    if i18n.text_direction(language) == "rtl":
        assert brand["x"] > menu["x"], "the header is not mirrored"
    else:
        # On a phone the menu may sit under the brand (both at the start of the line).
        assert brand["x"] <= menu["x"]
    numbers = page.locator(".emergency-list .number")
    assert numbers.count() >= 5
    for index in range(numbers.count()):
        assert numbers.nth(index).get_attribute("dir") == "ltr"
    referent_phone = page.locator("a[href^='tel:'] bdi[dir=ltr]")
    if referent_phone.count():
        assert re.fullmatch(r"[0-9 +]+", referent_phone.first.inner_text())
    if javascript:
        direction = numbers.first.evaluate("element => getComputedStyle(element).direction")
        assert direction == "ltr"


def choose_language(page: Any, live: LiveServer, language: str) -> None:
    page.goto(live.url + "/")
    page.get_by_label("Langue").select_option(language)
    page.get_by_role("button", name="Changer").click()
    page.get_by_role("heading", name=words(language, "Besoin d’aide tout de suite ?")).wait_for()


@pytest.mark.parametrize(
    ("language", "javascript", "number"),
    JOURNEYS,
    ids=[f"{language}-{'js' if js else 'no-js'}" for language, js, _number in JOURNEYS],
)
def test_a_youth_signs_in_and_files_a_request_in_their_language(
    live_server: LiveServer, browser: Any, language: str, javascript: bool, number: int
) -> None:
    youth = DemoYouth(number)
    context = new_phone_context(browser, javascript=javascript)
    page = context.new_page()
    choose_language(page, live_server, language)
    check_page(page, language, javascript)
    sms = sign_in_youth(page, live_server, youth, language=language)
    # The code comes in the language the youth is reading, as the outbox sends it.
    code = re.search(r"\b(\d{6})\b", sms)
    assert code
    assert sms == fit_gsm7(sms_texts.render(sms_texts.SIGN_IN_CODE, language, code=code.group(1)))
    check_page(page, language, javascript)
    check_mirroring_and_numbers(page, language, javascript)

    page.get_by_role("link", name=words(language, "Mes droits")).first.click()
    page.get_by_role("heading", name=words(language, "Mes droits"), level=1).wait_for()
    check_page(page, language, javascript)
    page.get_by_role("link", name=words(language, "Premier emploi")).click()
    page.get_by_role("heading", name=words(language, "Est-ce pour vous ?")).wait_for()
    check_page(page, language, javascript)
    page.get_by_role("button", name=words(language, "Faire la demande")).click()

    def step(number: int) -> str:
        return words(language, "Étape %(step)s sur %(count)s", step=number, count=3)

    page.get_by_role("heading", name=step(1)).wait_for()
    check_page(page, language, javascript)
    page.get_by_label(words(language, "Quel travail aimeriez-vous faire ?")).fill("Cuisine")
    page.get_by_label(words(language, "Un emploi"), exact=True).check()
    page.get_by_role("button", name=words(language, "Enregistrer et continuer")).click()
    page.get_by_role("heading", name=step(2)).wait_for()
    check_page(page, language, javascript)
    page.get_by_role("button", name=words(language, "Enregistrer et continuer")).click()
    page.get_by_role("heading", name=step(3)).wait_for()
    check_page(page, language, javascript)
    page.get_by_label(words(language, "Je certifie que mes réponses sont vraies.")).check()
    page.get_by_role("button", name=words(language, "Envoyer ma demande")).click()
    page.get_by_role("heading", name=words(language, "Et maintenant ?")).wait_for()
    check_page(page, language, javascript)
    assert page.locator(".badge").first.inner_text() == words(language, "Déposée")
    context.close()
