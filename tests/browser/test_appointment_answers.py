"""In Chromium at 360x640, JavaScript on and off: the link of an appointment's SMS (read
from the SMS file backend) opens without signing in; "Je viendrai" is said back; then "Je
ne peux pas venir" frees the slot,
shows the next ones and "Être rappelé·e"; a second youth books the freed slot at once; the
staff member sees the notice on their agenda; "Être rappelé·e" puts a call task in the
référent's « À faire »."""

from __future__ import annotations

import re
import uuid
from datetime import date, time
from typing import Any

import pyotp
import pytest
from axe_playwright_python.sync_playwright import Axe

from paris_avenir.appointments import service
from paris_avenir.appointments.models import (
    Appointment,
    AppointmentKind,
    AppointmentPlace,
    WeeklyAvailability,
)
from paris_avenir.auth import sessions
from paris_avenir.auth.models import AuthMethod
from paris_avenir.auth.staff_local import create_staff
from paris_avenir.kit.crypto import build_cipher
from paris_avenir.staff.models import CaseloadAssignment, StaffRole
from paris_avenir.youths.models import Channel, Youth
from tests.browser.conftest import LiveServer, new_phone_context, submit_staff_sign_in

pytestmark = pytest.mark.browser

PASSWORD = "mot de passe des reponses en un clic"
LINK = re.compile(r"https?://\S+/r/[A-Za-z0-9_.\-]+")
_numbers = iter(range(7100, 7999, 3))


def _youth(session: Any, first_name: str, referent_id: uuid.UUID) -> Youth:
    number = next(_numbers)
    youth = Youth(
        ase_ref=f"ONETAP-{uuid.uuid4().hex[:10]}",
        first_name=first_name,
        last_name=f"Essai{number}",
        birth_date=date(2005, 3, 14),
        phone=f"+3363998{number:04d}",
        email=f"onetap{number}@example.org",
        ase_exit_date=date(2024, 3, 14),
        preferred_channel=Channel.SMS,
    )
    session.add(youth)
    session.flush()
    session.add(
        CaseloadAssignment(youth_id=youth.id, referent_id=referent_id, started_at=youth.created_at)
    )
    session.flush()
    return youth


def _setting(live: LiveServer) -> tuple[str, str, str, str, str, str]:
    """A référent of their own (open every morning), two youths they follow, and an
    appointment the first youth booked: its SMS has left."""
    email = f"referent.onetap.{uuid.uuid4().hex[:8]}@example.org"
    with live.session_factory.begin() as session:
        created = create_staff(
            session,
            build_cipher(live.settings),
            email=email,
            full_name="Inès Réponses",
            role=StaffRole.REFERENT,
            team_name="Équipe des réponses",
            password=PASSWORD,
        )
        for weekday in range(7):
            session.add(
                WeeklyAvailability(
                    staff_id=created.staff.id,
                    kind=AppointmentKind.REFERENT,
                    place=AppointmentPlace.OFFICE,
                    address="5 rue de l'Exemple, 75013 Paris",
                    weekday=weekday,
                    start_time=time(9, 0),
                    end_time=time(12, 0),
                    slot_minutes=30,
                )
            )
        session.flush()
        first = _youth(session, "Awa", created.staff.id)
        second = _youth(session, "Bilal", created.staff.id)
        slot = service.slots_for(session, first, AppointmentKind.REFERENT)[0]
        appointment = service.book(
            session,
            first,
            AppointmentKind.REFERENT,
            slot.key,
            base_url=live.settings.base_url,
            secret_key=live.settings.secret_key,
        )
        second_session = sessions.start_session(
            session, youth_id=second.id, method=AuthMethod.CODE
        ).token
        phone, name, key = first.phone, f"{first.first_name} {first.last_name}", slot.key
        assert phone is not None
        appointment_id = str(appointment.id)
    live.dispatch_outbox(at_next_sending_time=True)  # the confirmation leaves at once
    sms = live.last_sms_to(phone)
    link = LINK.search(sms)
    assert link is not None, sms
    assert "confirmé" in sms
    totp = pyotp.parse_uri(created.totp_uri).secret
    return link.group(0), key, second_session, f"{email}\n{totp}", name, appointment_id


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_je_ne_peux_pas_venir_frees_the_slot_for_another_youth_and_tells_the_staff(
    live_server: LiveServer, browser: Any, javascript: bool
) -> None:
    link, freed_key, second_session, staff_login, name, appointment_id = _setting(live_server)

    # The youth opens the link of the SMS on their phone, without signing in.
    phone = new_phone_context(browser, javascript=javascript)
    page = phone.new_page()
    page.goto(link)
    page.get_by_role("heading", name="Votre rendez-vous", exact=True).wait_for()
    assert page.get_by_text("Rendez-vous avec votre référent").is_visible()
    if javascript:
        assert Axe().run(page).violations_count == 0
    # "Je viendrai" is recorded and said back; the other answer stays at hand.
    page.get_by_role("button", name="Je viendrai").click()
    page.get_by_text("Merci, c’est noté : vous venez.").wait_for()
    assert page.get_by_role("button", name="Je viendrai").count() == 0
    page.get_by_role("button", name="Je ne peux pas venir").click()
    page.get_by_role("heading", name="Votre rendez-vous est annulé").wait_for()
    assert page.get_by_text("La personne qui devait vous recevoir est prévenue.").is_visible()
    page.get_by_role("heading", name="Prendre un autre rendez-vous").wait_for()
    offered = page.locator('form[action$="/creneau"] button')
    assert 1 <= offered.count() <= 6
    assert page.locator(f'input[name="creneau"][value="{freed_key}"]').count() == 0
    assert page.get_by_role("button", name="Être rappelé·e").is_visible()
    # Nothing sticks out of a 360-pixel screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    if javascript:
        assert Axe().run(page).violations_count == 0

    # Another youth, signed in, finds the freed slot and books it at once.
    other = new_phone_context(browser, javascript=javascript)
    other.add_cookies(
        [
            {
                "name": live_server.settings.session_cookie_name,
                "value": second_session,
                "url": live_server.url,
            }
        ]
    )
    booking = other.new_page()
    booking.goto(live_server.url + "/mon-espace/rendez-vous/nouveau?motif=referent")
    booking.locator(f'input[name="creneau"][value="{freed_key}"]').check()
    booking.get_by_role("button", name="Confirmer le rendez-vous").click()
    booking.get_by_text("C’est confirmé").first.wait_for()
    with live_server.session_factory() as session:
        freed = session.get(Appointment, uuid.UUID(appointment_id))
        assert freed is not None
        taken = session.query(Appointment).filter(
            Appointment.staff_id == freed.staff_id,
            Appointment.starts_at == freed.starts_at,
            Appointment.id != freed.id,
        )
        assert taken.count() == 1

    # The first youth taps one of the next slots: one tap books it.
    first_offer = offered.first.inner_text()
    offered.first.click()
    page.get_by_role("heading", name="Votre nouveau rendez-vous").wait_for()
    assert first_offer.strip() in page.locator("#nouveau-rendez-vous").inner_text()

    # The staff member sees it in their back office.
    email, secret = staff_login.split("\n")
    desk = browser.new_context(
        viewport={"width": 1280, "height": 800}, locale="fr-FR", java_script_enabled=javascript
    )
    staff = desk.new_page()
    submit_staff_sign_in(staff, live_server, email, PASSWORD, pyotp.TOTP(secret).now())
    staff.goto(live_server.url + "/pro/agenda")
    staff.get_by_role("heading", name="Créneaux libérés par les jeunes").wait_for()
    notice = staff.locator("#freed-title + ul").inner_text()
    assert f"{name} ne peut pas venir" in notice and "Un autre rendez-vous a été pris." in notice
    phone.close()
    other.close()
    desk.close()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_etre_rappele_puts_a_call_task_in_the_referents_a_faire(
    live_server: LiveServer, browser: Any, javascript: bool
) -> None:
    """Rather than another slot, the youth asks to be called back: the task the référent
    gets is on their « À faire », with the appointment it came from."""
    link, _key, _second, staff_login, name, _appointment = _setting(live_server)
    phone = new_phone_context(browser, javascript=javascript)
    page = phone.new_page()
    page.goto(link)
    page.get_by_role("button", name="Je ne peux pas venir").click()
    page.get_by_role("heading", name="Votre rendez-vous est annulé").wait_for()
    page.get_by_role("button", name="Être rappelé·e").click()
    page.get_by_text("C’est noté : votre référent va vous rappeler.").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    phone.close()

    email, secret = staff_login.split("\n")
    desk = browser.new_context(
        viewport={"width": 1280, "height": 800}, locale="fr-FR", java_script_enabled=javascript
    )
    staff = desk.new_page()
    submit_staff_sign_in(staff, live_server, email, PASSWORD, pyotp.TOTP(secret).now())
    staff.goto(live_server.url + "/pro/a-faire")
    task = staff.locator("li.task", has_text=name)
    text = task.inner_text()
    assert "Demande à être rappelé·e" in text
    # Which appointment, the number to call, by when (the next working day's end).
    assert re.search(r"A annulé son rendez-vous du \d\d/\d\d/\d{4} à 09:\d\d", text), text
    assert "par le lien du rappel et demande à être rappelé·e" in text
    assert "Téléphone : 06 39 98" in text
    assert "À faire avant le" in text
    if javascript:
        assert Axe().run(staff).violations_count == 0
    desk.close()
