"""Issue 13's separation of duties in Chromium, with JavaScript on and off: a new staff
member activates their account from the admin's one-time link (chooses a password, enrols
TOTP from the QR code's key) and signs in; a grant above the aid's cap is refused with its
reason; a grant above the threshold waits, and the supervisor sees it and confirms it."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from axe_playwright_python.sync_playwright import Axe

from paris_avenir.aid_requests.models import AidCode, AidRequest, RequestStatus
from paris_avenir.auth.staff_local import create_staff
from paris_avenir.db import utcnow
from paris_avenir.kit.crypto import build_cipher
from paris_avenir.kit.dates import paris_today, years_before
from paris_avenir.staff.models import CaseloadAssignment, StaffRole
from paris_avenir.youths.models import Youth
from tests.browser.conftest import LiveServer

pytestmark = pytest.mark.browser

PASSWORD = "banquise violette escargot 1987"
CHOSEN = "parapluie orange semaine 31 étoiles"


def assert_accessible(page: Any, *, javascript: bool = True) -> None:
    if not javascript:
        return  # axe runs as a script in the page: checked in the JavaScript runs
    results = Axe().run(page)
    assert results.violations_count == 0, f"{page.url}\n{results.generate_report()}"


def desk(browser: Any, *, javascript: bool) -> Any:
    return browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="fr-FR", java_script_enabled=javascript
    )


def sign_in(page: Any, live: LiveServer, email: str, password: str, code: str) -> None:
    page.goto(live.url + "/pro/connexion")
    page.get_by_label("E-mail professionnel").fill(email)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_label("Code de votre application d’authentification").fill(code)
    page.get_by_role("button", name="Se connecter").click()
    # Each role has its home (an admin lands on the settings).
    page.wait_for_url(lambda url: "/pro/connexion" not in url)
    page.locator("h1").first.wait_for()


def new_account(
    live: LiveServer, role: StaffRole, name: str, team: str = "Équipe des essais"
) -> tuple[str, str]:
    """A staff account of a team of the tests' own (the demo team's pages stay as they
    are for the other browser tests): its email and TOTP secret."""
    email = f"{role.value}.{uuid.uuid4().hex[:8]}@example.org"
    with live.session_factory.begin() as session:
        created = create_staff(
            session,
            build_cipher(live.settings),
            email=email,
            full_name=name,
            role=role,
            team_name=team,
            password=PASSWORD,
        )
    return email, pyotp.parse_uri(created.totp_uri).secret


def request_of_a_new_youth(live: LiveServer, referent_email: str, code: AidCode) -> str:
    from sqlalchemy import select

    from paris_avenir.staff.models import StaffUser

    with live.session_factory.begin() as session:
        referent = session.scalars(select(StaffUser).where(StaffUser.email == referent_email)).one()
        number = 5000 + uuid.uuid4().int % 4000
        youth = Youth(
            ase_ref=f"DUTY-{uuid.uuid4().hex[:6]}",
            first_name="Samira",
            last_name=f"Devoirs{number}",
            birth_date=years_before(paris_today(), 20),
            phone=f"+3363998{number:04d}",
        )
        session.add(youth)
        session.flush()
        session.add(
            CaseloadAssignment(youth_id=youth.id, referent_id=referent.id, started_at=utcnow())
        )
        request = AidRequest(
            youth_id=youth.id,
            aid_code=code,
            status=RequestStatus.UNDER_REVIEW,
            submitted_at=utcnow() - timedelta(days=1),
            form_data={},
        )
        session.add(request)
        session.flush()
        return str(request.id)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_new_staff_member_activates_their_account_and_signs_in(
    live_server: LiveServer, browser: Any, javascript: bool
) -> None:
    admin_email, admin_secret = new_account(live_server, StaffRole.ADMIN, "Claire Admin")
    office = desk(browser, javascript=javascript)
    admin = office.new_page()
    sign_in(admin, live_server, admin_email, PASSWORD, pyotp.TOTP(admin_secret).now())
    admin.get_by_role("link", name="Comptes").click()
    email = f"nouvelle.{uuid.uuid4().hex[:8]}@example.org"
    admin.get_by_label("E-mail professionnel").fill(email)
    admin.get_by_label("Nom complet").fill("Nadia Benali")
    admin.get_by_label("Rôle", exact=True).select_option("referent")
    admin.get_by_label("Équipe").fill(f"Équipe {uuid.uuid4().hex[:8]}")
    admin.get_by_role("button", name="Créer le compte").click()
    link = admin.locator("#lien-activation").inner_text()
    assert "/pro/activation/" in link and "otpauth" not in admin.content()
    office.close()

    # The new staff member, in their own browser.
    own = desk(browser, javascript=javascript)
    page = own.new_page()
    page.goto(link)
    page.get_by_role("heading", name="Activer votre compte").wait_for()
    assert page.locator(".qr-code svg").count() == 1
    assert_accessible(page, javascript=javascript)
    secret = page.locator("#totp-secret").inner_text()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    # Long enough for the browser's own check, but a keyboard row: the server refuses it.
    page.get_by_label("Mot de passe", exact=True).fill("azertyuiop123")
    page.get_by_label("Le même, encore une fois").fill("azertyuiop123")
    page.get_by_label("Code affiché par l’application").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Activer mon compte").click()
    page.get_by_role("alert").filter(has_text="trop facile à deviner").wait_for()
    page.get_by_label("Mot de passe", exact=True).fill(CHOSEN)
    page.get_by_label("Le même, encore une fois").fill(CHOSEN)
    page.get_by_label("Code affiché par l’application").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Activer mon compte").click()
    page.get_by_text("Votre compte est activé").wait_for()
    # The next code of the application (the enrolment code served once already).
    sign_in(
        page,
        live_server,
        email,
        CHOSEN,
        pyotp.TOTP(secret).at(utcnow() + timedelta(seconds=30)),
    )
    page.get_by_role("link", name="Mon compte").click()
    page.get_by_role("heading", name="Changer de mot de passe").wait_for()
    assert_accessible(page, javascript=javascript)
    page.goto(link)
    assert "ne fonctionne plus" in page.content()
    own.close()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_grant_above_the_aid_cap_is_refused_with_its_reason(
    live_server: LiveServer, browser: Any, javascript: bool
) -> None:
    team = f"Équipe {uuid.uuid4().hex[:8]}"
    email, secret = new_account(live_server, StaffRole.REFERENT, "Romain Caps", team)
    request_id = request_of_a_new_youth(live_server, email, AidCode.AIDE_URGENCE)
    context = desk(browser, javascript=javascript)
    page = context.new_page()
    sign_in(page, live_server, email, PASSWORD, pyotp.TOTP(secret).now())
    page.goto(f"{live_server.url}/pro/demandes/{request_id}")
    page.get_by_text("Accorder", exact=True).click()
    page.get_by_label("Montant en euros").fill("99 999,99")
    page.get_by_role("button", name="Accorder l’aide").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    text = alert.inner_text()
    assert "dépasse le plafond de cette aide" in text and "Rien n’a été enregistré" in text
    assert page.locator(".badge").first.inner_text() == "En cours d’examen"
    assert_accessible(page, javascript=javascript)
    context.close()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_the_supervisor_sees_a_grant_to_confirm_and_confirms_it(
    live_server: LiveServer, browser: Any, javascript: bool
) -> None:
    team = f"Équipe {uuid.uuid4().hex[:8]}"
    referent_email, referent_secret = new_account(
        live_server, StaffRole.REFERENT, "Léa Dupuis", team
    )
    supervisor_email, supervisor_secret = new_account(
        live_server, StaffRole.SUPERVISOR, "Marc Chef", team
    )
    request_id = request_of_a_new_youth(live_server, referent_email, AidCode.BOURSE)
    office = desk(browser, javascript=javascript)
    referent = office.new_page()
    sign_in(referent, live_server, referent_email, PASSWORD, pyotp.TOTP(referent_secret).now())
    referent.goto(f"{live_server.url}/pro/demandes/{request_id}")
    referent.get_by_text("Accorder", exact=True).click()
    referent.get_by_label("Montant en euros").fill("1 500")
    referent.get_by_role("button", name="Accorder l’aide").click()
    referent.get_by_text("attend la confirmation d’une autre personne").wait_for()
    assert referent.get_by_role("button", name="Confirmer l’accord").count() == 0
    office.close()

    other = desk(browser, javascript=javascript)
    supervisor = other.new_page()
    sign_in(
        supervisor, live_server, supervisor_email, PASSWORD, pyotp.TOTP(supervisor_secret).now()
    )
    supervisor.get_by_role("link", name="Demandes à instruire").click()
    row = supervisor.locator("tr", has_text="Accord à confirmer").filter(has_text="Samira").first
    row.wait_for()
    row.get_by_role("link").click()
    supervisor.get_by_role("heading", name="Accord à confirmer").wait_for()
    card = supervisor.locator(".card--action").inner_text()
    assert "Léa Dupuis" in card and "1 500,00" in card.replace("\u202f", " ").replace("\u00a0", " ")
    assert_accessible(supervisor, javascript=javascript)
    supervisor.get_by_role("button", name="Confirmer l’accord").click()
    supervisor.locator(".badge", has_text="Accordée").wait_for()
    assert "L’aide est accordée" in supervisor.content()
    history = supervisor.locator(".timeline").inner_text()
    assert "Accord à confirmer (Léa Dupuis)" in history and "Accordée (Marc Chef)" in history
    other.close()
