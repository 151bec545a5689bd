"""Issue 15 in Chromium at 360x640: "Mes données" read in French and in Pashto, the code
that comes at once when the sign-in is more than 15 minutes old, the language switch that
changes the pages but not the SMS (the profile asks), Tigrinya drawn with the platform's own
Ethiopic font (Debian's Chromium has none), arrows that point the way the reading goes."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from sqlalchemy import select, update

from paris_avenir.auth.models import UserSession
from paris_avenir.db import utcnow
from paris_avenir.web import i18n
from paris_avenir.youths.models import Youth
from tests.browser.conftest import DemoYouth, LiveServer, new_phone_context, sign_in_youth, words
from tests.browser.test_pages import PAGE_WEIGHT_BUDGET, first_load

pytestmark = pytest.mark.browser

ISO_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}")


def assert_no_axe_violation(page: Any) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, f"{page.url}\n{results.generate_report()}"


def age_the_sign_in(live: LiveServer, youth: DemoYouth) -> None:
    with live.session_factory.begin() as session:
        session.execute(
            update(UserSession)
            .where(UserSession.youth_id == Youth.id, Youth.phone == youth.phone)
            .values(authenticated_at=utcnow() - timedelta(minutes=16))
        )


def in_tigrinya(text: str, **values: str) -> str:
    with i18n.using_locale("ti"):
        return i18n.gettext(text, **values)


def messages_language(live: LiveServer, youth: DemoYouth) -> str:
    with live.session_factory() as session:
        return str(session.scalar(select(Youth.language).where(Youth.phone == youth.phone)))


@pytest.mark.parametrize(("language", "number"), [("fr", 14), ("ps", 27)])
def test_my_data_is_a_page_to_read_and_an_old_sign_in_gets_its_code_at_once(
    live_server: LiveServer, browser: Any, language: str, number: int
) -> None:
    youth = DemoYouth(number)
    context = new_phone_context(browser)
    page = context.new_page()
    sign_in_youth(page, live_server, youth, language=language)
    # Twenty minutes later, the youth opens their data from the profile.
    age_the_sign_in(live_server, youth)
    sms_before = live_server.sms_count()
    page.goto(live_server.url + "/mon-espace/profil")
    page.get_by_role("link", name=words(language, "Voir et télécharger toutes mes données")).click()
    page.get_by_role("heading", name=words(language, "Confirmez que c’est vous")).wait_for()
    why = page.locator("#pourquoi").inner_text()
    sentence = (
        "Pour protéger vos données, cette page demande un nouveau code après 15 minutes de "
        "connexion. Nous venons de l’envoyer à :"
    )
    assert words(language, sentence) in why
    assert "•" in why  # where the code went, masked
    # The code is already on its way to the youth's own number: nothing to type again.
    sms = live_server.last_sms_to(youth.phone, after=sms_before)
    assert_no_axe_violation(page)
    code = re.search(r"\b(\d{6})\b", sms)
    assert code
    page.get_by_label(words(language, "Code à 6 chiffres")).fill(code.group(1))
    page.get_by_role("button", name=words(language, "Valider"), exact=True).click()
    page.get_by_role("heading", name=words(language, "Mes données"), level=1).wait_for()
    assert page.url.endswith("/mon-espace/donnees")
    assert page.locator("html").get_attribute("lang") == language
    main = page.locator("main").inner_text()
    for heading in ("Mon profil", "Mes demandes", "Mes messages", "Qui a consulté mon dossier"):
        assert page.get_by_role("heading", name=words(language, heading), level=2).count() == 1
    assert youth.first_name in main
    for raw in ("True", "False", "None", "centimes", "T00:", "+00:00"):
        assert raw not in main, raw
    assert not ISO_MOMENT.search(main), ISO_MOMENT.search(main)
    if language == "fr":
        assert re.search(r"\d{1,2} [a-zéû]+ \d{4}", main)  # "14 mars 2005"
        assert re.search(r"\d+(,\d\d)?\s€", main)  # euros, not cents
    else:
        assert page.locator("html").get_attribute("dir") == "rtl"
    assert_no_axe_violation(page)
    page.set_viewport_size({"width": 320, "height": 640})
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"scrolls sideways by {overflow} px at 320 px"
    page.set_viewport_size({"width": 360, "height": 640})
    # The JSON stays the machine-readable download.
    with page.expect_download() as download:
        page.get_by_role(
            "link", name=words(language, "Télécharger mes données (fichier JSON)")
        ).click()
    assert download.value.suggested_filename == "mes-donnees-paris-avenir.json"
    if language == "ps":
        # Back arrows point the way the reading goes: mirrored right to left.
        page.goto(live_server.url + "/mon-espace/droits/allocation")
        arrow = page.locator("main a .arrow").first
        transform = arrow.evaluate("element => getComputedStyle(element).transform")
        assert transform == "matrix(-1, 0, 0, 1, 0, 0)"
        link = arrow.locator("xpath=..")
        arrow_box, link_box = arrow.bounding_box(), link.bounding_box()
        assert arrow_box and link_box
        # At the start of the line, which is on the right.
        assert arrow_box["x"] + arrow_box["width"] >= link_box["x"] + link_box["width"] - 1
    context.close()


def test_the_language_switch_changes_the_pages_and_the_profile_asks_for_the_sms(
    live_server: LiveServer, browser: Any
) -> None:
    youth = DemoYouth(30)
    context = new_phone_context(browser)
    page = context.new_page()
    sign_in_youth(page, live_server, youth)
    assert messages_language(live_server, youth) == "fr"
    page.get_by_label("Langue").select_option("ti")
    page.get_by_role("button", name="Changer").click()
    page.wait_for_selector("html[lang=ti]")
    # Only this phone reads Tigrinya: the SMS and emails stay in French.
    assert messages_language(live_server, youth) == "fr"
    page.goto(live_server.url + "/mon-espace/profil")
    question = in_tigrinya("Recevoir aussi les SMS et e-mails en %(language)s ?", language="ትግርኛ")
    page.get_by_role("heading", name=question).wait_for()
    assert_no_axe_violation(page)
    page.get_by_role("button", name=in_tigrinya("Oui, en %(language)s", language="ትግርኛ")).click()
    page.locator(".alert--info[role=status]").wait_for()
    assert messages_language(live_server, youth) == "ti"
    assert page.get_by_role("heading", name=question).count() == 0
    # Back to French on this phone: the SMS keep Tigrinya until the youth says otherwise.
    page.get_by_label(words("ti", "Langue"), exact=True).select_option("fr")
    page.get_by_role("button", name=words("ti", "Changer")).click()
    page.wait_for_selector("html[lang=fr]")
    assert messages_language(live_server, youth) == "ti"
    page.goto(live_server.url + "/mon-espace/profil")
    french = "Recevoir aussi les SMS et e-mails en Français ?"
    assert page.get_by_role("heading", name=french).count() == 1
    context.close()


def used_fonts(page: Any, selector: str) -> list[dict[str, Any]]:
    """The fonts Chromium actually drew a node's text with (DevTools protocol)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    fonts: list[dict[str, Any]] = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    return fonts


def glyph_pictures(page: Any, family: str) -> list[bytes]:
    """Screenshots of two different Ethiopic letters drawn in `family`."""
    pictures = []
    for letter in ("ሀ", "ጨ"):
        page.evaluate(
            """([letter, family]) => {
                const span = document.createElement('span');
                span.id = 'essai-glyphe';
                span.textContent = letter;
                span.style.fontFamily = family;
                span.style.fontSize = '64px';
                span.style.display = 'inline-block';
                document.querySelector('main').prepend(span);
            }""",
            [letter, family],
        )
        page.evaluate("document.fonts.ready")
        pictures.append(page.locator("#essai-glyphe").screenshot())
        page.evaluate("document.getElementById('essai-glyphe').remove()")
    return pictures


def test_tigrinya_is_drawn_with_our_font_and_the_page_stays_light(
    live_server: LiveServer, browser: Any
) -> None:
    context = new_phone_context(browser)
    context.add_cookies([{"name": "langue", "value": "ti", "url": live_server.url}])
    page = context.new_page()
    transferred, _hosts = first_load(page, live_server.url + "/")
    print(f"page weight ti / with the Ethiopic font: {transferred} bytes")
    assert 0 < transferred <= PAGE_WEIGHT_BUDGET
    assert page.locator("html").get_attribute("lang") == "ti"
    page.evaluate("document.fonts.ready")
    faces = page.evaluate(
        "[...document.fonts].map(face => [face.family.replace(/\"/g, ''), face.status])"
    )
    assert ["Paris avenir Ethiopic", "loaded"] in faces
    page.evaluate(
        """() => [...document.querySelectorAll('main h1')]
            .find(element => /[\u1200-\u137f]/.test(element.textContent))
            .setAttribute('data-essai', 'ethiopic')"""
    )
    heading = used_fonts(page, "[data-essai=ethiopic]")
    letters = page.evaluate(
        "document.querySelector('[data-essai=ethiopic]').textContent.match(/[\\u1200-\\u137F]/g).length"
    )
    ours_in_heading = [font for font in heading if font["isCustomFont"]]
    assert ours_in_heading, heading
    assert ours_in_heading[0]["familyName"] == "Noto Sans Ethiopic"
    assert ours_in_heading[0]["glyphCount"] >= letters, heading  # every letter, no box
    # Without our font (the phone's own only), two different letters are the same box.
    missing = glyph_pictures(page, "sans-serif")
    assert missing[0] == missing[1], "this Chromium has an Ethiopic font: the test proves nothing"
    ours = glyph_pictures(page, '"Paris avenir Ethiopic"')
    assert ours[0] != ours[1] and ours[0] != missing[0]
    context.close()


def test_only_tigrinya_pages_download_the_ethiopic_font(
    live_server: LiveServer, browser: Any
) -> None:
    context = new_phone_context(browser)
    page = context.new_page()
    fonts: list[str] = []
    page.on(
        "requestfinished",
        lambda request: fonts.append(request.url) if ".woff2" in request.url else None,
    )
    page.goto(live_server.url + "/", wait_until="networkidle")
    assert not any("noto-sans-ethiopic-400" in url for url in fonts), fonts
    # The name "ትግርኛ" (as in the language switch's list) is drawn from a 1 KB file.
    page.evaluate(
        """() => {
            const name = document.createElement('span');
            name.lang = 'ti';
            name.id = 'nom-tigrinya';
            name.textContent = 'ትግርኛ';
            document.querySelector('main').prepend(name);
        }"""
    )
    page.evaluate("document.fonts.ready")
    page.wait_for_function("document.fonts.check('16px \"Paris avenir Ethiopic name\"', 'ትግርኛ')")
    name = used_fonts(page, "#nom-tigrinya")
    assert any(font["isCustomFont"] for font in name), name
    assert any("noto-sans-ethiopic-name" in url for url in fonts), fonts
    assert not any("noto-sans-ethiopic-400" in url for url in fonts), fonts
    context.close()
