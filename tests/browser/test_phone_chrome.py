"""The chrome around every page on a small phone: a menu of two rows at most with no word
broken, one "Besoin d'aide tout de suite ?" line on signed-in pages (the whole block on
public ones), and "Mon espace" in the header for a signed-in youth on every page."""

from __future__ import annotations

from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.browser.conftest import LiveServer, new_phone_context, words

pytestmark = pytest.mark.browser

LANGUAGES = ["fr", "en", "ar", "fa_AF", "ps", "ti"]

# For each link of a menu: its height, the height of one line of its text, and how many
# lines its text takes (a label that wraps, "Mes / demandes", takes two).
MENU_GEOMETRY = """(selector) => {
  const menu = document.querySelector(selector);
  const links = [...menu.querySelectorAll('a, button')];
  const tops = new Set(links.map((link) => Math.round(link.getBoundingClientRect().top)));
  const wrapped = links.filter((link) => {
    const range = document.createRange();
    range.selectNodeContents(link);
    const line = parseFloat(getComputedStyle(link).lineHeight);
    return range.getBoundingClientRect().height > 1.5 * line;
  }).map((link) => link.textContent.trim());
  return {rows: tops.size, height: menu.getBoundingClientRect().height, wrapped,
          overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth};
}"""


@pytest.fixture
def youth_context(browser: Any, live_server: LiveServer, youth_cookies: list[Any]) -> Any:
    contexts: list[Any] = []

    def open_context(language: str = "fr", *, javascript: bool = True, width: int = 320) -> Any:
        context = new_phone_context(browser, javascript=javascript, width=width)
        context.add_cookies(youth_cookies)
        context.add_cookies([{"name": "langue", "value": language, "url": live_server.url}])
        contexts.append(context)
        return context

    yield open_context
    for context in contexts:
        context.close()


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_space_menu_fits_two_rows_at_320_px_without_breaking_a_word(
    live_server: LiveServer, youth_context: Any, language: str
) -> None:
    page = youth_context(language).new_page()
    page.goto(live_server.url + "/mon-espace/demandes")
    space = page.evaluate(MENU_GEOMETRY, ".space-nav")
    header = page.evaluate(MENU_GEOMETRY, ".site-header nav")
    print(f"menu at 320 px, {language}: {space} / header {header}")
    assert space["rows"] <= 2, space
    assert space["wrapped"] == [], space
    assert header["rows"] <= 1 and header["wrapped"] == [], header
    assert space["overflow"] <= 0
    # The page's place in the menu, and every part of the space one tap away.
    current = page.locator(".space-nav [aria-current=page]")
    assert current.inner_text() == words(language, "Demandes")
    assert page.locator(".space-nav a").count() == 6


def test_signed_in_pages_show_one_help_line_that_opens_the_numbers(
    live_server: LiveServer, youth_context: Any
) -> None:
    for javascript in (True, False):
        page = youth_context(javascript=javascript, width=360).new_page()
        page.goto(live_server.url + "/mon-espace")
        footer = page.locator(".site-footer")
        summary = footer.get_by_text("Besoin d’aide tout de suite ?")
        assert summary.is_visible()
        # Closed: one line, the numbers hidden, and no second emergency block in the page.
        assert not footer.get_by_role("link", name="115 Pour dormir ce soir.").is_visible()
        assert page.get_by_role("heading", name="Besoin d’aide tout de suite ?").count() == 0
        assert footer.bounding_box()["height"] < 200
        summary.click()
        call = footer.get_by_role("link", name="115 Pour dormir ce soir.")
        assert call.is_visible()
        assert call.get_attribute("href") == "tel:115"
        results = Axe().run(page) if javascript else None
        page.close()
        if results is not None:
            assert results.violations_count == 0, results.generate_report()


def test_public_pages_show_the_whole_emergency_block(live_server: LiveServer, browser: Any) -> None:
    context = new_phone_context(browser, javascript=False)
    page = context.new_page()
    for path in ("/", "/connexion"):
        page.goto(live_server.url + path)
        assert page.get_by_role("heading", name="Besoin d’aide tout de suite ?").count() == 1
        assert page.get_by_role("link", name="3114 Si vous pensez au suicide.").is_visible()
    context.close()


def test_a_signed_in_youth_sees_mon_espace_in_the_header_on_every_page(
    live_server: LiveServer, youth_context: Any
) -> None:
    for javascript in (True, False):
        page = youth_context(javascript=javascript, width=360).new_page()
        for path in ("/", "/connexion", "/mon-espace/profil"):
            page.goto(live_server.url + path)
            header = page.locator(".site-header")
            assert header.get_by_role("link", name="Mon espace").is_visible(), path
            assert header.get_by_role("button", name="Se déconnecter").is_visible(), path
            assert header.get_by_role("link", name="Se connecter").count() == 0, path
        page.goto(live_server.url + "/")
        header.get_by_role("link", name="Mon espace").click()
        page.wait_for_url(live_server.url + "/mon-espace")
        assert page.get_by_role("heading", level=1).inner_text().startswith("Bonjour")
        results = Axe().run(page) if javascript else None
        page.close()
        if results is not None:
            assert results.violations_count == 0, results.generate_report()
