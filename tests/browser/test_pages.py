"""Every page, in a real browser at 360x640: accessible, light, self-contained."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.browser.conftest import LiveServer, new_phone_context

pytestmark = pytest.mark.browser

# Every page, by who can reach it; later issues add theirs here.
PUBLIC_PAGES = {
    "accueil": "/",
    "page introuvable": "/cette-page-n-existe-pas",
    "connexion": "/connexion",
    "connexion des professionnels": "/pro/connexion",
    "lien expiré": "/lien/expire",
}
YOUTH_PAGES = {
    "mon espace": "/mon-espace",
    "qui a consulté mon dossier": "/mon-espace/acces",
    "mes droits": "/mon-espace/droits",
    "une aide": "/mon-espace/droits/allocation",
    "une aide sur rendez-vous": "/mon-espace/droits/psychologue",
    "mes demandes": "/mon-espace/demandes",
    "mes documents": "/mon-espace/documents",
    "messages": "/mon-espace/messages",
    "mon profil": "/mon-espace/profil",
    "mes données": "/mon-espace/donnees",
    "supprimer mon compte": "/mon-espace/suppression",
    "mes rendez-vous": "/mon-espace/rendez-vous",
    "choisir un créneau": "/mon-espace/rendez-vous/nouveau?motif=referent",
}
STAFF_PAGES = {
    "mes jeunes": "/pro",
    "jeunes silencieux": "/pro?filtre=silencieux&tri=nom",
    "demandes à instruire": "/pro/demandes",
    "mon équipe": "/pro/equipe",
    "importer": "/pro/import",
    "statistiques": "/pro/statistiques",
    "agenda": "/pro/agenda",
    "disponibilités": "/pro/disponibilites",
}
ADMIN_PAGES = {
    "paramètres des aides": "/pro/admin/aides",
    "comptes": "/pro/admin/agents",
    "règles des relances": "/pro/admin/relances",
    "textes des sms": "/pro/admin/messages",
}
ALL_PAGES = {**PUBLIC_PAGES, **YOUTH_PAGES, **STAFF_PAGES, **ADMIN_PAGES}
PAGE_WEIGHT_BUDGET = 50 * 1024
# Pages a youth may read in their language (the back office stays in French).
MULTILINGUAL_PAGES = {
    name: path
    for name, path in {**PUBLIC_PAGES, **YOUTH_PAGES}.items()
    if not path.startswith("/pro")
}
LANGUAGES = ["fr", "en", "ar", "fa_AF", "ps", "ti"]


def pages_in(languages: list[str], pages: dict[str, str]) -> list[Any]:
    """(language, path) pairs; French for every page, the others where a youth reads them."""
    pairs = [
        pytest.param("fr", path, id=f"fr-{name}")
        for name, path in pages.items()
        if "fr" in languages
    ]
    pairs += [
        pytest.param(language, path, id=f"{language}-{name}")
        for language in languages
        if language != "fr"
        for name, path in pages.items()
        if name in MULTILINGUAL_PAGES
    ]
    return pairs


@pytest.fixture
def context_for(browser: Any, live_server: LiveServer, request: pytest.FixtureRequest) -> Any:
    """A fresh phone context (cold cache) with the cookies of whoever may see the page."""
    opened: list[Any] = []

    def open_context(path: str, language: str = "fr", **options: Any) -> Any:
        context = new_phone_context(browser, **options)
        if path in YOUTH_PAGES.values():
            context.add_cookies(request.getfixturevalue("youth_cookies"))
        elif path in STAFF_PAGES.values():
            context.add_cookies(request.getfixturevalue("staff_cookies"))
        elif path in ADMIN_PAGES.values():
            context.add_cookies(request.getfixturevalue("admin_cookies"))
        # The language switch's cookie, as if the youth had chosen it on this phone.
        context.add_cookies([{"name": "langue", "value": language, "url": live_server.url}])
        opened.append(context)
        return context

    yield open_context
    for context in opened:
        context.close()


@pytest.mark.parametrize(("language", "path"), pages_in(["fr", "ar"], ALL_PAGES))
def test_page_has_no_axe_violation_at_360x640(
    live_server: LiveServer, context_for: Any, language: str, path: str
) -> None:
    context = context_for(path, language)
    page = context.new_page()
    page.goto(live_server.url + path)
    assert page.locator("html").get_attribute("lang") == language.replace("_", "-")
    results = Axe().run(page)
    context.close()
    assert results.violations_count == 0, results.generate_report()


@pytest.mark.parametrize(("language", "path"), pages_in(LANGUAGES, {**PUBLIC_PAGES, **YOUTH_PAGES}))
def test_first_load_is_light_and_stays_on_our_host(
    live_server: LiveServer, context_for: Any, language: str, path: str
) -> None:
    context = context_for(path, language)
    page = context.new_page()
    finished: list[Any] = []
    page.on("requestfinished", lambda request: finished.append(request))
    page.goto(live_server.url + path, wait_until="networkidle")
    transferred = 0
    for request in finished:
        sizes = request.sizes()
        transferred += sizes["responseBodySize"] + sizes["responseHeadersSize"]
    hosts = {urlsplit(request.url).netloc for request in finished}
    share = transferred / PAGE_WEIGHT_BUDGET
    print(f"page weight {language} {path}: {transferred} bytes ({share:.0%} of budget)")
    context.close()
    assert hosts == {urlsplit(live_server.url).netloc}, f"requests to other hosts: {hosts}"
    assert 0 < transferred <= PAGE_WEIGHT_BUDGET, f"{path}: {transferred} bytes"


@pytest.mark.parametrize("width", [320, 360])
@pytest.mark.parametrize("language", ["fr", "ar", "fa_AF"])
@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/connexion",
        "/mon-espace",
        "/mon-espace/droits/allocation",
        "/mon-espace/demandes",
        "/mon-espace/documents",
        "/mon-espace/profil",
    ],
)
def test_pages_reflow_without_horizontal_scrolling(
    live_server: LiveServer, context_for: Any, width: int, language: str, path: str
) -> None:
    context = context_for(path, language, width=width)
    page = context.new_page()
    page.goto(live_server.url + path)
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    context.close()
    assert overflow <= 0


def test_home_page_works_without_javascript(live_server: LiveServer, browser: Any) -> None:
    context = new_phone_context(browser, javascript=False)
    page = context.new_page()
    page.goto(live_server.url + "/")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Paris avenir")
    assert page.get_by_role("link", name="Se connecter").first.is_visible()
    assert page.get_by_role("heading", name="Besoin d’aide tout de suite ?").is_visible()
    context.close()


def test_htmx_runs_under_the_content_security_policy(live_server: LiveServer, browser: Any) -> None:
    context = new_phone_context(browser)
    page = context.new_page()
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(live_server.url + "/")
    page.wait_for_function("window.htmx !== undefined")
    # A boosted navigation swaps the page in place and updates the title.
    page.get_by_role("link", name="Paris avenir").click()
    page.wait_for_load_state("networkidle")
    title = page.title()
    context.close()
    assert title == "Accueil – Paris avenir"
    assert errors == []
