"""Outreach policy values and SMS texts, changed by an admin."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from paris_avenir.messaging import message_templates
from paris_avenir.outreach import policy
from paris_avenir.staff.models import StaffRole, StaffUser
from tests import factories
from tests.factories import create_staff, create_youth
from tests.helpers import post_form, sign_in_as


@pytest.fixture
def admin_staff(app: FastAPI, client: httpx.AsyncClient, session: Session) -> StaffUser:
    admin = create_staff(session, StaffRole.ADMIN)
    session.commit()
    sign_in_as(client, app, session, staff=admin)
    return admin


def policy_form(**changes: str) -> dict[str, str]:
    values = {name: str(value) for name, value in policy.defaults().items()}
    values.update(changes)
    return values


async def test_the_policy_starts_with_the_programmes_values_and_can_change(
    client: httpx.AsyncClient, session: Session, admin_staff: StaffUser
) -> None:
    assert policy.load(session) == policy.OutreachPolicy()
    page = await client.get("/pro/admin/relances")
    assert 'value="30"' in page.text and "Jour de l’e-mail" in page.text
    response = await post_form(client, "/pro/admin/relances", policy_form(email_step_day="40"))
    assert response.status_code == 303
    assert policy.load(session).email_step_day == 40


@pytest.mark.parametrize(
    "changes",
    [{"email_step_day": "50"}, {"quiet_hours_start": "25"}, {"inactivity_days": "trente"}],
)
async def test_an_impossible_policy_is_refused(
    client: httpx.AsyncClient, session: Session, admin_staff: StaffUser, changes: dict[str, str]
) -> None:
    response = await post_form(client, "/pro/admin/relances", policy_form(**changes))
    assert response.status_code == 422
    assert policy.load(session) == policy.OutreachPolicy()


async def test_an_admin_rewrites_the_sign_in_sms_and_it_is_used(
    client: httpx.AsyncClient, session: Session, admin_staff: StaffUser
) -> None:
    page = await client.get("/pro/admin/messages")
    assert "data-sms-counter" in page.text and "{code}" in page.text
    bad = await post_form(
        client, "/pro/admin/messages/sign_in_code/fr", {"texte": "Votre code : {cod}"}
    )
    assert bad.status_code == 422 and "Inconnu dans le texte : cod" in bad.text
    too_long = await post_form(
        client, "/pro/admin/messages/sign_in_code/fr", {"texte": "ê" * 140 + " {code}"}
    )
    assert too_long.status_code == 422 and "Trop long" in too_long.text
    saved = await post_form(
        client,
        "/pro/admin/messages/sign_in_code/fr",
        {"texte": "Paris avenir, code : {code}. Valable 10 minutes."},
    )
    assert saved.status_code == 303
    assert "1 SMS (GSM-7)" in (await client.get("/pro/admin/messages")).text

    youth = create_youth(session, phone="+33639980088")
    request = factories.request_code(
        session, secret_key="k" * 40, raw_destination="06 39 98 00 88", ip_address="1.2.3.4"
    )
    assert request.outbox_message is not None
    assert request.outbox_message.body_text.startswith("Paris avenir, code : ")
    assert youth.language == "fr"


def test_an_empty_text_goes_back_to_the_default(session: Session) -> None:
    message_templates.save(session, "new_message", "fr", "Nouveau message : {link}", by_id=None)
    assert (
        message_templates.render_sms(session, "new_message", "fr", "défaut", link="L")
        == "Nouveau message : L"
    )
    message_templates.save(session, "new_message", "fr", "", by_id=None)
    assert (
        message_templates.render_sms(session, "new_message", "fr", "défaut", link="L") == "défaut"
    )
