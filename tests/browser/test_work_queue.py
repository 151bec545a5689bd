"""Issue 12's loop in Chromium, with JavaScript on and off: a demo youth answers "J'ai besoin
d'aide" from a check-in link and reads who was told; the référent receives the email,
signs in from its link, sees the alert first in "À faire" with the number to call, closes it
"joint·e"; the youth's silence counter restarts and the watch sends them nothing for the
period. "À faire" and the team page are axe-clean at 1280x800 and 360x640; a task escalated
to the supervisor is on their pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from sqlalchemy import select

from paris_avenir.auth import links
from paris_avenir.demo import DEMO_STAFF_PASSWORD
from paris_avenir.outreach import checkin, engine
from paris_avenir.staff import tasks
from paris_avenir.staff.models import StaffRole, StaffTask, StaffUser, TaskKind
from paris_avenir.youths.models import Youth
from tests.browser.conftest import (
    PAGES_STAFF,
    DemoYouth,
    LiveServer,
    new_phone_context,
    sign_in_staff,
    unused_totp,
    words,
)
from tests.browser.test_pages import PAGE_WEIGHT_BUDGET, first_load
from tests.factories import create_check_in

pytestmark = pytest.mark.browser

# (JavaScript, demo youth, their référent): each journey its own pair, a TOTP code once.
JOURNEYS = [
    (True, DemoYouth(12), "referent.marchand@example.org", "Julien Marchand"),
    (False, DemoYouth(7), "referent.benali@example.org", "Sofia Benali"),
]


def assert_accessible(page: Any) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, f"{page.url}\n{results.generate_report()}"


def assert_fits(page: Any) -> None:
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


def _sign_in_by_link(page: Any, live: LiveServer, youth_id: Any, *, language: str = "fr") -> None:
    """The youth opens a sign-in link the platform sent them (an invitation, a reminder):
    no code, so the suite stays within the real per-address limit on codes."""
    with live.session_factory.begin() as session:
        link = links.create_login_link(session, youth_id, purpose="navigateur", base_url=live.url)
    page.context.add_cookies([{"name": "langue", "value": language, "url": live.url}])
    page.goto(link)
    page.get_by_role("button", name=words(language, "Entrer dans mon espace")).click()


def _check_in_link(live: LiveServer, youth: DemoYouth) -> tuple[str, Any]:
    """A "Comment ça va ?" the watch sent to this youth (as a cycle would write it)."""
    with live.session_factory.begin() as session:
        found = session.scalars(select(Youth).where(Youth.phone == youth.phone)).one()
        attempt = create_check_in(session, found, at=datetime.now(UTC))
        link = checkin.link(attempt.id, secret_key=live.settings.secret_key, base_url=live.url)
        return link, found.id


@pytest.mark.parametrize(
    ("javascript", "youth", "referent_email", "referent_name"),
    JOURNEYS,
    ids=["js", "no-js"],
)
def test_an_alert_reaches_the_referent_who_closes_it_and_the_watch_yields(
    live_server: LiveServer,
    browser: Any,
    javascript: bool,
    youth: DemoYouth,
    referent_email: str,
    referent_name: str,
) -> None:
    link, youth_id = _check_in_link(live_server, youth)
    phone = new_phone_context(browser, javascript=javascript)
    answer = phone.new_page()
    answer.goto(link)
    answer.get_by_role("heading", name="Comment ça va ?").wait_for()
    answer.get_by_role("button", name="J’ai besoin d’aide").click()
    answer.get_by_role("heading", name="Merci. Quelqu’un va vous appeler.").wait_for()
    told = answer.locator("main").inner_text()
    assert f"Nous avons prévenu {referent_name}, votre référent." in told
    # Today or, late in the day or on a weekend, the next working day: never a bare date.
    assert re.search(
        rf"{referent_name} vous appelle (aujourd’hui|demain|le \w+ \d+ \w+) avant 18:00", told
    )
    if javascript:  # axe runs in the page: the JavaScript journey checks the same pages
        assert_accessible(answer)
        assert_fits(answer)
    # Signed in, the youth's space keeps saying who was told, until someone calls.
    _sign_in_by_link(answer, live_server, youth_id)
    answer.get_by_role("heading", name=f"Bonjour {youth.first_name}").wait_for()
    card = answer.locator(
        "section", has=answer.get_by_role("heading", name="Vous avez dit : « J’ai besoin d’aide »")
    )
    assert f"Nous avons prévenu {referent_name}. {referent_name} vous appelle" in card.inner_text()
    if javascript:
        assert_accessible(answer)

    # The dispatcher runs (every 15 s in `serve`): the référent's mailbox gets the alert —
    # at once by day; staff emails wait for 09:00 at night, so the pass is the morning's.
    inbox_before = len(live_server.smtp.inbox)
    live_server.dispatch_outbox(at_next_sending_time=True)
    email = live_server.wait_for_email(referent_email, after=inbox_before)
    assert email["Subject"] == f"Urgent : {youth.first_name} {_initial(youth)}. a besoin d’aide"
    body = live_server.smtp.text_of(email)
    assert youth.phone not in body and youth.phone_as_typed not in body  # nothing to leak
    link_in_email = re.search(r"http://\S+/pro/a-faire", body)
    assert link_in_email is not None

    desk = browser.new_context(
        viewport={"width": 1280, "height": 800}, locale="fr-FR", java_script_enabled=javascript
    )
    staff = desk.new_page()
    assert link_in_email.group(0) == f"{live_server.url}/pro/a-faire"
    staff.goto(link_in_email.group(0))
    staff.get_by_label("E-mail professionnel").fill(referent_email)
    staff.get_by_label("Mot de passe").fill(DEMO_STAFF_PASSWORD)
    staff.get_by_label("Code de votre application d’authentification").fill(
        unused_totp(live_server, referent_email)
    )
    staff.get_by_role("button", name="Se connecter").click()
    staff.get_by_role("heading", name="À faire", exact=True).wait_for()
    first = staff.locator("li.task").first
    assert youth.first_name in first.inner_text()
    assert (
        "Urgent" in first.inner_text() and "A répondu « J’ai besoin d’aide »" in first.inner_text()
    )
    assert first.locator(f'a[href="tel:{youth.phone}"]').inner_text() == youth.phone_as_typed
    assert re.search(r"À faire\s*\d+", staff.get_by_role("navigation").inner_text())
    if javascript:
        assert_accessible(staff)
        staff.set_viewport_size({"width": 360, "height": 640})
        assert_accessible(staff)
        assert_fits(staff)
        staff.set_viewport_size({"width": 1280, "height": 800})

    first.get_by_text("Noter ce qui s’est passé").click()  # opens the <details>
    first.get_by_label("Ce qui s’est passé").select_option(label="Joint·e")
    first.get_by_label("Note pour le journal (facultative, chiffrée)").fill(
        "Joint au téléphone : il a perdu son logement, rendez-vous demain."
    )
    first.get_by_role("button", name="Enregistrer").click()
    staff.get_by_text("Tâche terminée : Joint·e.").wait_for()
    assert staff.locator("li.task", has_text=youth.first_name).count() == 0
    answer.goto(live_server.url + "/mon-espace")
    answer.get_by_role("heading", name=f"Bonjour {youth.first_name}").wait_for()
    assert answer.get_by_role("heading", name="Vous avez dit : « J’ai besoin d’aide »").count() == 0
    phone.close()

    # The youth file: the silence counter restarted today, the close is in its history.
    staff.goto(f"{live_server.url}/pro/jeunes/{youth_id}")
    file = staff.locator("main").inner_text()
    today = datetime.now(UTC)
    assert f"Joint·e par {referent_name}" in file
    assert "Joint au téléphone : il a perdu son logement" in file  # the encrypted journal
    desk.close()
    with live_server.session_factory() as session:
        restarted = session.get_one(Youth, youth_id).last_activity_at
        assert restarted is not None and today - restarted < timedelta(minutes=5)
        # The next cycles of the period contact this youth for nothing (a dry run decides
        # exactly like a real one, and leaves the shared demo data alone).
        for days in (0, 10, 29):
            report = engine.run_cycle(
                session,
                base_url=live_server.url,
                secret_key=live_server.settings.secret_key,
                now=today + timedelta(days=days, hours=1),
                dry_run=True,
            )
            assert youth_id not in {contact.youth_id for contact in report.contacts}, days
        session.rollback()


def _initial(youth: DemoYouth) -> str:
    from paris_avenir import demo

    return demo.LAST_NAMES[youth.number - 1][:1]


def test_an_overdue_task_is_on_the_supervisors_pages(live_server: LiveServer, browser: Any) -> None:
    now = datetime.now(UTC)
    youth = DemoYouth(10)  # followed by Sofia Benali
    with live_server.session_factory.begin() as session:
        found = session.scalars(select(Youth).where(Youth.phone == youth.phone)).one()
        task = tasks.open_task(
            session,
            youth_id=found.id,
            kind=TaskKind.MISSED_APPOINTMENT,
            key=f"navigateur-retard:{found.id}",
            now=now - timedelta(days=9),
            detail={"appointment": "Avec le référent", "appointment_at": now.isoformat()},
        )
        assert task is not None
        # The scheduler's escalation step, for this task only (the demo is shared).
        for escalation in tasks.plan_escalations(session, now, 3):
            if escalation.task_id == task.id:
                tasks.escalate(session, escalation, now=now, base_url=live_server.url)
        holder = session.get_one(StaffUser, session.get_one(StaffTask, task.id).assignee_id)
        assert holder.role is StaffRole.SUPERVISOR
        holder_name = holder.full_name
    desk = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    page = desk.new_page()
    sign_in_staff(page, live_server, PAGES_STAFF)  # a supervisor of the demo team
    page.goto(live_server.url + "/pro/equipe")
    late = page.locator(
        "section", has=page.get_by_role("heading", name="Tâches en retard dans l’équipe")
    )
    line = late.locator("li.task", has_text=youth.first_name)
    assert "Rendez-vous manqué" in line.inner_text()
    assert "Passée au superviseur le" in line.inner_text() and holder_name in line.inner_text()
    assert_accessible(page)
    page.set_viewport_size({"width": 360, "height": 640})
    assert_accessible(page)
    assert_fits(page)  # the wide tables scroll inside their own region
    desk.close()


@pytest.mark.parametrize(
    ("javascript", "youth", "language"),
    [(True, DemoYouth(16), "ar"), (False, DemoYouth(13), "fr")],
    ids=["js-ar", "no-js-fr"],
)
def test_a_number_reported_wrong_is_confirmed_by_the_youth_at_next_sign_in(
    live_server: LiveServer, browser: Any, javascript: bool, youth: DemoYouth, language: str
) -> None:
    from paris_avenir.kit.crypto import build_cipher
    from paris_avenir.staff.assignments import current_referent

    with live_server.session_factory.begin() as session:
        found = session.scalars(select(Youth).where(Youth.phone == youth.phone)).one()
        referent = current_referent(session, found.id)
        assert referent is not None
        task = tasks.open_task(
            session,
            youth_id=found.id,
            kind=TaskKind.MISSED_APPOINTMENT,
            key=f"navigateur-numero:{found.id}",
        )
        assert task is not None
        # What the référent's "Enregistrer" with "Mauvais numéro" does.
        cipher = build_cipher(live_server.settings)
        tasks.close_task(session, cipher, task, by=referent, outcome="mauvais_numero")
        youth_id = found.id
    phone = new_phone_context(browser, javascript=javascript)
    page = phone.new_page()
    asked = words(language, "Est-ce toujours votre numéro ?")
    # No code goes to a number the team reported wrong: the youth signs in another way, here
    # with a link the platform sent to their email.
    _sign_in_by_link(page, live_server, youth_id, language=language)
    page.get_by_role("heading", name=asked).wait_for()
    assert youth.phone_as_typed in page.locator("main").inner_text()
    assert words(language, "Votre référent n’a pas pu vous joindre à ce numéro :") in (
        page.locator("main").inner_text()
    )
    if javascript:
        assert_accessible(page)
        assert_fits(page)
        assert page.locator("html").get_attribute("dir") == "rtl"
        cold = new_phone_context(browser)  # a cold cache, the same signed-in browser
        cold.add_cookies(phone.cookies())
        weight, hosts = first_load(cold.new_page(), page.url)
        cold.close()
        print(f"page weight {language} /mon-espace/numero: {weight} bytes")
        assert 0 < weight <= PAGE_WEIGHT_BUDGET and hosts == {page.url.split("/")[2]}
    # "Oui, c'est mon numéro": proven by the code that now goes to it.
    sms_before = live_server.sms_count()
    page.get_by_role("button", name=words(language, "Oui, c’est mon numéro")).click()
    page.get_by_role("heading", name=words(language, "Entrez le code reçu")).wait_for()
    proof = re.search(r"\b(\d{6})\b", live_server.last_sms_to(youth.phone, after=sms_before))
    assert proof is not None
    page.get_by_label(words(language, "Code à 6 chiffres")).fill(proof.group(1))
    page.get_by_role("button", name=words(language, "Valider"), exact=True).click()
    page.get_by_text(words(language, "C’est enregistré.")).wait_for()
    phone.close()
    with live_server.session_factory() as session:
        assert session.get_one(Youth, youth_id).phone_unreachable_at is None
