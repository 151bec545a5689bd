"""Nobody hoards the slots: a youth holds at most a few upcoming appointments of each kind
(the policy: 1 with the référent, 2 with a psychologist), sees why and which ones when the
limit is reached, and 40 requests at once change nothing to the count; 30 youths on one slot
at once book it once."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import time_machine
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from paris_avenir.appointments import policy as appointment_policy
from paris_avenir.appointments import service
from paris_avenir.appointments.models import Appointment, AppointmentKind, AppointmentStatus
from paris_avenir.auth import sessions
from paris_avenir.auth.models import AuthMethod
from paris_avenir.outreach import policy
from paris_avenir.staff.models import StaffRole, StaffUser
from paris_avenir.youths.models import Youth
from tests.conftest import postgres_schema_url
from tests.factories import assign, create_staff, create_youth
from tests.helpers import at_once, post_form, sign_in_as
from tests.servers import RacePlatform, race_platform
from tests.test_appointments import open_mornings

NOW = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)  # Wednesday, 7:00 in Paris
SLOT = re.compile(r'name="creneau" value="([^"]+)"')
PSY = AppointmentKind.PSYCHOLOGIST
REFERENT = AppointmentKind.REFERENT


@pytest.fixture
def referent(session: Session) -> StaffUser:
    referent = create_staff(session, StaffRole.REFERENT)
    open_mornings(session, referent)
    return referent


@pytest.fixture
def psychologist(session: Session) -> StaffUser:
    psychologist = create_staff(session, StaffRole.PSYCHOLOGIST)
    open_mornings(session, psychologist, PSY)
    return psychologist


@pytest.fixture
def youth(session: Session, referent: StaffUser, psychologist: StaffUser) -> Youth:
    youth = create_youth(session)
    assign(session, youth, referent)
    session.commit()
    return youth


def _book(session: Session, youth: Youth, kind: AppointmentKind, index: int) -> Appointment:
    slot = service.slots_for(session, youth, kind, now=NOW)[index]
    return service.book(session, youth, kind, slot.key, base_url="http://x", now=NOW)


def test_a_third_psychologist_session_is_refused_with_the_two_held(
    session: Session, youth: Youth
) -> None:
    later = _book(session, youth, PSY, 5)
    sooner = _book(session, youth, PSY, 1)
    with pytest.raises(service.BookingLimitReached) as refused:
        _book(session, youth, PSY, 3)
    assert "déjà 2 rendez-vous" in str(refused.value)
    assert [held.id for held in refused.value.existing] == [sooner.id, later.id]
    assert session.scalar(select(func.count()).select_from(Appointment)) == 2
    # Each kind has its own limit: the référent's one is still free.
    _book(session, youth, REFERENT, 0)
    with pytest.raises(service.BookingLimitReached) as refused:
        _book(session, youth, REFERENT, 1)
    assert "déjà 1 rendez-vous" in str(refused.value) and "celui-ci" in str(refused.value)


def test_cancelled_and_past_appointments_do_not_count_and_a_move_is_not_a_new_one(
    session: Session, youth: Youth
) -> None:
    # Tomorrow and after: far enough to move (24 h) and cancel (4 h) online.
    first = _book(session, youth, PSY, 8)
    second = _book(session, youth, PSY, 9)
    slot = service.slots_for(session, youth, PSY, now=NOW)[12]
    moved = service.move(session, second, youth, slot.key, base_url="http://x", now=NOW)
    assert moved.status is AppointmentStatus.BOOKED
    service.cancel(session, first, youth, now=NOW)
    third = _book(session, youth, PSY, 10)  # the cancelled one freed its place
    assert third.status is AppointmentStatus.BOOKED
    # Once one of them has taken place, the youth may book the next one.
    after = third.starts_at + timedelta(minutes=1)
    slot = service.slots_for(session, youth, PSY, now=after)[6]
    assert service.book(session, youth, PSY, slot.key, base_url="http://x", now=after)


def test_the_limit_is_the_admins_setting_and_the_counter_may_go_past_it(
    session: Session, youth: Youth, referent: StaffUser
) -> None:
    current = {key: str(value) for key, value in policy.current_values(session).items()}
    policy.save(session, current | {"open_psychologist_bookings": "1"}, by_id=None, now=NOW)
    _book(session, youth, PSY, 0)
    with pytest.raises(service.BookingLimitReached):
        _book(session, youth, PSY, 1)
    # An agent at the counter, with the youth in front of them, decides for themselves.
    slot = service.slots_for(session, youth, PSY, now=NOW)[1]
    assert service.book(
        session,
        youth,
        PSY,
        slot.key,
        base_url="http://x",
        booked_by_staff_id=referent.id,
        now=NOW,
    )


# --- What the youth sees ------------------------------------------------------------------


@pytest.fixture
def signed_in(app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth) -> Youth:
    sign_in_as(client, app, session, youth=youth)
    return youth


async def test_at_the_limit_the_youth_sees_why_and_the_appointments_held(
    client: httpx.AsyncClient, session: Session, signed_in: Youth
) -> None:
    with time_machine.travel(NOW, tick=False):
        held = [_book(session, signed_in, PSY, index) for index in (0, 3)]
        session.commit()
        # Choosing: no slot is offered, the reason and the two appointments are.
        page = await client.get("/mon-espace/rendez-vous/nouveau?motif=psychologue")
        assert page.status_code == 200
        assert "déjà 2 rendez-vous de ce type à venir" in page.text
        assert not SLOT.findall(page.text)
        for appointment in held:
            assert f'href="/mon-espace/rendez-vous/{appointment.id}"' in page.text
        # A slot sent anyway (an old page, another tab) is refused the same way.
        slot = service.slots_for(session, signed_in, PSY, now=NOW)[5]
        answer = await post_form(
            client, "/mon-espace/rendez-vous", {"motif": "psychologue", "creneau": slot.key}
        )
        assert answer.status_code == 409
        assert "déjà 2 rendez-vous de ce type à venir" in answer.text
        assert all(str(appointment.id) in answer.text for appointment in held)
        # In English too.
        client.cookies.set("langue", "en")
        english = await client.get("/mon-espace/rendez-vous/nouveau?motif=psychologue")
        assert "You already have 2 upcoming appointments of this kind" in english.text
        assert "Your upcoming appointments" in english.text
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Appointment)) == 2


async def test_below_the_limit_slots_are_offered(
    client: httpx.AsyncClient, session: Session, signed_in: Youth
) -> None:
    with time_machine.travel(NOW, tick=False):
        _book(session, signed_in, PSY, 0)
        session.commit()
        page = await client.get("/mon-espace/rendez-vous/nouveau?motif=psychologue")
    assert SLOT.findall(page.text) and "c’est le maximum" not in page.text


# --- At once, on PostgreSQL, through a real server -----------------------------------------

SCHEMA = "booking_limits"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RacePlatform]:
    url = postgres_schema_url(SCHEMA, needed_for="booking races on PostgreSQL")
    with race_platform(url, tmp_path_factory.mktemp("booking-races")) as platform:
        yield platform


def _browser_of(server: RacePlatform, youth_id: Any) -> tuple[dict[str, str], str]:
    """Cookies and CSRF token of one signed-in phone."""
    with server.factory.begin() as session:
        started = sessions.start_session(session, youth_id=youth_id, method=AuthMethod.CODE)
    with httpx.Client(base_url=server.url) as client:
        client.cookies.set(server.settings.session_cookie_name, started.token)
        page = client.get("/mon-espace/rendez-vous")
        token = re.search(r'"x-csrftoken": "([^"]+)"', page.text)
        assert page.status_code == 200 and token
        return dict(client.cookies), token.group(1)


def _post_booking(server: RacePlatform, browser: tuple[dict[str, str], str], slot_key: str) -> int:
    cookies, token = browser
    with httpx.Client(base_url=server.url, cookies=cookies, timeout=60) as client:
        answer = client.post(
            "/mon-espace/rendez-vous",
            data={"csrftoken": token, "motif": "psychologue", "creneau": slot_key},
        )
        return answer.status_code


def test_forty_bookings_at_once_by_one_youth_give_exactly_the_limit(server: RacePlatform) -> None:
    with server.factory.begin() as session:
        psychologist = create_staff(session, StaffRole.PSYCHOLOGIST)
        open_mornings(session, psychologist, PSY)
        youth = create_youth(session)
        keys = [slot.key for slot in service.slots_for(session, youth, PSY)][:40]
        youth_id, limit = youth.id, appointment_policy.load(session).open_psychologist_bookings
    assert len(keys) == 40
    browser = _browser_of(server, youth_id)
    statuses = at_once(40, lambda index: _post_booking(server, browser, keys[index]))
    assert Counter(statuses) == {303: limit, 409: 40 - limit}
    with server.factory() as session:
        booked = session.scalar(
            select(func.count())
            .select_from(Appointment)
            .where(Appointment.youth_id == youth_id, Appointment.status == AppointmentStatus.BOOKED)
        )
    assert booked == limit == 2


def test_thirty_youths_on_one_slot_at_once_book_it_once(server: RacePlatform) -> None:
    with server.factory.begin() as session:
        psychologist = create_staff(session, StaffRole.PSYCHOLOGIST)
        open_mornings(session, psychologist, PSY)
        youths = [create_youth(session) for _index in range(30)]
        slot = next(
            slot
            for slot in service.slots_for(session, youths[0], PSY)
            if slot.staff_id == psychologist.id
        )
        ids = [youth.id for youth in youths]
    browsers = [_browser_of(server, youth_id) for youth_id in ids]
    statuses = at_once(30, lambda index: _post_booking(server, browsers[index], slot.key))
    assert Counter(statuses) == {303: 1, 409: 29}
    with server.factory() as session:
        booked = session.scalars(
            select(Appointment).where(
                Appointment.staff_id == psychologist.id,
                Appointment.starts_at == slot.starts_at,
            )
        ).all()
    assert len(booked) == 1 and booked[0].youth_id in ids
