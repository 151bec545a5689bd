"""Separation of duties on grants: nothing above the aid's parameters; above the admin's
threshold, or on a request the same person filed at the counter, a second person (a
supervisor of the team) confirms, never the one who granted; a confirmation happens once,
even with 30 at the same moment on PostgreSQL."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from paris_avenir.aid_requests.catalogue import ensure_catalogue
from paris_avenir.aid_requests.models import (
    Aid,
    AidCode,
    AidRequest,
    AidRequestEvent,
    RequestStatus,
)
from paris_avenir.audit.models import AuditEvent
from paris_avenir.auth import sessions
from paris_avenir.auth.models import AuthMethod
from paris_avenir.db import utcnow
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.staff.models import StaffRole, StaffUser, Team
from paris_avenir.youths.models import Youth
from tests.conftest import postgres_schema_url
from tests.factories import assign, create_aid_request, create_staff, create_youth
from tests.helpers import at_once, post_form, sign_in_as
from tests.servers import RacePlatform, race_platform


@pytest.fixture
def team(session: Session) -> Team:
    team = Team(name="Nord")
    session.add(team)
    session.flush()
    return team


@pytest.fixture
def referent(session: Session, team: Team) -> StaffUser:
    return create_staff(session, StaffRole.REFERENT, team_id=team.id, full_name="Awa Diallo")


@pytest.fixture
def supervisor(session: Session, team: Team) -> StaffUser:
    return create_staff(session, StaffRole.SUPERVISOR, team_id=team.id, full_name="Inès Moreau")


@pytest.fixture
def youth(session: Session, referent: StaffUser) -> Youth:
    ensure_catalogue(session)
    youth = create_youth(session, first_name="Moussa", last_name="Traoré")
    assign(session, youth, referent)
    session.commit()
    return youth


def _filed(
    session: Session, youth: Youth, code: AidCode, *, filed_by: StaffUser | None = None
) -> AidRequest:
    request = create_aid_request(
        session,
        youth,
        aid_code=code,
        status=RequestStatus.UNDER_REVIEW,
        submitted_at=utcnow() - timedelta(days=2),
        filed_by_staff_id=filed_by.id if filed_by else None,
    )
    session.commit()
    return request


def _text(html: str) -> str:
    """What a person reads: no tags, ordinary spaces."""
    text = re.sub(r"<[^>]+>", " ", html)
    return re.sub(r"[\s\u202f\u00a0]+", " ", text)


def _audited(session: Session, action: str, request: AidRequest) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == action, AuditEvent.object_id == request.id)
        )
        or 0
    )


def _told(session: Session, youth: Youth) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.template == "request_update", OutboxMessage.youth_id == youth.id)
        )
        or 0
    )


async def test_a_grant_above_the_aid_cap_is_refused_and_nothing_changes(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    request = _filed(session, youth, AidCode.AIDE_URGENCE)
    sign_in_as(client, app, session, staff=referent)
    refused = await post_form(
        client, f"/pro/demandes/{request.id}/accorder", {"montant": "99 999,99", "texte": "Oui"}
    )
    assert refused.status_code == 422
    assert "99999,99 € dépasse le plafond de cette aide, 500 €" in refused.text
    assert "Rien n’a été enregistré" in refused.text
    session.expire_all()
    unchanged = session.get_one(AidRequest, request.id)
    assert unchanged.status is RequestStatus.UNDER_REVIEW
    assert (unchanged.granted_amount_cents, unchanged.decision_reason) == (None, None)
    assert (
        session.scalars(
            select(AidRequestEvent).where(AidRequestEvent.aid_request_id == request.id)
        ).all()
        == []
    )
    assert _told(session, youth) == 0

    # The cap is the aid's parameter, which the admin sets: raised, the same amount passes
    # the cap (and, above the threshold, waits for a second person).
    aid = session.scalars(select(Aid).where(Aid.code == AidCode.AIDE_URGENCE)).one()
    aid.parameters = {"max_amount_cents": 60000}
    session.commit()
    above = await post_form(client, f"/pro/demandes/{request.id}/accorder", {"montant": "601"})
    assert above.status_code == 422 and "600 €" in above.text
    granted = await post_form(client, f"/pro/demandes/{request.id}/accorder", {"montant": "550"})
    assert granted.status_code == 303
    session.expire_all()
    assert session.get_one(AidRequest, request.id).granted_amount_cents == 55000


async def test_the_allocation_cannot_exceed_its_monthly_amount_nor_a_pass_be_paid(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    allocation = _filed(session, youth, AidCode.ALLOCATION)
    navigo = _filed(session, youth, AidCode.NAVIGO)
    sign_in_as(client, app, session, staff=referent)
    page = await client.get(f"/pro/demandes/{allocation.id}")
    assert "Au plus 651,69 € (paramètres de l’aide)" in _text(page.text)
    over = await post_form(client, f"/pro/demandes/{allocation.id}/accorder", {"montant": "652"})
    assert over.status_code == 422 and "651,69 €" in over.text
    paid = await post_form(client, f"/pro/demandes/{navigo.id}/accorder", {"montant": "10"})
    assert paid.status_code == 422 and "ne se donne pas en argent" in paid.text
    zero = await post_form(client, f"/pro/demandes/{allocation.id}/accorder", {"montant": "0"})
    assert zero.status_code == 422
    session.expire_all()
    assert session.get_one(AidRequest, allocation.id).status is RequestStatus.UNDER_REVIEW
    assert session.get_one(AidRequest, navigo.id).status is RequestStatus.UNDER_REVIEW
    # Within the parameters and under the threshold: granted at once.
    ok = await post_form(client, f"/pro/demandes/{allocation.id}/accorder", {"montant": "651,69"})
    assert ok.status_code == 303 and "accorde=1" in ok.headers["location"]


async def test_above_the_threshold_a_supervisor_confirms_and_only_then_the_youth_is_told(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    referent: StaffUser,
    supervisor: StaffUser,
    youth: Youth,
) -> None:
    request = _filed(session, youth, AidCode.BOURSE)
    sign_in_as(client, app, session, staff=referent)
    sent = await post_form(
        client,
        f"/pro/demandes/{request.id}/accorder",
        {"montant": "1 500", "texte": "Bourse pour l’année."},
    )
    assert sent.status_code == 303 and "a_confirmer=1" in sent.headers["location"]
    waiting = await client.get(sent.headers["location"])
    assert "attend la confirmation d’une autre personne" in waiting.text
    assert "Confirmer l’accord" not in waiting.text  # not for the one who granted
    session.expire_all()
    pending = session.get_one(AidRequest, request.id)
    assert pending.status is RequestStatus.TO_CONFIRM
    assert (pending.granted_amount_cents, pending.proposed_amount_cents) == (None, 150000)
    assert _told(session, youth) == 0 and _audited(session, "aid_request.grant_proposed", request)

    # The référent cannot confirm their own grant, even by forging the form.
    own = await post_form(client, f"/pro/demandes/{request.id}/confirmer")
    assert own.status_code == 422
    session.expire_all()
    assert session.get_one(AidRequest, request.id).status is RequestStatus.TO_CONFIRM

    # The youth reads "under review", no amount, no message yet.
    client.cookies.clear()
    sign_in_as(client, app, session, youth=youth)
    seen = (await client.get(f"/mon-espace/demandes/{request.id}")).text
    assert "En cours d’examen" in seen and "1500" not in seen and "Bourse pour" not in seen

    # The supervisor sees it at the top of the requests, with who granted what, and confirms.
    client.cookies.clear()
    sign_in_as(client, app, session, staff=supervisor)
    queue = (await client.get("/pro/demandes")).text
    assert "Accord à confirmer" in queue and "Traoré" in queue
    page = (await client.get(f"/pro/demandes/{request.id}")).text
    assert "Accordé par Awa Diallo" in _text(page)
    assert "1 500,00 €" in _text(page) and "le montant dépasse 1 000,00 €" in _text(page)
    confirmed = await post_form(client, f"/pro/demandes/{request.id}/confirmer")
    assert confirmed.status_code == 303
    session.expire_all()
    granted = session.get_one(AidRequest, request.id)
    assert granted.status is RequestStatus.GRANTED and granted.granted_amount_cents == 150000
    assert _told(session, youth) == 1
    confirmation = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "aid_request.grant_confirmed",
            AuditEvent.object_id == request.id,
        )
    ).one()
    assert confirmation.actor_staff_id == supervisor.id
    assert confirmation.detail["granted_by"] == str(referent.id)
    again = await post_form(client, f"/pro/demandes/{request.id}/confirmer")
    assert again.status_code == 409 and "déjà été confirmé" in again.text
    assert _told(session, youth) == 1


async def test_a_supervisor_never_confirms_their_own_grant(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    supervisor: StaffUser,
    team: Team,
    youth: Youth,
) -> None:
    request = _filed(session, youth, AidCode.BOURSE)
    sign_in_as(client, app, session, staff=supervisor)
    await post_form(client, f"/pro/demandes/{request.id}/accorder", {"montant": "2000"})
    page = (await client.get(f"/pro/demandes/{request.id}")).text
    assert "Confirmer l’accord" not in page
    own = await post_form(client, f"/pro/demandes/{request.id}/confirmer")
    assert own.status_code == 422 and "vous-même" in own.text
    rejected = await post_form(client, f"/pro/demandes/{request.id}/renvoyer")
    assert rejected.status_code == 422
    session.expire_all()
    assert session.get_one(AidRequest, request.id).status is RequestStatus.TO_CONFIRM
    colleague = create_staff(session, StaffRole.SUPERVISOR, team_id=team.id)
    client.cookies.clear()
    sign_in_as(client, app, session, staff=colleague)
    assert (await post_form(client, f"/pro/demandes/{request.id}/confirmer")).status_code == 303
    session.expire_all()
    assert session.get_one(AidRequest, request.id).status is RequestStatus.GRANTED


async def test_a_request_filed_at_the_counter_by_the_same_person_always_needs_a_second(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    referent: StaffUser,
    supervisor: StaffUser,
    team: Team,
    youth: Youth,
) -> None:
    own = _filed(session, youth, AidCode.AIDE_URGENCE, filed_by=referent)
    colleague = create_staff(session, StaffRole.REFERENT, team_id=team.id)
    by_colleague = _filed(session, youth, AidCode.ALLOCATION, filed_by=colleague)
    sign_in_as(client, app, session, staff=referent)
    small = await post_form(client, f"/pro/demandes/{own.id}/accorder", {"montant": "50"})
    assert "a_confirmer=1" in small.headers["location"]
    other = await post_form(client, f"/pro/demandes/{by_colleague.id}/accorder", {"montant": "600"})
    assert "accorde=1" in other.headers["location"]  # filed by someone else: no second needed
    client.cookies.clear()
    sign_in_as(client, app, session, staff=supervisor)
    page = (await client.get(f"/pro/demandes/{own.id}")).text
    assert "la même personne a déposé la demande au guichet" in page
    # Not confirmed: back to the référent's review, told to nobody, audited.
    back = await post_form(client, f"/pro/demandes/{own.id}/renvoyer")
    assert back.status_code == 303
    session.expire_all()
    returned = session.get_one(AidRequest, own.id)
    assert returned.status is RequestStatus.UNDER_REVIEW and returned.proposed_amount_cents is None
    assert _audited(session, "aid_request.grant_rejected", own) == 1
    assert _told(session, youth) == 1  # the colleague's allocation only


async def test_the_admin_sets_the_threshold(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, youth: Youth
) -> None:
    admin_staff = create_staff(session, StaffRole.ADMIN)
    request = _filed(session, youth, AidCode.AIDE_URGENCE)
    sign_in_as(client, app, session, staff=referent)
    assert (await post_form(client, "/pro/admin/aides/seuil", {"seuil": "1"})).status_code == 403
    client.cookies.clear()
    sign_in_as(client, app, session, staff=admin_staff)
    page = (await client.get("/pro/admin/aides")).text
    assert 'name="seuil"' in page and 'value="1000"' in page
    wrong = await post_form(client, "/pro/admin/aides/seuil", {"seuil": "beaucoup"})
    assert wrong.status_code == 422 and "Écrivez un montant" in wrong.text
    saved = await post_form(client, "/pro/admin/aides/seuil", {"seuil": "200"})
    assert saved.status_code == 303
    assert 'value="200"' in (await client.get("/pro/admin/aides")).text
    change = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "admin.grant_confirmation_threshold")
    ).one()
    assert change.detail == {"from_cents": 100000, "to_cents": 20000}
    client.cookies.clear()
    sign_in_as(client, app, session, staff=referent)
    sent = await post_form(client, f"/pro/demandes/{request.id}/accorder", {"montant": "300"})
    assert "a_confirmer=1" in sent.headers["location"]


# --- 30 confirmations at once, on PostgreSQL ------------------------------------------

SCHEMA = "duties_races"
PARALLEL = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RacePlatform]:
    url = postgres_schema_url(SCHEMA, needed_for="races on PostgreSQL")
    with race_platform(url, tmp_path_factory.mktemp("duties")) as platform:
        yield platform


def test_thirty_confirmations_at_once_confirm_once(server: RacePlatform) -> None:
    with server.factory.begin() as session:
        ensure_catalogue(session)
        team = Team(name="Course aux accords")
        session.add(team)
        session.flush()
        referent = create_staff(session, team_id=team.id)
        supervisor = create_staff(session, StaffRole.SUPERVISOR, team_id=team.id)
        youth = create_youth(session)
        assign(session, youth, referent)
        request = create_aid_request(
            session,
            youth,
            aid_code=AidCode.BOURSE,
            status=RequestStatus.TO_CONFIRM,
            submitted_at=utcnow(),
            proposed_by_staff_id=referent.id,
            proposed_amount_cents=250000,
        )
        session.flush()
        request_id, youth_id = request.id, youth.id
        started = sessions.start_session(
            session, staff_id=supervisor.id, method=AuthMethod.PASSWORD_TOTP
        )
    with httpx.Client(base_url=server.url) as client:
        client.cookies.set(server.settings.session_cookie_name, started.token)
        page = client.get(f"/pro/demandes/{request_id}")
        token = re.search(r'"x-csrftoken": "([^"]+)"', page.text)
        assert page.status_code == 200 and token and "Confirmer l’accord" in page.text
        cookies = dict(client.cookies)

    def confirm(_index: int) -> int:
        with httpx.Client(base_url=server.url, cookies=cookies, timeout=60) as client:
            response = client.post(
                f"/pro/demandes/{request_id}/confirmer", data={"csrftoken": token.group(1)}
            )
            return response.status_code

    statuses = Counter(at_once(PARALLEL, confirm))
    # The others came too late: a conflict (409), told on the page, not a form error.
    assert statuses == {303: 1, 409: PARALLEL - 1}
    with server.factory() as session:
        granted = session.get_one(AidRequest, request_id)
        assert granted.status is RequestStatus.GRANTED
        events = session.scalar(
            select(func.count())
            .select_from(AidRequestEvent)
            .where(
                AidRequestEvent.aid_request_id == request_id,
                AidRequestEvent.to_status == RequestStatus.GRANTED,
            )
        )
        confirmations = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.action == "aid_request.grant_confirmed",
                AuditEvent.object_id == request_id,
            )
        )
        told = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.template == "request_update", OutboxMessage.youth_id == youth_id)
        )
        assert (events, confirmations, told) == (1, 1, 1)
