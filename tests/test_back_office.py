"""The référents' and supervisors' back office."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests.catalogue import ensure_catalogue
from paris_avenir.aid_requests.models import AidCode, AidRequest, RequestStatus
from paris_avenir.appointments.models import AppointmentKind
from paris_avenir.audit.models import AuditEvent
from paris_avenir.db import utcnow
from paris_avenir.kit.dates import add_months
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.staff.models import CaseloadAssignment, StaffRole, StaffUser, Team
from paris_avenir.youths.models import FollowUpNote, Youth
from tests.factories import (
    assign,
    create_aid_request,
    create_appointment,
    create_staff,
    create_youth,
)
from tests.helpers import post_form, sign_in_as
from tests.querycount import CountQueries


@pytest.fixture
def team(session: Session) -> Team:
    team = Team(name="Sud")
    session.add(team)
    session.flush()
    return team


@pytest.fixture
def referent(session: Session, team: Team) -> StaffUser:
    return create_staff(session, StaffRole.REFERENT, team_id=team.id, full_name="Awa Diallo")


@pytest.fixture
def youth(session: Session, referent: StaffUser) -> Youth:
    ensure_catalogue(session)
    youth = create_youth(
        session,
        first_name="Kadiatou",
        last_name="Konaté",
        ase_ref="ASE-7731",
        last_activity_at=utcnow() - timedelta(days=45),
    )
    assign(session, youth, referent)
    session.commit()
    return youth


async def test_a_quiet_youth_is_flagged_and_can_be_found(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    active = create_youth(session, first_name="Emma", last_activity_at=utcnow() - timedelta(days=2))
    assign(session, active, referent)
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    page = await client.get("/pro")
    assert "silencieux depuis 45 jours" in page.text
    assert page.text.index("Kadiatou") < page.text.index("Emma")  # quietest first
    quiet_only = await client.get("/pro?filtre=silencieux")
    assert "Kadiatou" in quiet_only.text and "Emma" not in quiet_only.text
    for query in ("konaté", "ASE-77", "kadiatou konat"):
        found = await client.get("/pro", params={"q": query})
        assert "Kadiatou" in found.text and "Emma" not in found.text, query


async def test_milestones_and_flags_show_on_the_dashboard(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    today = utcnow().date()
    # 21 in 20 days (add_months keeps a 29 February valid: date(year - 21, 2, 29) is not).
    youth.birth_date = add_months(today, -21 * 12) + timedelta(days=20)
    youth.phone_unreachable_at = utcnow()
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    page = (await client.get("/pro")).text
    assert "21 ans le" in page and "numéro injoignable" in page


async def test_the_dashboard_and_the_queue_cost_the_same_with_10_or_10000_youths(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    referent: StaffUser,
    count_queries: CountQueries,
) -> None:
    def add_youths(count: int, offset: int) -> None:
        now = utcnow()
        rows = [
            {
                "id": uuid.uuid4(),
                "ase_ref": f"BULK-{offset + number:06d}",
                "first_name": "Jeune",
                "last_name": f"N{offset + number}",
                "birth_date": date(2004, 5, 5),
                "last_activity_at": now - timedelta(days=number % 90),
            }
            for number in range(count)
        ]
        session.execute(insert(Youth), rows)
        session.execute(
            insert(CaseloadAssignment),
            [
                {
                    "id": uuid.uuid4(),
                    "youth_id": row["id"],
                    "referent_id": referent.id,
                    "started_at": now,
                }
                for row in rows
            ],
        )
        session.execute(
            insert(AidRequest),
            [
                {
                    "id": uuid.uuid4(),
                    "youth_id": row["id"],
                    "aid_code": AidCode.NAVIGO,
                    "status": RequestStatus.SUBMITTED,
                    "submitted_at": now - timedelta(days=3),
                    "form_data": {},
                }
                for row in rows[: max(1, count // 10)]
            ],
        )
        session.commit()

    sign_in_as(client, app, session, staff=referent)

    async def queries(path: str) -> int:
        with count_queries() as counter:
            assert (await client.get(path)).status_code == 200
        return counter.count

    add_youths(10, 0)
    small = {
        path: await queries(path) for path in ("/pro", "/pro?filtre=demandes", "/pro/demandes")
    }
    add_youths(9990, 10)
    large = {path: await queries(path) for path in small}
    assert large == small
    page = (await client.get("/pro")).text
    assert "10000 jeunes" in page and "Page 1 sur 400" in page


async def test_the_youth_file_is_audited_and_the_journal_encrypted(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    psychologist = create_staff(session, StaffRole.PSYCHOLOGIST)
    create_appointment(
        session,
        youth,
        psychologist,
        utcnow() + timedelta(days=2),
        kind=AppointmentKind.PSYCHOLOGIST,
    )
    create_appointment(session, youth, referent, utcnow() + timedelta(days=3))
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    page = await client.get(f"/pro/jeunes/{youth.id}")
    assert page.status_code == 200
    assert "psychologue" not in page.text  # health data stays with the psychologist
    assert "Avec le référent (prévu)" in page.text
    response = await post_form(
        client,
        f"/pro/jeunes/{youth.id}/notes",
        {"note": "Appel : cherche un logement près de son travail."},
    )
    assert response.status_code == 303
    stored = session.scalars(select(FollowUpNote.body_encrypted)).one()
    assert "logement" not in stored
    assert (
        "cherche un logement près de son travail"
        in (await client.get(f"/pro/jeunes/{youth.id}")).text
    )
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.youth_id == youth.id)
    ).all()
    assert actions.count("youth.view") == 2 and "youth.note" in actions


async def test_instruction_from_deposee_to_granted_with_the_youth_told_at_each_step(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    request = create_aid_request(
        session,
        youth,
        aid_code=AidCode.ALLOCATION,
        status=RequestStatus.SUBMITTED,
        submitted_at=utcnow() - timedelta(days=35),
        form_data={"monthly_income": "0"},
    )
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    queue = await client.get("/pro/demandes")
    assert "Konaté" in queue.text and "row--overdue" in queue.text

    page = await client.get(f"/pro/demandes/{request.id}")
    assert "en retard" in page.text
    assert (await post_form(client, f"/pro/demandes/{request.id}/prendre")).status_code == 303
    refused = await post_form(client, f"/pro/demandes/{request.id}/pieces", {"texte": " "})
    assert refused.status_code == 422
    await post_form(client, f"/pro/demandes/{request.id}/pieces", {"texte": "Il manque votre RIB."})
    session.expire_all()
    assert session.get_one(AidRequest, request.id).status is RequestStatus.MISSING_DOCUMENTS

    # The youth answers, then the référent grants.
    session.get_one(AidRequest, request.id).status = RequestStatus.UNDER_REVIEW
    session.commit()
    response = await post_form(
        client,
        f"/pro/demandes/{request.id}/accorder",
        {"montant": "651,69", "texte": "Premier versement le 5."},
    )
    assert response.status_code == 303
    session.expire_all()
    granted = session.get_one(AidRequest, request.id)
    assert granted.status is RequestStatus.GRANTED and granted.granted_amount_cents == 65169
    assert granted.renewal_due_on is not None
    assert (granted.renewal_due_on - utcnow()).days in range(180, 186)
    notifications = session.scalars(
        select(OutboxMessage).where(OutboxMessage.template == "request_update")
    ).all()
    # Documents asked, granted: one message per decision; taking it on is no decision.
    assert len(notifications) == 2
    client.cookies.clear()
    sign_in_as(client, app, session, youth=youth)
    seen = (await client.get(f"/mon-espace/demandes/{request.id}")).text
    assert "Accordée" in seen and "651,69" in seen and "Premier versement le 5." in seen
    assert "Il manque votre RIB." in seen  # the history the youth reads


async def test_a_refusal_needs_a_reason_for_the_youth(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    request = create_aid_request(
        session,
        youth,
        aid_code=AidCode.AIDE_URGENCE,
        status=RequestStatus.SUBMITTED,
        submitted_at=utcnow(),
    )
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    short = await post_form(client, f"/pro/demandes/{request.id}/refuser", {"texte": "Non."})
    assert short.status_code == 422 and "Expliquez le refus" in short.text
    session.expire_all()
    assert session.get_one(AidRequest, request.id).status is RequestStatus.SUBMITTED
    await post_form(
        client,
        f"/pro/demandes/{request.id}/refuser",
        {"texte": "Vous avez déjà eu cette aide ce mois-ci."},
    )
    session.expire_all()
    assert session.get_one(AidRequest, request.id).status is RequestStatus.REFUSED


async def test_another_caseload_cannot_instruct(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth, team: Team
) -> None:
    request = create_aid_request(
        session, youth, aid_code=AidCode.NAVIGO, status=RequestStatus.SUBMITTED
    )
    stranger = create_staff(session, StaffRole.REFERENT, team_id=team.id)
    session.commit()
    sign_in_as(client, app, session, staff=stranger)
    assert (await client.get(f"/pro/demandes/{request.id}")).status_code == 404
    assert (
        await post_form(client, f"/pro/demandes/{request.id}/accorder", {"montant": "1"})
    ).status_code == 404
    assert "Konaté" not in (await client.get("/pro/demandes")).text
    session.expire_all()
    assert session.get_one(AidRequest, request.id).status is RequestStatus.SUBMITTED
    denied = session.scalars(select(AuditEvent).where(AuditEvent.action == "access_denied")).all()
    assert len(denied) == 2


async def test_a_supervisor_reassigns_and_the_former_referent_loses_access(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    referent: StaffUser,
    youth: Youth,
    team: Team,
) -> None:
    supervisor = create_staff(session, StaffRole.SUPERVISOR, team_id=team.id)
    successor = create_staff(
        session, StaffRole.REFERENT, team_id=team.id, full_name="Julien Marchand"
    )
    session.commit()
    sign_in_as(client, app, session, staff=supervisor)
    team_page = await client.get("/pro/equipe")
    assert "Awa Diallo" in team_page.text and "Julien Marchand" in team_page.text
    response = await post_form(
        client,
        f"/pro/jeunes/{youth.id}/referent",
        {"referent": str(successor.id), "raison": "Congé long"},
    )
    assert response.status_code == 303

    history = session.scalars(
        select(CaseloadAssignment)
        .where(CaseloadAssignment.youth_id == youth.id)
        .order_by(CaseloadAssignment.started_at)
    ).all()
    assert [(row.referent_id, row.ended_at is None) for row in history] == [
        (referent.id, False),
        (successor.id, True),
    ]
    client.cookies.clear()
    sign_in_as(client, app, session, staff=referent)
    assert (await client.get(f"/pro/jeunes/{youth.id}")).status_code == 404
    client.cookies.clear()
    sign_in_as(client, app, session, staff=successor)
    assert (await client.get(f"/pro/jeunes/{youth.id}")).status_code == 200


async def test_only_a_supervisor_reassigns_and_only_within_the_team(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    referent: StaffUser,
    youth: Youth,
    team: Team,
) -> None:
    other_team = Team(name="Nord")
    session.add(other_team)
    session.flush()
    outsider = create_staff(session, StaffRole.REFERENT, team_id=other_team.id)
    supervisor = create_staff(session, StaffRole.SUPERVISOR, team_id=team.id)
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    assert (
        await post_form(client, f"/pro/jeunes/{youth.id}/referent", {"referent": str(referent.id)})
    ).status_code == 403
    client.cookies.clear()
    sign_in_as(client, app, session, staff=supervisor)
    refused = await post_form(
        client, f"/pro/jeunes/{youth.id}/referent", {"referent": str(outsider.id)}
    )
    assert refused.status_code == 422 and "référent actif de votre équipe" in refused.text


async def test_a_referent_pauses_the_watch_until_a_date(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    from paris_avenir.outreach import engine

    sign_in_as(client, app, session, staff=referent)
    until = (utcnow() + timedelta(days=20)).date().isoformat()
    assert (
        await post_form(client, f"/pro/jeunes/{youth.id}/pause", {"jusqu_au": until})
    ).status_code == 303
    past = await post_form(client, f"/pro/jeunes/{youth.id}/pause", {"jusqu_au": "2020-01-01"})
    assert past.status_code == 422
    session.expire_all()
    report = engine.run_cycle(session, base_url="http://x", secret_key="k" * 40, dry_run=True)
    assert youth.id not in {contact.youth_id for contact in report.contacts}
    await post_form(client, f"/pro/jeunes/{youth.id}/pause", {"jusqu_au": ""})
    session.expire_all()
    assert session.get_one(Youth, youth.id).outreach_paused_until is None
    report = engine.run_cycle(session, base_url="http://x", secret_key="k" * 40, dry_run=True)
    assert youth.id in {contact.youth_id for contact in report.contacts}
