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
    "vérifier une attestation": "/verifier",
    "lien de rendez-vous invalide": "/r/invalide",
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
    "à faire": "/pro/a-faire",
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
    "conservation des dossiers": "/pro/admin/conservation",
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


def first_load(page: Any, url: str) -> tuple[int, set[str]]:
    """Bytes transferred (bodies and headers, compressed) to load `url` with a cold cache,
    and the hosts asked."""
    finished: list[Any] = []
    pending: set[Any] = set()

    def done(request: Any) -> None:
        pending.discard(request)
        finished.append(request)

    page.on("request", lambda request: pending.add(request))
    page.on("requestfinished", done)
    page.on("requestfailed", lambda request: pending.discard(request))
    page.goto(url, wait_until="load")
    # And what the page asks for after its load event (app.js registers the service worker
    # then): settled once nothing is in flight for 100 ms. Playwright's "networkidle" waits
    # 500 ms whatever happens, a minute and a half over this test's 230 runs.
    quiet = 0
    while quiet < 4:
        page.wait_for_timeout(25)
        quiet = 0 if pending else quiet + 1
    transferred = 0
    for request in finished:
        sizes = request.sizes()
        transferred += sizes["responseBodySize"] + sizes["responseHeadersSize"]
    return transferred, {urlsplit(request.url).netloc for request in finished}


@pytest.mark.parametrize(("language", "path"), pages_in(LANGUAGES, {**PUBLIC_PAGES, **YOUTH_PAGES}))
def test_first_load_is_light_and_stays_on_our_host(
    live_server: LiveServer, context_for: Any, language: str, path: str
) -> None:
    context = context_for(path, language)
    transferred, hosts = first_load(context.new_page(), live_server.url + path)
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


CACHED_URLS = """async () => {
  const paths = [];
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    for (const request of await cache.keys()) paths.push(new URL(request.url).pathname);
  }
  return paths;
}"""


def test_offline_a_page_shows_the_offline_page_and_nothing_private_is_stored(
    live_server: LiveServer, context_for: Any
) -> None:
    context = context_for("/mon-espace")
    page = context.new_page()
    page.goto(live_server.url + "/mon-espace")
    assert page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.get_by_role("link", name="Mes demandes").first.click()
    page.get_by_role("heading", name="Mes demandes", level=1).wait_for()
    context.set_offline(True)
    page.goto(live_server.url + "/mon-espace/documents")
    assert page.get_by_role("heading", name="Pas de connexion internet.").is_visible()
    # Every language, each marked with its own direction.
    assert page.locator("li[lang=ar][dir=rtl]").count() == 1
    assert page.locator("li[lang=ti][dir=ltr]").count() == 1
    stored = page.evaluate(CACHED_URLS)
    context.set_offline(False)
    context.close()
    assert "/hors-ligne" in stored
    assert all(path == "/hors-ligne" or path.startswith("/static/") for path in stored), stored


def test_after_an_htmx_swap_focus_goes_to_the_error_and_it_is_announced(
    live_server: LiveServer, browser: Any
) -> None:
    context = new_phone_context(browser)
    page = context.new_page()
    page.goto(live_server.url + "/connexion")
    page.wait_for_function("window.htmx !== undefined")
    page.get_by_label("Votre numéro de téléphone ou votre e-mail").fill("pas un numéro")
    page.get_by_role("button", name="Recevoir un code").click()
    page.get_by_role("alert").wait_for()
    page.wait_for_function("() => document.getElementById('annonce').textContent.length > 0")
    focused = page.evaluate("document.activeElement.closest('[role=alert]') !== null")
    announced = page.locator("#annonce").text_content() or ""
    context.close()
    assert focused, "focus did not move to the error"
    assert "Ce n’est pas un numéro de téléphone" in announced


def test_titles_follow_boosted_navigation_and_the_back_button_and_no_private_page_is_kept(
    live_server: LiveServer, context_for: Any
) -> None:
    context = context_for("/mon-espace")
    page = context.new_page()
    page.goto(live_server.url + "/mon-espace")
    page.wait_for_function("window.htmx !== undefined")
    first_title = page.title()
    page.get_by_role("link", name="Mes demandes").first.click()
    page.wait_for_function("() => document.title.startsWith('Mes demandes')")
    # The new page's heading has the focus, for screen readers.
    page.wait_for_function("() => document.activeElement.tagName === 'H1'", timeout=5000)
    page.wait_for_function(
        "() => document.getElementById('annonce').textContent === 'Mes demandes'", timeout=5000
    )
    page.go_back()
    page.wait_for_function("title => document.title === title", arg=first_title)
    page.get_by_role("heading", name="Bonjour Kevin").wait_for()
    kept = page.evaluate("localStorage.getItem('htmx-history-cache')")
    context.close()
    assert kept is None


@pytest.mark.parametrize("width", [320, 360])
def test_the_offline_page_is_accessible_light_and_fits_a_phone(
    live_server: LiveServer, browser: Any, width: int
) -> None:
    context = new_phone_context(browser, width=width)
    page = context.new_page()
    transferred, _hosts = first_load(page, live_server.url + "/hors-ligne")
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    results = Axe().run(page)
    context.close()
    assert results.violations_count == 0, results.generate_report()
    assert overflow <= 0
    assert 0 < transferred <= PAGE_WEIGHT_BUDGET, transferred
