"""Nobody on the staff reaches a youth without a reason. Walks every staff route that takes
an id: out of scope is a 404 identical to a missing id, and leaves an audit entry."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests.models import AidCode, RequestStatus
from paris_avenir.audit.models import AuditEvent
from paris_avenir.db import utcnow
from paris_avenir.documents.models import DocumentKind
from paris_avenir.staff.models import CaseloadAssignment, StaffRole, StaffUser, Team
from paris_avenir.youths.models import Youth
from tests.factories import assign, create_aid_request, create_document, create_staff, create_youth
from tests.helpers import post_form, sign_in_as

ID_PARAMETER = re.compile(r"\{(\w+_id)\}")
# Ids that lead to a youth's data (staff accounts are the admin's, not a youth's).
YOUTH_DATA_IDS = {"youth_id", "request_id", "document_id", "thread_id", "message_id"}


@dataclass
class World:
    referent: StaffUser
    other_referent: StaffUser
    supervisor: StaffUser
    other_supervisor: StaffUser
    psychologist: StaffUser
    admin: StaffUser
    youth: Youth
    other_youth: Youth


@pytest.fixture
def world(session: Session) -> World:
    south, north = Team(name="Sud"), Team(name="Nord")
    session.add_all([south, north])
    session.flush()
    referent = create_staff(session, StaffRole.REFERENT, team_id=south.id)
    other_referent = create_staff(session, StaffRole.REFERENT, team_id=south.id)
    youth = create_youth(session, first_name="Lina")
    other_youth = create_youth(session, first_name="Yanis")
    assign(session, youth, referent)
    assign(session, other_youth, other_referent)
    session.commit()
    return World(
        referent=referent,
        other_referent=other_referent,
        supervisor=create_staff(session, StaffRole.SUPERVISOR, team_id=south.id),
        other_supervisor=create_staff(session, StaffRole.SUPERVISOR, team_id=north.id),
        psychologist=create_staff(session, StaffRole.PSYCHOLOGIST, team_id=south.id),
        admin=create_staff(session, StaffRole.ADMIN),
        youth=youth,
        other_youth=other_youth,
    )


def staff_routes_with_ids(app: FastAPI) -> list[tuple[str, str]]:
    """Every staff route taking an id, as the application itself lists them (OpenAPI)."""
    found: list[tuple[str, str]] = []
    for path, operations in app.openapi()["paths"].items():
        if path.startswith("/pro") and set(ID_PARAMETER.findall(path)) & YOUTH_DATA_IDS:
            found.extend((method.upper(), path) for method in sorted(operations))
    return found


def fill(path: str, ids: dict[str, str], default: str | None = None) -> str:
    """Each {…_id} gets the given id, or a random one (or `default`); {action} a real one."""
    filled = ID_PARAMETER.sub(
        lambda match: ids.get(match.group(1)) or default or str(uuid.uuid4()), path
    )
    return filled.replace("{action}", "accorder")


def denied_count(session: Session, staff: StaffUser) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "access_denied", AuditEvent.actor_staff_id == staff.id)
        )
        or 0
    )


async def call(client: httpx.AsyncClient, method: str, url: str) -> httpx.Response:
    if method == "GET":
        return await client.get(url)
    return await post_form(client, url)


async def test_every_staff_route_with_an_id_refuses_another_caseload(
    app: FastAPI, client: httpx.AsyncClient, session: Session, world: World
) -> None:
    their_request = create_aid_request(
        session, world.other_youth, aid_code=AidCode.NAVIGO, status=RequestStatus.SUBMITTED
    )
    their_document = create_document(
        session, app.state.document_store, world.other_youth, DocumentKind.IDENTITY
    )
    session.commit()
    theirs = {
        "youth_id": str(world.other_youth.id),
        "request_id": str(their_request.id),
        "document_id": str(their_document.id),
    }
    routes = staff_routes_with_ids(app)
    assert {
        ("GET", "/pro/jeunes/{youth_id}"),
        ("GET", "/pro/demandes/{request_id}"),
        ("GET", "/pro/jeunes/{youth_id}/documents/{document_id}"),
    } <= set(routes)
    sign_in_as(client, app, session, staff=world.referent)
    for method, path in routes:
        before = denied_count(session, world.referent)
        out_of_scope = await call(client, method, fill(path, theirs))
        missing = await call(client, method, fill(path, {}))
        malformed = await call(client, method, fill(path, {}, "pas-un-id"))
        assert out_of_scope.status_code == missing.status_code == malformed.status_code == 404, path
        assert out_of_scope.content == missing.content == malformed.content, path
        assert denied_count(session, world.referent) == before + 3, path
    session.refresh(their_request)
    assert their_request.status is RequestStatus.SUBMITTED


async def test_a_youth_in_scope_does_not_open_another_youths_document(
    app: FastAPI, client: httpx.AsyncClient, session: Session, world: World
) -> None:
    their_document = create_document(
        session, app.state.document_store, world.other_youth, DocumentKind.IDENTITY
    )
    session.commit()
    sign_in_as(client, app, session, staff=world.referent)
    response = await client.get(f"/pro/jeunes/{world.youth.id}/documents/{their_document.id}")
    assert response.status_code == 404
    assert denied_count(session, world.referent) == 1


async def test_a_referent_opens_their_own_youth_and_the_youth_sees_it(
    app: FastAPI, client: httpx.AsyncClient, session: Session, world: World
) -> None:
    sign_in_as(client, app, session, staff=world.referent)
    response = await client.get(f"/pro/jeunes/{world.youth.id}")
    assert response.status_code == 200 and "Lina" in response.text

    client.cookies.clear()
    sign_in_as(client, app, session, youth=world.youth)
    page = await client.get("/mon-espace/acces")
    assert world.referent.full_name in page.text
    assert "a consulté votre dossier" in page.text


@pytest.mark.parametrize(
    ("who", "sees_youth"),
    [
        ("referent", True),
        ("other_referent", False),
        ("supervisor", True),
        ("other_supervisor", False),
        ("psychologist", False),
        ("admin", False),
    ],
)
async def test_each_role_sees_only_its_scope(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    world: World,
    who: str,
    sees_youth: bool,
) -> None:
    staff = getattr(world, who)
    sign_in_as(client, app, session, staff=staff)
    response = await client.get(f"/pro/jeunes/{world.youth.id}")
    assert response.status_code == (200 if sees_youth else 404)
    listing = await client.get("/pro")
    assert ("Lina" in listing.text) is sees_youth


async def test_a_reassigned_youth_is_out_of_the_former_referents_reach(
    app: FastAPI, client: httpx.AsyncClient, session: Session, world: World
) -> None:
    current = session.scalars(
        select(CaseloadAssignment).where(CaseloadAssignment.youth_id == world.youth.id)
    ).one()
    current.ended_at = utcnow()
    session.flush()
    assign(session, world.youth, world.other_referent)
    session.commit()
    sign_in_as(client, app, session, staff=world.referent)
    assert (await client.get(f"/pro/jeunes/{world.youth.id}")).status_code == 404


async def test_youths_cannot_use_staff_pages(
    app: FastAPI, client: httpx.AsyncClient, session: Session, world: World
) -> None:
    sign_in_as(client, app, session, youth=world.youth)
    response = await client.get(f"/pro/jeunes/{world.youth.id}")
    assert response.status_code == 303 and response.headers["location"].startswith("/pro/connexion")


async def test_a_youth_sees_only_their_own_accesses(
    app: FastAPI, client: httpx.AsyncClient, session: Session, world: World
) -> None:
    sign_in_as(client, app, session, staff=world.other_referent)
    assert (await client.get(f"/pro/jeunes/{world.other_youth.id}")).status_code == 200
    client.cookies.clear()
    sign_in_as(client, app, session, youth=world.youth)
    page = await client.get("/mon-espace/acces")
    assert world.other_referent.full_name not in page.text
    assert "Personne n’a encore consulté votre dossier" in page.text
