"""Who may open which back-office page is one table (staff.models.PERMISSION_ROLES): the
route signatures and the menu read it, so what the menu offers opens, and what it hides
answers 403."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from paris_avenir.staff.models import PERMISSION_ROLES, Permission, StaffRole, Team
from tests.factories import create_staff
from tests.helpers import sign_in_as

# One page per permission, as the menu links to it.
PAGES = {
    Permission.TASKS: "/pro/a-faire",
    Permission.CALENDAR: "/pro/agenda",
    Permission.TEAM: "/pro/equipe",
    Permission.STATISTICS: "/pro/statistiques",
    Permission.IMPORT: "/pro/import",
    Permission.ADMINISTRATION: "/pro/admin/aides",
}


@pytest.mark.parametrize("role", list(StaffRole))
async def test_the_menu_offers_exactly_the_pages_the_role_opens(
    app: FastAPI, client: httpx.AsyncClient, session: Session, role: StaffRole
) -> None:
    team_id = None
    if role is StaffRole.SUPERVISOR:
        team = Team(name=f"Équipe {role.value}")
        session.add(team)
        session.flush()
        team_id = team.id
    staff = create_staff(session, role=role, team_id=team_id)
    session.commit()
    sign_in_as(client, app, session, staff=staff)
    home = await client.get("/pro/compte")
    assert home.status_code == 200
    menu = home.text.split('<nav aria-label="Menu principal">', 1)[1].split("</nav>", 1)[0]
    offered = set(re.findall(r'href="(/pro[^"]*)"', menu))
    for permission, path in PAGES.items():
        allowed = role in PERMISSION_ROLES[permission]
        response = await client.get(path)
        assert response.status_code == (200 if allowed else 403), (role, path)
        # "À faire" is in the menu only with something to do; the others always.
        if permission is not Permission.TASKS:
            assert (path in offered) is allowed, (role, path)
    # "Mes jeunes" is in the menu for those with a caseload; the others' home is elsewhere.
    assert ("/pro" in offered) is staff.may(Permission.CASELOAD)
    landing = await client.get("/pro")
    if staff.may(Permission.CASELOAD):
        assert landing.status_code == 200
    else:
        assert landing.status_code == 303 and landing.headers["location"] == staff.home_path
