"""Every youth in their language: the switch, what it remembers, right-to-left pages, the
offline page and the service worker, SMS kept short."""

from __future__ import annotations

import json
import re

import httpx
from fastapi import FastAPI
from sqlalchemy.orm import Session

from paris_avenir.db import utcnow
from paris_avenir.messaging import outbox
from paris_avenir.outreach import checkin
from paris_avenir.outreach.models import OutreachReason
from paris_avenir.web import i18n
from paris_avenir.youths.models import Channel
from tests.factories import assign, create_outreach_attempt, create_staff, create_youth
from tests.helpers import code_in, last_sms, post_form, sign_in_as

E164 = "+33639980012"
PHONE = "06 39 98 00 12"


def html_tag(page: httpx.Response) -> str:
    match = re.search(r"<html [^>]*>", page.text)
    assert match
    return match.group(0)


async def test_the_switch_changes_the_whole_page_and_is_remembered(
    client: httpx.AsyncClient,
) -> None:
    home = await client.get("/")
    assert '<html lang="fr" dir="ltr">' in home.text
    # Each language is offered in its own name and script.
    assert '<option value="fa_AF" lang="fa-AF">دری</option>' in home.text
    response = await post_form(client, "/langue", {"langue": "ar", "suite": "/connexion"})
    assert response.status_code == 303
    assert response.headers["location"] == "/connexion"
    assert "langue=ar" in response.headers["set-cookie"]
    page = await client.get("/connexion")
    assert html_tag(page) == '<html lang="ar" dir="rtl">'
    assert "أعط رقم هاتفك" in page.text or "رقم هاتفك أو بريدك الإلكتروني" in page.text
    # The form sends back to the page it was on; an unknown language means French.
    await post_form(client, "/langue", {"langue": "klingon", "suite": "/"})
    assert html_tag(await client.get("/")) == '<html lang="fr" dir="ltr">'


async def test_the_switch_never_sends_to_another_site(client: httpx.AsyncClient) -> None:
    for target in ("//evil.example/", "https://evil.example/", "\\\\evil.example"):
        response = await post_form(client, "/langue", {"langue": "en", "suite": target})
        assert response.headers["location"] == "/"


async def test_without_a_choice_the_browser_language_is_used(client: httpx.AsyncClient) -> None:
    page = await client.get("/", headers={"Accept-Language": "ps-AF,fr;q=0.5"})
    assert html_tag(page) == '<html lang="ps" dir="rtl">'
    page = await client.get("/", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert html_tag(page) == '<html lang="fr" dir="ltr">'
    page = await client.get("/", headers={"Accept-Language": "fa-AF"})
    assert html_tag(page) == '<html lang="fa-AF" dir="rtl">'


async def test_the_switch_changes_the_pages_not_the_messages_and_the_profile_asks(
    client: httpx.AsyncClient, app: FastAPI, session: Session
) -> None:
    youth = create_youth(session, language="fr")
    sign_in_as(client, app, session, youth=youth)
    await post_form(client, "/langue", {"langue": "ti", "suite": "/mon-espace"})
    session.refresh(youth)
    assert youth.language == "fr"  # reading a page in Tigrinya does not switch the SMS
    profile = await client.get("/mon-espace/profil")
    with i18n.using_locale("ti"):
        question = i18n.gettext(
            "Recevoir aussi les SMS et e-mails en %(language)s ?", language="ትግርኛ"
        )
    assert question in profile.text
    response = await post_form(client, "/mon-espace/profil/langue", {"langue": "ti"})
    assert response.status_code == 303
    session.refresh(youth)
    assert youth.language == "ti"
    assert question not in (await client.get("/mon-espace/profil")).text  # asked once
    space = await client.get("/mon-espace")
    assert html_tag(space) == '<html lang="ti" dir="ltr">'
    assert "ሰላም" in space.text


async def test_at_sign_in_the_profile_language_applies_unless_one_was_chosen(
    client: httpx.AsyncClient, session: Session, app: FastAPI
) -> None:
    create_youth(session, first_name="Nour", phone=E164, language="ar")
    session.commit()
    await post_form(client, "/connexion", {"destination": PHONE})
    sms = last_sms(app.state.settings)["text"]
    assert "رمزك" in sms  # the profile's language: nothing chosen on this phone
    response = await post_form(client, "/connexion/code", {"code": code_in(sms)})
    assert "langue=ar" in response.headers["set-cookie"]
    assert html_tag(await client.get("/mon-espace")) == '<html lang="ar" dir="rtl">'


async def test_a_language_chosen_before_signing_in_shows_the_pages_and_the_code_in_it(
    client: httpx.AsyncClient, session: Session, app: FastAPI
) -> None:
    youth = create_youth(session, first_name="Nour", phone=E164, language="ar")
    session.commit()
    await post_form(client, "/langue", {"langue": "en", "suite": "/connexion"})
    await post_form(client, "/connexion", {"destination": PHONE})
    sms = last_sms(app.state.settings)["text"]
    assert sms.startswith("Paris avenir: your code is")
    await post_form(client, "/connexion/code", {"code": code_in(sms)})
    assert html_tag(await client.get("/mon-espace")) == '<html lang="en" dir="ltr">'
    session.refresh(youth)
    assert youth.language == "ar"  # the phone's choice is not the youth's messages


async def test_the_back_office_stays_in_french_without_a_switch(
    client: httpx.AsyncClient, app: FastAPI, session: Session
) -> None:
    staff = create_staff(session)
    sign_in_as(client, app, session, staff=staff)
    client.cookies.set("langue", "ar")
    page = await client.get("/pro")
    assert html_tag(page) == '<html lang="fr" dir="ltr">'
    assert 'action="/langue"' not in page.text
    assert 'action="/langue"' in (await client.get("/")).text  # the public pages keep it


async def test_phone_numbers_stay_left_to_right_in_a_right_to_left_page(
    client: httpx.AsyncClient, app: FastAPI, session: Session
) -> None:
    youth = create_youth(session, language="ar")
    referent = create_staff(session, work_phone="+33140000001")
    assign(session, youth, referent)
    sign_in_as(client, app, session, youth=youth)
    client.cookies.set("langue", "ar")
    space = await client.get("/mon-espace")
    assert 'dir="rtl"' in html_tag(space)
    assert '<bdi dir="ltr">01 40 00 00 01</bdi>' in space.text
    for number in ("115", "3114", "3919"):
        assert f'<span class="number" dir="ltr">{number}</span>' in space.text


async def test_signed_in_pages_stay_out_of_caches(
    client: httpx.AsyncClient, app: FastAPI, session: Session
) -> None:
    assert "hx-history" not in (await client.get("/")).text
    sign_in_as(client, app, session, youth=create_youth(session))
    space = await client.get("/mon-espace")
    assert 'hx-history="false"' in space.text
    assert space.headers["cache-control"] == "no-store"


async def test_manifest_and_service_worker_keep_only_the_offline_page(
    client: httpx.AsyncClient,
) -> None:
    manifest = await client.get("/manifest.webmanifest")
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    body = json.loads(manifest.text)
    assert body["start_url"] == "/mon-espace" and body["display"] == "standalone"
    assert body["icons"][0]["src"].startswith("/static/")
    worker = await client.get("/sw.js")
    assert worker.headers["content-type"].startswith("text/javascript")
    assert worker.headers["cache-control"] == "no-cache"
    precached = json.loads(re.search(r"const PRECACHED = (\[.*?\]);", worker.text).group(1))  # type: ignore[union-attr]
    assert precached[0] == "/hors-ligne"
    assert all(url.startswith("/static/") for url in precached[1:])
    assert "/mon-espace" not in worker.text


async def test_the_offline_page_speaks_every_language_and_holds_nothing_personal(
    client: httpx.AsyncClient, app: FastAPI, session: Session
) -> None:
    sign_in_as(client, app, session, youth=create_youth(session, first_name="Zabiullah"))
    page = await client.get("/hors-ligne")
    assert page.status_code == 200
    for code, _name in i18n.LANGUAGES:
        direction = i18n.text_direction(code)
        assert f'lang="{i18n.html_lang(code)}" dir="{direction}"' in page.text
    assert "Pas de connexion internet." in page.text
    assert "لا يوجد اتصال بالإنترنت." in page.text
    assert "Zabiullah" not in page.text and "csrftoken" not in page.text


def test_arabic_plurals_use_babel_plural_forms() -> None:
    with i18n.using_locale("ar"):
        texts = {
            n: i18n.ngettext(
                "Vous avez %(num)s nouveau message.", "Vous avez %(num)s nouveaux messages.", n
            )
            for n in (0, 1, 2, 5, 11, 100)
        }
    assert all(str(n) in text and "Vous avez" not in text for n, text in texts.items())


def test_an_sms_written_with_accents_leaves_in_gsm7(session: Session) -> None:
    youth = create_youth(session)
    message = outbox.enqueue(
        session,
        channel=Channel.SMS,
        recipient=youth.phone or E164,
        template="test",
        body_text="Paris avenir : bientôt 21 ans. Le passe Navigo va s’arrêter.",
        idempotency_key="accent-test",
        youth_id=youth.id,
    )
    assert message.body_text == "Paris avenir : bientot 21 ans. Le passe Navigo va s'arreter."


async def test_the_check_in_page_speaks_the_youths_language_when_nothing_was_chosen(
    client: httpx.AsyncClient, app: FastAPI, session: Session
) -> None:
    youth = create_youth(session, language="ps")
    attempt = create_outreach_attempt(
        session, youth, reason=OutreachReason.CHECK_IN, step=1, period_key="1", at=utcnow()
    )
    session.commit()
    link = checkin.link(attempt.id, secret_key=app.state.settings.secret_key, base_url="")
    page = await client.get(link)
    assert html_tag(page) == '<html lang="ps" dir="rtl">'
    assert "هر څه ښه دي" in page.text  # "Tout va bien"
    refused = await post_form(client, link, {"reponse": "peut-être"})
    assert refused.status_code == 422 and "یو ځواب وټاکئ." in refused.text
    client.cookies.set("langue", "en")
    assert html_tag(await client.get(link)) == '<html lang="en" dir="ltr">'


async def test_an_expired_form_is_explained_in_the_readers_language(
    client: httpx.AsyncClient,
) -> None:
    client.cookies.set("langue", "ar")
    await client.get("/")  # the CSRF cookie
    refused = await client.post("/connexion", data={"destination": "0639980012"})
    assert refused.status_code == 403
    assert html_tag(refused) == '<html lang="ar" dir="rtl">'
    assert "انتهت صلاحية الصفحة" in refused.text
    assert "\ue000" not in refused.text and 'action="/langue"' not in refused.text
