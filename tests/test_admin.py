"""Admins configure the aids and the staff accounts; they never see a youth's file."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests.catalogue import ensure_catalogue
from paris_avenir.aid_requests.models import Aid, AidCode
from paris_avenir.audit.models import AuditEvent
from paris_avenir.staff.models import StaffRole, StaffUser
from tests.factories import assign, create_staff, create_youth
from tests.helpers import post_form, sign_in_as


@pytest.fixture
def admin_staff(app: FastAPI, client: httpx.AsyncClient, session: Session) -> StaffUser:
    ensure_catalogue(session)
    admin = create_staff(session, StaffRole.ADMIN)
    session.commit()
    sign_in_as(client, app, session, staff=admin)
    return admin


async def test_an_admin_changes_an_amount_and_an_age(
    client: httpx.AsyncClient, session: Session, admin_staff: StaffUser
) -> None:
    page = await client.get("/pro/admin/aides")
    assert 'value="651,69"' in page.text
    allocation = await post_form(
        client,
        "/pro/admin/aides/allocation",
        {
            "ouverte": "oui",
            "monthly_amount_cents": "660,00",
            "max_monthly_income_cents": "900",
            "min_age": "18",
            "max_age": "25",
            "renewal_months": "6",
        },
    )
    assert allocation.status_code == 303
    session.expire_all()
    aid = session.scalars(select(Aid).where(Aid.code == AidCode.ALLOCATION)).one()
    assert aid.parameters["monthly_amount_cents"] == 66000
    detail = session.scalars(
        select(AuditEvent.detail).where(AuditEvent.action == "admin.aid_parameters")
    ).one()
    assert detail == {"aid": "allocation", "changed": ["monthly_amount_cents"]}


@pytest.mark.parametrize(
    ("field", "value"), [("min_age", "5"), ("max_age", "vingt"), ("monthly_amount_cents", "x")]
)
async def test_implausible_parameters_are_refused_and_nothing_changes(
    client: httpx.AsyncClient, session: Session, admin_staff: StaffUser, field: str, value: str
) -> None:
    form = {
        "ouverte": "oui",
        "monthly_amount_cents": "651,69",
        "max_monthly_income_cents": "900",
        "min_age": "18",
        "max_age": "25",
        "renewal_months": "6",
        field: value,
    }
    response = await post_form(client, "/pro/admin/aides/allocation", form)
    assert response.status_code == 422
    session.expire_all()
    assert (
        session.scalars(select(Aid).where(Aid.code == AidCode.ALLOCATION))
        .one()
        .parameters["min_age"]
        == 18
    )


async def test_closing_an_aid_stops_new_requests(
    app: FastAPI, client: httpx.AsyncClient, session: Session, admin_staff: StaffUser
) -> None:
    await post_form(client, "/pro/admin/aides/navigo", {"min_age": "18", "max_age": "21"})
    youth = create_youth(session)
    session.commit()
    client.cookies.clear()
    sign_in_as(client, app, session, youth=youth)
    assert "Faire la demande" not in (await client.get("/mon-espace/droits/navigo")).text
    refused = await post_form(client, "/mon-espace/demandes", {"aide": "navigo"})
    assert refused.status_code == 409 and "pas ouverte" in refused.text


async def test_an_admin_creates_changes_and_disables_accounts(
    app: FastAPI, client: httpx.AsyncClient, session: Session, admin_staff: StaffUser
) -> None:
    created = await post_form(
        client,
        "/pro/admin/agents",
        {
            "email": "nouvelle@example.org",
            "nom": "Nouvelle Référente",
            "role": "referent",
            "equipe": "Est",
        },
    )
    assert created.status_code == 200
    # An activation link, never a password or a TOTP secret (the person chooses them).
    assert "/pro/activation/" in created.text and "otpauth" not in created.text
    account = session.scalars(
        select(StaffUser).where(StaffUser.email == "nouvelle@example.org")
    ).one()
    duplicate = await post_form(
        client,
        "/pro/admin/agents",
        {"email": "nouvelle@example.org", "nom": "Doublon", "role": "referent"},
    )
    assert duplicate.status_code == 422 and "existe déjà" in duplicate.text

    await post_form(client, f"/pro/admin/agents/{account.id}/role", {"role": "superviseur"})
    session.refresh(account)
    assert account.role is StaffRole.SUPERVISOR
    change = session.scalars(
        select(AuditEvent.detail).where(AuditEvent.action == "staff.role_changed")
    ).one()
    assert change == {"from": "referent", "to": "superviseur"}

    await post_form(client, f"/pro/admin/agents/{account.id}/desactiver")
    session.refresh(account)
    assert account.is_active is False
    own = await post_form(client, f"/pro/admin/agents/{admin_staff.id}/desactiver")
    assert own.status_code == 422


async def test_admins_see_no_youth_file_and_others_no_admin_page(
    app: FastAPI, client: httpx.AsyncClient, session: Session, admin_staff: StaffUser
) -> None:
    referent = create_staff(session, StaffRole.REFERENT)
    youth = create_youth(session)
    assign(session, youth, referent)
    session.commit()
    assert (await client.get(f"/pro/jeunes/{youth.id}")).status_code == 404
    client.cookies.clear()
    sign_in_as(client, app, session, staff=referent)
    assert (await client.get("/pro/admin/aides")).status_code == 403
    assert (await client.get("/pro/admin/agents")).status_code == 403
