"""Appointments in calendars, read by three iCalendar parsers we did not write (icalendar,
vobject, and Mozilla's ical.js under node, installed from tests/calendar_js/package-lock.json):
what the youth receives over SMTP while booking, moving twice at night and cancelling, and
the staff's subscribed feed (GET and HEAD)."""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest
import time_machine
import vobject  # type: ignore[import-untyped]
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.appointments import service
from paris_avenir.appointments.models import (
    Appointment,
    AppointmentKind,
    AppointmentPlace,
    AppointmentStatus,
    WeeklyAvailability,
)
from paris_avenir.appointments.notices import format_day
from paris_avenir.auth import sessions
from paris_avenir.auth.models import AuthMethod
from paris_avenir.messaging import outbox
from paris_avenir.messaging.channels import Channels
from paris_avenir.messaging.channels.email_smtp import SmtpEmailSender
from paris_avenir.messaging.channels.sms_file import FileSmsSender
from paris_avenir.messaging.models import OutboxMessage, OutboxStatus
from paris_avenir.staff.models import StaffRole, StaffUser
from paris_avenir.youths.models import Channel, Youth
from tests.conftest import postgres_schema_url
from tests.factories import assign, create_staff, create_youth
from tests.helpers import at_once, npm_installed, post_form, sign_in_as
from tests.servers import RacePlatform, SmtpServer, race_platform

PARIS = ZoneInfo("Europe/Paris")
BASE_URL = "https://avenir.paris.example"
ICAL_JS = Path(__file__).parent / "calendar_js"


@pytest.fixture(scope="session")
def ical_js() -> Path:
    """Mozilla's ical.js (Thunderbird's parser), installed once from the committed lock."""
    npm_installed(ICAL_JS, "ical.js")
    return ICAL_JS


def read_with_ical_js(directory: Path, texts: list[str]) -> list[dict[str, Any]]:
    answer = subprocess.run(
        ["node", "parse.mjs"],
        cwd=directory,
        input=json.dumps(texts).encode(),
        capture_output=True,
        timeout=60,
        check=True,
    )
    result: list[dict[str, Any]] = json.loads(answer.stdout)
    return result


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def paris(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=PARIS).astimezone(UTC)


def open_mornings(session: Session, staff: StaffUser) -> None:
    for weekday in range(5):
        session.add(
            WeeklyAvailability(
                staff_id=staff.id,
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


def slot_at(session: Session, youth: Youth, starts_at: datetime, now: datetime) -> str:
    slots = service.slots_for(session, youth, AppointmentKind.REFERENT, now=now)
    return next(slot.key for slot in slots if slot.starts_at == starts_at)


def parsed_by_both(text: str) -> dict[str, Any]:
    """The facts of a one-event calendar, read by each parser; both must agree."""
    first = icalendar.Calendar.from_ical(text)
    [event] = first.walk("VEVENT")
    by_icalendar = {
        "method": str(first.get("method")),
        "uid": str(event["uid"]),
        "sequence": int(str(event["sequence"])),
        "status": str(event["status"]),
        "start": event.decoded("dtstart"),
        "url": str(event.get("url")),
        "alarms": len(event.walk("VALARM")),
    }
    second = vobject.readOne(text)
    [other] = second.vevent_list
    by_vobject = {
        "method": second.method.value,
        "uid": other.uid.value,
        "sequence": int(other.sequence.value),
        "status": other.status.value,
        "start": other.dtstart.value,
        "url": other.url.value if hasattr(other, "url") else "None",
        "alarms": len(getattr(other, "valarm_list", [])),
    }
    assert by_icalendar == by_vobject
    return by_icalendar


def calendar_attachment(message: EmailMessage) -> str:
    [part] = [part for part in message.iter_attachments()]
    assert part.get_content_type() == "text/calendar"
    content = part.get_content()
    return content.decode() if isinstance(content, bytes) else str(content)


@pytest.fixture
def referent(session: Session) -> StaffUser:
    referent = create_staff(session, StaffRole.REFERENT)
    open_mornings(session, referent)
    return referent


@pytest.mark.parametrize("channel", [Channel.EMAIL, Channel.SMS])
def test_book_move_twice_at_night_and_cancel_is_one_event_in_the_youths_calendar(
    session: Session,
    session_factory: sessionmaker[Session],
    referent: StaffUser,
    smtp_server: SmtpServer,
    tmp_path: Path,
    channel: Channel,
    ical_js: Path,
) -> None:
    youth = create_youth(
        session, phone="+33639980091", email="agenda@example.org", preferred_channel=channel
    )
    assign(session, youth, referent)
    session.commit()
    channels = Channels(
        sms=FileSmsSender(tmp_path / "sms.jsonl"),
        email=SmtpEmailSender(smtp_server.url, sender="Paris avenir <pa@example.org>"),
    )
    first_slot, second_slot, final_slot = paris(7, 9), paris(8, 10), paris(9, 11)

    def dispatch(at: datetime) -> None:
        outbox.dispatch_due(session_factory, channels, now=at)

    def received() -> list[str]:
        if channel is Channel.EMAIL:
            return [smtp_server.text_of(message) for message in smtp_server.inbox]
        path = tmp_path / "sms.jsonl"
        if not path.exists():
            return []
        return [json.loads(line)["text"] for line in path.read_text().splitlines()]

    # Tuesday afternoon: booked, the confirmation leaves at once.
    tuesday = paris(1, 15)
    booked = service.book(
        session,
        youth,
        AppointmentKind.REFERENT,
        slot_at(session, youth, first_slot, tuesday),
        base_url=BASE_URL,
        now=tuesday,
    )
    session.commit()
    dispatch(tuesday)
    assert len(received()) == 1
    # Tuesday night, in quiet hours: moved, then moved again before anything could leave.
    night = paris(1, 23)
    moved = service.move(
        session,
        booked,
        youth,
        slot_at(session, youth, second_slot, night),
        base_url=BASE_URL,
        now=night,
    )
    session.commit()
    later = night + timedelta(minutes=20)
    final = service.move(
        session,
        moved,
        youth,
        slot_at(session, youth, final_slot, later),
        base_url=BASE_URL,
        now=later,
    )
    session.commit()
    for hour in (23, 24 + 2, 24 + 8):
        dispatch(paris(1, 0) + timedelta(hours=hour))
    # What the youth just did is confirmed even at night (quiet hours are for what we
    # initiate), but only what is still true: the first move's confirmation, not sent yet,
    # was cancelled by the second move.
    assert len(received()) == 2
    dispatch(paris(2, 9, 5))
    wednesday = paris(2, 14)
    service.cancel(session, final, youth, now=wednesday, base_url=BASE_URL)
    session.commit()
    dispatch(wednesday)
    # Every hour until the last slot is past: no reminder of any of the three slots leaves.
    moment = wednesday
    while moment < paris(10, 0):
        moment += timedelta(hours=1)
        dispatch(moment)

    texts = received()
    assert len(texts) == 3, texts

    # The date in words; the SMS that carry the one-tap link say it short ("lun. 7/12").
    def said(starts_at: datetime) -> tuple[str, str]:
        return (
            service.format_when(starts_at, youth.language),
            format_day(starts_at, youth.language),
        )

    old_slots = [form for starts_at in (first_slot, second_slot) for form in said(starts_at)]
    assert any(form in texts[0] for form in said(first_slot))
    for text in texts[1:]:
        assert any(form in text for form in said(final_slot)), text
        assert not any(old in text for old in old_slots), text
    assert "annulé" in texts[2]
    held = session.scalars(
        select(OutboxMessage.status).where(
            OutboxMessage.idempotency_key == f"appointment-confirmation:{moved.id}"
        )
    ).all()
    assert held == [OutboxStatus.CANCELLED]
    if channel is Channel.SMS:
        return

    texts = [calendar_attachment(message) for message in smtp_server.inbox]
    calendars = [parsed_by_both(text) for text in texts]
    # Thunderbird's parser reads the same.
    assert [
        (item["method"], *(event[key] for key in ("uid", "sequence", "status", "start", "url")))
        for item in read_with_ical_js(ical_js, texts)
        for event in item["events"]
    ] == [
        (
            item["method"],
            item["uid"],
            item["sequence"],
            item["status"],
            iso(item["start"]),
            item["url"],
        )
        for item in calendars
    ]
    assert len({item["uid"] for item in calendars}) == 1
    sequences = [item["sequence"] for item in calendars]
    assert sequences == sorted(set(sequences)) and sequences[0] == 0, sequences
    assert [item["method"] for item in calendars] == ["REQUEST", "REQUEST", "CANCEL"]
    assert [item["status"] for item in calendars] == ["CONFIRMED", "CONFIRMED", "CANCELLED"]
    assert [item["start"] for item in calendars] == [first_slot, final_slot, final_slot]
    assert [item["alarms"] for item in calendars] == [1, 1, 0]
    assert all(item["url"].startswith(f"{BASE_URL}/mon-espace/rendez-vous") for item in calendars)
    bodies = [  # unfolded (RFC 5545 folds lines at 75 octets)
        calendar_attachment(message).replace("\r\n ", "") for message in smtp_server.inbox
    ]
    # The youth's own address and the service's: no staff member is named.
    assert all("agenda@example.org" in body and referent.email not in body for body in bodies)
    assert all(referent.full_name not in body for body in bodies)


async def test_the_staff_feed_names_itself_refreshes_and_keeps_cancelled_events(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    referent: StaffUser,
    ical_js: Path,
) -> None:
    now = paris(1, 15)
    youth = create_youth(session, phone="+33639980092")
    assign(session, youth, referent)
    session.commit()
    slots = [
        slot
        for slot in service.slots_for(session, youth, AppointmentKind.REFERENT, now=now)
        if slot.starts_at > now + timedelta(days=2)
    ]
    kept = service.book(
        session, youth, AppointmentKind.REFERENT, slots[2].key, base_url=BASE_URL, now=now
    )
    moved = service.move(session, kept, youth, slots[5].key, base_url=BASE_URL, now=now)
    cancelled = service.book(
        session,
        youth,
        AppointmentKind.REFERENT,
        slots[8].key,
        base_url=BASE_URL,
        booked_by_staff_id=referent.id,
        now=now,
    )
    service.cancel(session, cancelled, youth, now=now, by_staff=True, base_url=BASE_URL)
    session.commit()
    with time_machine.travel(now, tick=False):
        await _check_feed(
            client, app, session, referent, youth, slots, moved, kept, cancelled, ical_js
        )


async def _check_feed(
    client: httpx.AsyncClient,
    app: FastAPI,
    session: Session,
    referent: StaffUser,
    youth: Youth,
    slots: list[Any],
    moved: Any,
    kept: Any,
    cancelled: Any,
    ical_js: Path,
) -> None:
    sign_in_as(client, app, session, staff=referent)
    page = await post_form(client, "/pro/agenda/flux")
    url = re.search(r"http://[^<\s]+/agenda/[^<\s]+\.ics", page.text)
    assert url
    path = url.group(0).split("127.0.0.1:8000", 1)[-1]
    client.cookies.clear()

    feed = await client.get(path)
    head = await client.head(path)
    assert feed.status_code == 200 and head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == feed.headers["content-type"]
    assert feed.headers["content-type"] == "text/calendar; charset=utf-8"
    assert head.headers["content-length"] == str(len(feed.content))
    assert (await client.head(path.replace(".ics", "x.ics"))).status_code == 404

    first = icalendar.Calendar.from_ical(feed.text)
    second = vobject.readOne(feed.text)
    assert (
        str(first["x-wr-calname"]) == second.x_wr_calname.value == "Paris avenir — mes rendez-vous"
    )
    assert first.decoded("refresh-interval") == timedelta(hours=1)
    assert second.refresh_interval.params["VALUE"] == ["DURATION"]
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT1H\r\n" in feed.text
    assert "X-PUBLISHED-TTL:PT1H\r\n" in feed.text
    assert str(second.refresh_interval.value) in {"PT1H", "1:00:00"}
    events = {
        str(event["uid"]): (
            str(event["status"]),
            int(str(event["sequence"])),
            event.decoded("dtstart"),
        )
        for event in first.walk("VEVENT")
    }
    other_events = {
        event.uid.value: (event.status.value, int(event.sequence.value), event.dtstart.value)
        for event in second.vevent_list
    }
    assert events == other_events
    [by_ical_js] = read_with_ical_js(ical_js, [feed.text])
    assert by_ical_js["name"] == "Paris avenir — mes rendez-vous"
    assert by_ical_js["refresh"] == "PT1H"
    assert {
        event["uid"]: (event["status"], event["sequence"], event["start"])
        for event in by_ical_js["events"]
    } == {uid: (status, sequence, iso(start)) for uid, (status, sequence, start) in events.items()}
    # The moved appointment is one event, at its new time; the cancelled one says so.
    assert events == {
        moved.calendar_uid: ("CONFIRMED", 2, slots[5].starts_at),
        cancelled.calendar_uid: ("CANCELLED", 1, slots[8].starts_at),
    }
    assert moved.calendar_uid == kept.calendar_uid
    assert kept.status is AppointmentStatus.CANCELLED
    assert "Paris avenir — rendez-vous" in feed.text and str(youth.first_name) not in feed.text


async def test_the_youth_sees_moved_and_cancelled_apart_in_mes_rendez_vous(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser
) -> None:
    now = paris(1, 15)
    youth = create_youth(session, phone="+33639980093")
    assign(session, youth, referent)
    session.commit()
    with time_machine.travel(now, tick=False):
        sign_in_as(client, app, session, youth=youth)
        slots = [
            slot
            for slot in service.slots_for(session, youth, AppointmentKind.REFERENT, now=now)
            if slot.starts_at > now + timedelta(days=2)
        ]
        first = service.book(
            session, youth, AppointmentKind.REFERENT, slots[0].key, base_url=BASE_URL, now=now
        )
        session.commit()
        moved = await post_form(
            client, f"/mon-espace/rendez-vous/{first.id}/deplacer", {"creneau": slots[3].key}
        )
        assert moved.status_code == 303
        new_id = moved.headers["location"].split("/")[-1].split("?")[0]
        assert (
            await post_form(client, f"/mon-espace/rendez-vous/{new_id}/annuler")
        ).status_code == 303
        listing = (await client.get("/mon-espace/rendez-vous")).text
        old_page = (await client.get(f"/mon-espace/rendez-vous/{first.id}")).text
        new_page = (await client.get(f"/mon-espace/rendez-vous/{new_id}")).text
    assert listing.count("(déplacé)") == 1 and listing.count("(annulé)") == 1
    assert "<dd>déplacé</dd>" in old_page and "<dd>annulé</dd>" in new_page
    # The move and the cancellation were each announced once, on the youth's channel.
    templates = session.scalars(
        select(OutboxMessage.template).where(OutboxMessage.youth_id == youth.id)
    ).all()
    assert sorted(templates) == [
        "appointment_cancellation",
        "appointment_confirmation",
        "appointment_confirmation",
    ] + ["appointment_reminder"] * (len(templates) - 3)


# --- At once, on PostgreSQL, through a real server -----------------------------------------

RACE_SCHEMA = "calendar_races"


@pytest.fixture(scope="module")
def race_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RacePlatform]:
    url = postgres_schema_url(RACE_SCHEMA, needed_for="calendar races on PostgreSQL")
    with race_platform(
        url, tmp_path_factory.mktemp("calendar-races"), base_url=BASE_URL
    ) as platform:
        yield platform


def _phone_of(server: RacePlatform, youth_id: Any) -> tuple[dict[str, str], str]:
    """Cookies and CSRF token of one signed-in phone."""
    with server.factory.begin() as session:
        started = sessions.start_session(session, youth_id=youth_id, method=AuthMethod.CODE)
    with httpx.Client(base_url=server.url) as client:
        client.cookies.set(server.settings.session_cookie_name, started.token)
        page = client.get("/mon-espace/rendez-vous")
        token = re.search(r'"x-csrftoken": "([^"]+)"', page.text)
        assert page.status_code == 200 and token
        return dict(client.cookies), token.group(1)


def _post(server: RacePlatform, phone: tuple[dict[str, str], str], path: str, **form: str) -> int:
    cookies, token = phone
    with httpx.Client(base_url=server.url, cookies=cookies, timeout=60) as client:
        return client.post(path, data={"csrftoken": token, **form}).status_code


def _booked_one(server: RacePlatform) -> tuple[Any, Any, list[str]]:
    with server.factory.begin() as session:
        referent = create_staff(session, StaffRole.REFERENT)
        open_mornings(session, referent)
        youth = create_youth(session, preferred_channel=Channel.EMAIL)
        assign(session, youth, referent)
        keys = [slot.key for slot in service.slots_for(session, youth, AppointmentKind.REFERENT)]
        appointment = service.book(
            session, youth, AppointmentKind.REFERENT, keys[-1], base_url=BASE_URL
        )
        return youth.id, appointment.id, keys[:-1]


def test_thirty_moves_at_once_of_one_appointment_move_it_once(race_server: RacePlatform) -> None:
    youth_id, appointment_id, keys = _booked_one(race_server)
    assert len(keys) >= 30
    phone = _phone_of(race_server, youth_id)
    path = f"/mon-espace/rendez-vous/{appointment_id}/deplacer"
    statuses = at_once(30, lambda index: _post(race_server, phone, path, creneau=keys[index]))
    assert Counter(statuses) == {303: 1, 409: 29}
    with race_server.factory() as session:
        rows = session.scalars(select(Appointment).where(Appointment.youth_id == youth_id)).all()
        confirmations = session.scalars(
            select(OutboxMessage.attachment_body).where(
                OutboxMessage.youth_id == youth_id,
                OutboxMessage.template == "appointment_confirmation",
            )
        ).all()
    live = [row for row in rows if row.status is AppointmentStatus.BOOKED]
    assert len(rows) == 2 and len(live) == 1
    assert {row.calendar_uid for row in rows} == {f"{appointment_id}@paris-avenir"}
    assert sorted(row.calendar_sequence for row in rows) == [1, 2]
    sequences = sorted(parsed_by_both(str(body))["sequence"] for body in confirmations)
    assert sequences == [0, 2]


def test_thirty_cancellations_at_once_cancel_once(race_server: RacePlatform) -> None:
    youth_id, appointment_id, _keys = _booked_one(race_server)
    phone = _phone_of(race_server, youth_id)
    path = f"/mon-espace/rendez-vous/{appointment_id}/annuler"
    statuses = at_once(30, lambda _index: _post(race_server, phone, path))
    assert Counter(statuses) == {303: 1, 409: 29}
    with race_server.factory() as session:
        appointment = session.get_one(Appointment, appointment_id)
        [cancellation] = session.scalars(
            select(OutboxMessage.attachment_body).where(
                OutboxMessage.youth_id == youth_id,
                OutboxMessage.template == "appointment_cancellation",
            )
        ).all()
    assert appointment.status is AppointmentStatus.CANCELLED
    assert appointment.calendar_sequence == 1
    read = parsed_by_both(str(cancellation))
    assert (read["method"], read["sequence"], read["status"]) == ("CANCEL", 1, "CANCELLED")
