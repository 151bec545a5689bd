"""Races on PostgreSQL, with 30–40 requests at once against a real server on loopback: a
task is closed once, a check-in answered once (one alert, one email), a task key opens one
task, an escalation happens once. The counts must be exact."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from paris_avenir.audit.models import AuditEvent
from paris_avenir.auth import sessions
from paris_avenir.auth.models import AuthMethod
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.outreach import checkin
from paris_avenir.staff import tasks
from paris_avenir.staff.models import StaffRole, StaffTask, StaffUser, TaskKind, Team
from paris_avenir.youths.models import FollowUpNote, Youth
from tests.conftest import postgres_schema_url
from tests.factories import assign, create_check_in, create_staff, create_youth
from tests.helpers import at_once
from tests.servers import RacePlatform, race_platform

SCHEMA = "task_races"
PARALLEL = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RacePlatform]:
    url = postgres_schema_url(SCHEMA, needed_for="races on PostgreSQL")
    with race_platform(url, tmp_path_factory.mktemp("races")) as platform:
        yield platform


def _people(session: Session) -> tuple[StaffUser, StaffUser, Youth]:
    team = Team(name=f"Course {time.monotonic_ns()}")
    session.add(team)
    session.flush()
    referent = create_staff(session, team_id=team.id)
    supervisor = create_staff(session, StaffRole.SUPERVISOR, team_id=team.id)
    youth = create_youth(
        session,
        birth_date=date(2004, 6, 1),
        activated_at=datetime.now(UTC) - timedelta(days=100),
        last_activity_at=datetime.now(UTC) - timedelta(days=3),
    )
    assign(session, youth, referent)
    return referent, supervisor, youth


def _signed_in_client(server: RacePlatform, *, staff: StaffUser) -> tuple[dict[str, str], str]:
    """Cookies and CSRF token of one signed-in browser, shared by every parallel request."""
    with server.factory.begin() as session:
        started = sessions.start_session(
            session, staff_id=staff.id, method=AuthMethod.PASSWORD_TOTP
        )
    with httpx.Client(base_url=server.url) as client:
        client.cookies.set(server.settings.session_cookie_name, started.token)
        page = client.get("/pro/a-faire")
        token = re.search(r'"x-csrftoken": "([^"]+)"', page.text)
        assert page.status_code == 200 and token
        return dict(client.cookies), token.group(1)


def test_thirty_people_closing_one_task_at_once_close_it_once(server: RacePlatform) -> None:
    with server.factory.begin() as session:
        referent, _supervisor, youth = _people(session)
        task = tasks.open_task(
            session, youth_id=youth.id, kind=TaskKind.MISSED_APPOINTMENT, key=f"race:{youth.id}"
        )
        assert task is not None
        task_id, youth_id = task.id, youth.id
    cookies, token = _signed_in_client(server, staff=referent)

    def close(index: int) -> int:
        with httpx.Client(base_url=server.url, cookies=cookies, timeout=30) as client:
            response = client.post(
                f"/pro/a-faire/{task_id}",
                data={"csrftoken": token, "resultat": "joint", "note": f"appel {index}"},
            )
            return response.status_code

    statuses = Counter(at_once(PARALLEL, close))
    assert statuses == {303: 1, 409: PARALLEL - 1}
    with server.factory() as session:
        closes = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "task.closed", AuditEvent.object_id == task_id)
        )
        notes = session.scalar(
            select(func.count()).select_from(FollowUpNote).where(FollowUpNote.youth_id == youth_id)
        )
        assert (closes, notes) == (1, 1)


def test_thirty_taps_on_one_check_in_answer_it_once(server: RacePlatform) -> None:
    with server.factory.begin() as session:
        referent, _supervisor, youth = _people(session)
        attempt = create_check_in(session, youth, at=datetime.now(UTC))
        link = checkin.link(attempt.id, secret_key=server.settings.secret_key, base_url="")
        youth_id, referent_email = youth.id, referent.email
    with httpx.Client(base_url=server.url) as client:
        page = client.get(link)
        token = re.search(r'"x-csrftoken": "([^"]+)"', page.text)
        assert token
        cookies = dict(client.cookies)

    def answer(_index: int) -> str:
        with httpx.Client(base_url=server.url, cookies=cookies, timeout=30) as client:
            response = client.post(link, data={"csrftoken": token.group(1), "reponse": "aide"})
            assert response.status_code == 200
            return "thanks" if "Quelqu’un va vous appeler" in response.text else "already"

    answers = Counter(at_once(PARALLEL, answer))
    assert answers == {"thanks": 1, "already": PARALLEL - 1}
    with server.factory() as session:
        alerts = session.scalars(
            select(StaffTask).where(
                StaffTask.youth_id == youth_id, StaffTask.kind == TaskKind.NEEDS_HELP_ALERT
            )
        ).all()
        emails = session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.template == "task_urgent_alert",
                OutboxMessage.recipient == referent_email,
            )
        ).all()
        assert (len(alerts), len(emails)) == (1, 1)


def test_forty_workers_opening_the_same_task_open_one(server: RacePlatform) -> None:
    with server.factory.begin() as session:
        referent, _supervisor, youth = _people(session)
        youth_id, referent_id = youth.id, referent.id

    def open_one(_index: int) -> bool:
        with server.factory.begin() as session:
            opened = tasks.open_task(
                session,
                youth_id=youth_id,
                kind=TaskKind.NEEDS_HELP_ALERT,
                key=f"same:{youth_id}",
                base_url="http://x",
            )
            return opened is not None

    opened = at_once(40, open_one)
    assert opened.count(True) == 1
    with server.factory() as session:
        count = session.scalar(
            select(func.count()).select_from(StaffTask).where(StaffTask.youth_id == youth_id)
        )
        emails = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.template == "task_urgent_alert",
                OutboxMessage.staff_id == referent_id,
            )
        )
        assert (count, emails) == (1, 1)


def test_thirty_schedulers_escalating_one_task_move_it_once(server: RacePlatform) -> None:
    now = datetime.now(UTC)
    with server.factory.begin() as session:
        _referent, supervisor, youth = _people(session)
        task = tasks.open_task(
            session,
            youth_id=youth.id,
            kind=TaskKind.NEEDS_HELP_ALERT,
            key=f"late:{youth.id}",
            now=now - timedelta(days=10),
            base_url="http://x",
        )
        assert task is not None
        task_id = task.id
        planned = [
            escalation
            for escalation in tasks.plan_escalations(session, now, 3)
            if escalation.task_id == task_id
        ]
        assert len(planned) == 1 and planned[0].to_id == supervisor.id
        supervisor_email = supervisor.email

    def escalate(_index: int) -> bool:
        with server.factory.begin() as session:
            return tasks.escalate(session, planned[0], now=now, base_url="http://x") is not None

    moved = at_once(PARALLEL, escalate)
    assert moved.count(True) == 1
    with server.factory() as session:
        events = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "task.escalated", AuditEvent.object_id == task_id)
        )
        emails = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.template == "task_urgent_alert",
                OutboxMessage.recipient == supervisor_email,
            )
        )
        assert (events, emails) == (1, 1)
