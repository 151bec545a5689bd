"""One-tap answers to an appointment's confirmation and reminders: "Je viendrai" shows on
the staff member's agenda; "Je ne peux pas venir" frees the slot at once, tells the staff
member, and offers the next slots or a call back; the link is signed, single use for the
cancellation (raced), ends when the appointment starts; no-shows per kind on the
statistics page, before and after."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import time_machine
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from paris_avenir.appointments import answer_links, answers, service
from paris_avenir.appointments.models import (
    AnswerKind,
    Appointment,
    AppointmentAnswer,
    AppointmentKind,
    AppointmentStatus,
)
from paris_avenir.kit import settings_store
from paris_avenir.kit.crypto import signed_id
from paris_avenir.messaging import sms_texts
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.outreach import checkin
from paris_avenir.staff.models import StaffRole, StaffTask, StaffUser, TaskKind
from paris_avenir.stats import service as stats
from paris_avenir.youths.models import Channel, Youth
from tests.conftest import BACKENDS, postgres_schema_url
from tests.factories import assign, create_appointment, create_staff, create_youth
from tests.helpers import at_once, post_form, sign_in_as
from tests.servers import race_platform
from tests.test_appointments import open_mornings

SLOT = re.compile(r'name="creneau" value="([^"]+)"')
LINK = re.compile(r"https?://\S+/r/[A-Za-z0-9_.\-]+")


@pytest.fixture
def referent(session: Session) -> StaffUser:
    referent = create_staff(session, StaffRole.REFERENT, full_name="Inès Référente")
    open_mornings(session, referent)
    return referent


@pytest.fixture
def youth(session: Session, referent: StaffUser) -> Youth:
    youth = create_youth(
        session, first_name="Awa", phone="+33639980301", preferred_channel=Channel.SMS
    )
    assign(session, youth, referent)
    session.commit()
    return youth


def _sms_of(session: Session, appointment: Appointment, prefix: str) -> list[str]:
    return [
        message.body_text
        for message in session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.idempotency_key.startswith(f"{prefix}:{appointment.id}"))
            .order_by(OutboxMessage.next_attempt_at)
        )
    ]


async def _book_as(
    client: httpx.AsyncClient, app: FastAPI, session: Session, youth: Youth, index: int = -1
) -> Appointment:
    """The youth books from their space (the app's own key signs the links)."""
    sign_in_as(client, app, session, youth=youth)
    keys = SLOT.findall((await client.get("/mon-espace/rendez-vous/nouveau?motif=referent")).text)
    booked = await post_form(
        client, "/mon-espace/rendez-vous", {"motif": "referent", "creneau": keys[index]}
    )
    assert booked.status_code == 303, booked.text
    client.cookies.clear()  # the link works without a session
    session.expire_all()
    return session.scalars(
        select(Appointment)
        .where(Appointment.youth_id == youth.id, Appointment.status == AppointmentStatus.BOOKED)
        .order_by(Appointment.created_at.desc())
    ).first()  # type: ignore[return-value]


def _path(link: str) -> str:
    return "/r/" + link.rsplit("/r/", 1)[1]


async def _tap(client: httpx.AsyncClient, path: str, data: dict[str, str]) -> httpx.Response:
    return await post_form(client, path, data)


async def test_the_confirmation_and_both_reminders_carry_the_answer_link(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth
) -> None:
    appointment = await _book_as(client, app, session, youth)
    [confirmation] = _sms_of(session, appointment, "appointment-confirmation")
    reminders = _sms_of(session, appointment, "appointment-reminder")
    assert len(reminders) == 2
    links = {LINK.search(text).group(0) for text in [confirmation, *reminders]}  # type: ignore[union-attr]
    assert len(links) == 1, "one link per appointment"
    assert "confirmé. Annuler" in confirmation and "Vous venez ?" in reminders[0]
    page = await client.get(_path(links.pop()))
    assert page.status_code == 200
    assert "Je viendrai" in page.text and "Je ne peux pas venir" in page.text
    assert "Rendez-vous avec votre référent" in page.text


async def test_the_email_confirmation_carries_the_link_too(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser
) -> None:
    youth = create_youth(session, email="awa.mail@example.org", preferred_channel=Channel.EMAIL)
    assign(session, youth, referent)
    session.commit()
    appointment = await _book_as(client, app, session, youth)
    [email] = _sms_of(session, appointment, "appointment-confirmation")
    assert "Dites-le en un clic" in email and LINK.search(email)
    reminder = _sms_of(session, appointment, "appointment-reminder")[0]
    assert LINK.search(reminder)


async def test_je_viendrai_shows_on_the_staff_members_agenda(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth, referent: StaffUser
) -> None:
    appointment = await _book_as(client, app, session, youth)
    path = _path(LINK.search(_sms_of(session, appointment, "appointment-reminder")[0]).group(0))  # type: ignore[union-attr]
    answered = await _tap(client, path, {"reponse": "viendrai"})
    assert answered.status_code == 303
    page = await client.get(path)
    assert "Merci, c’est noté : vous venez." in page.text
    assert "Je ne peux pas venir" in page.text  # still possible
    assert (await _tap(client, path, {"reponse": "viendrai"})).status_code == 303
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(AppointmentAnswer)) == 1

    sign_in_as(client, app, session, staff=referent)
    day = appointment.starts_at.date().isoformat()
    agenda = await client.get(f"/pro/agenda?jour={day}")
    assert "confirmé par le jeune" in agenda.text


async def test_je_ne_peux_pas_frees_the_slot_tells_the_staff_and_offers_the_next(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth, referent: StaffUser
) -> None:
    appointment = await _book_as(client, app, session, youth, index=0)
    freed_key = f"{appointment.staff_id}_{int(appointment.starts_at.timestamp())}"
    path = _path(LINK.search(_sms_of(session, appointment, "appointment-reminder")[0]).group(0))  # type: ignore[union-attr]

    answered = await _tap(client, path, {"reponse": "impossible"})
    assert answered.headers["location"] == path + "?annule=1"
    session.expire_all()
    assert session.get_one(Appointment, appointment.id).status is AppointmentStatus.CANCELLED
    # The reminders still queued will not leave; the youth is told it is cancelled.
    assert session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.idempotency_key == f"appointment-cancellation:{appointment.id}")
    )

    page = await client.get(answered.headers["location"])
    assert "Votre rendez-vous est annulé" in page.text
    assert "La personne qui devait vous recevoir est prévenue." in page.text
    offered = SLOT.findall(page.text)
    assert 1 <= len(offered) <= answers.NEXT_SLOTS and freed_key not in offered
    assert "Être rappelé·e" in page.text

    # Another youth can book the freed slot at once.
    other = create_youth(session, phone="+33639980302")
    assign(session, other, referent)
    taken = service.book(session, other, AppointmentKind.REFERENT, freed_key, base_url="http://x")
    session.commit()
    assert taken.starts_at == appointment.starts_at

    # The staff member sees it on their agenda.
    sign_in_as(client, app, session, staff=referent)
    agenda = await client.get(f"/pro/agenda?jour={appointment.starts_at.date().isoformat()}")
    assert "Créneaux libérés par les jeunes" in agenda.text
    assert f"{youth.first_name} {youth.last_name} ne peut pas venir" in agenda.text
    assert "annulé par le jeune" in agenda.text
    client.cookies.clear()

    # One tap books one of the next slots, once.
    booked = await _tap(client, path + "/creneau", {"creneau": offered[0]})
    assert booked.status_code == 303
    page = await client.get(path)
    assert "Votre nouveau rendez-vous" in page.text and not SLOT.findall(page.text)
    again = await _tap(client, path + "/creneau", {"creneau": offered[1]})
    assert again.status_code == 409
    assert "déjà pris un autre rendez-vous" in again.text
    session.expire_all()
    held = session.scalars(
        select(Appointment).where(
            Appointment.youth_id == youth.id, Appointment.status == AppointmentStatus.BOOKED
        )
    ).all()
    assert [f"{a.staff_id}_{int(a.starts_at.timestamp())}" for a in held] == [offered[0]]

    # A second "Je ne peux pas venir" on the old link changes nothing.
    repeat = await _tap(client, path, {"reponse": "impossible"})
    assert repeat.headers["location"] == path
    assert session.scalar(select(func.count()).select_from(AppointmentAnswer)) == 1


async def test_etre_rappele_opens_one_call_task_for_the_referent(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth, referent: StaffUser
) -> None:
    appointment = await _book_as(client, app, session, youth)
    path = _path(LINK.search(_sms_of(session, appointment, "appointment-confirmation")[0]).group(0))  # type: ignore[union-attr]
    await _tap(client, path, {"reponse": "impossible"})
    for _ in range(2):
        assert (await _tap(client, path + "/rappel", {})).status_code == 303
    page = await client.get(path)
    assert "votre référent va vous rappeler" in page.text
    session.expire_all()
    [task] = session.scalars(select(StaffTask).where(StaffTask.youth_id == youth.id)).all()
    assert task.kind is TaskKind.CALL_BACK and task.assignee_id == referent.id
    assert "demande à être rappelé·e" in task.detail["about"]
    assert "(Rendez-vous avec votre référent)" in task.detail["about"]

    sign_in_as(client, app, session, staff=referent)
    todo = await client.get("/pro/a-faire")
    assert todo.status_code == 200 and "demande à être rappelé·e" in todo.text


def test_a_psychologist_session_not_shared_stays_unnamed_in_the_call_task(
    session: Session, youth: Youth
) -> None:
    psychologist = create_staff(session, StaffRole.PSYCHOLOGIST)
    open_mornings(session, psychologist, AppointmentKind.PSYCHOLOGIST)
    slot = service.slots_for(session, youth, AppointmentKind.PSYCHOLOGIST)[0]
    appointment = service.book(
        session, youth, AppointmentKind.PSYCHOLOGIST, slot.key, base_url="http://x"
    )
    assert answers.cannot_come(session, appointment, base_url="http://x")
    assert answers.ask_call_back(session, appointment)
    task = session.scalars(select(StaffTask).where(StaffTask.youth_id == youth.id)).one()
    assert task.appointment_id is None
    assert "psycholog" not in task.detail["about"].lower()


async def test_a_forged_stale_or_foreign_link_gets_a_clear_french_page(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth, referent: StaffUser
) -> None:
    appointment = await _book_as(client, app, session, youth)
    path = _path(LINK.search(_sms_of(session, appointment, "appointment-reminder")[0]).group(0))  # type: ignore[union-attr]
    secret = app.state.settings.secret_key
    forged = [
        path[:-2] + ("AA" if not path.endswith("AA") else "BB"),  # damaged signature
        "/r/" + signed_id(appointment.id, secret_key="une autre clé" * 4, salt=answer_links.SALT),
        # A check-in link's token names an id with another purpose: not an appointment's.
        "/r/" + checkin.link(appointment.id, secret_key=secret, base_url="").rsplit("/", 1)[1],
        "/r/" + signed_id(uuid.uuid4(), secret_key=secret, salt=answer_links.SALT),
        "/r/pas-un-lien",
    ]
    for url in forged:
        page = await client.get(url)
        assert page.status_code == 410, url
        assert "Ce lien ne marche plus" in page.text
        tapped = await _tap(client, url, {"reponse": "impossible"})
        assert tapped.status_code == 410 and "Ce lien ne marche plus" in tapped.text
    session.expire_all()
    assert session.get_one(Appointment, appointment.id).status is AppointmentStatus.BOOKED

    # It ends when the appointment starts.
    with time_machine.travel(appointment.starts_at + timedelta(seconds=1), tick=False):
        late = await _tap(client, path, {"reponse": "impossible"})
    assert late.status_code == 410 and "Ce lien ne marche plus" in late.text
    session.expire_all()
    assert session.get_one(Appointment, appointment.id).status is AppointmentStatus.BOOKED

    # A bad answer: a French message, nothing changed.
    unknown = await _tap(client, path, {"reponse": "peut-etre"})
    assert unknown.status_code == 422 and "Choisissez une réponse." in unknown.text


async def test_another_youths_link_or_session_cannot_touch_the_appointment(
    app: FastAPI, client: httpx.AsyncClient, session: Session, youth: Youth, referent: StaffUser
) -> None:
    appointment = await _book_as(client, app, session, youth, index=0)
    other = create_youth(session, phone="+33639980303")
    assign(session, other, referent)
    session.commit()
    theirs = await _book_as(client, app, session, other, index=1)
    their_path = _path(LINK.search(_sms_of(session, theirs, "appointment-reminder")[0]).group(0))  # type: ignore[union-attr]

    # Their own link names their appointment only.
    await _tap(client, their_path, {"reponse": "impossible"})
    session.expire_all()
    assert session.get_one(Appointment, theirs.id).status is AppointmentStatus.CANCELLED
    assert session.get_one(Appointment, appointment.id).status is AppointmentStatus.BOOKED
    # Booking "instead" from their link books for them, never on the first youth's file.
    slot = SLOT.findall((await client.get(their_path)).text)[0]
    await _tap(client, their_path + "/creneau", {"creneau": slot})
    session.expire_all()
    assert (
        session.scalar(
            select(func.count()).select_from(Appointment).where(Appointment.youth_id == youth.id)
        )
        == 1
    )

    # Signed in, the other youth reaches nothing of the first one's appointment.
    sign_in_as(client, app, session, youth=other)
    assert (await client.get(f"/mon-espace/rendez-vous/{appointment.id}")).status_code == 404
    cancel = await post_form(client, f"/mon-espace/rendez-vous/{appointment.id}/annuler")
    assert cancel.status_code == 404
    session.expire_all()
    assert session.get_one(Appointment, appointment.id).status is AppointmentStatus.BOOKED


def test_the_example_link_of_the_sms_texts_is_as_long_as_the_real_one() -> None:
    real = answer_links.link(uuid.uuid4(), secret_key="s" * 48, base_url=sms_texts.EXAMPLE_BASE_URL)
    for text in sms_texts.ALL:
        if text.key.endswith("_answer"):
            assert len(text.example["link"]) >= len(real)


def test_no_shows_per_kind_before_and_after_the_one_tap_answers(
    session: Session, youth: Youth, referent: StaffUser
) -> None:
    since = datetime(2026, 11, 1, tzinfo=UTC)
    settings_store.save(
        session, answers.ANSWERS_SINCE_KEY, {"since": since.isoformat()}, by_id=None
    )
    starts = (datetime(2026, 11, 20, 9, 0, tzinfo=UTC) + timedelta(hours=n) for n in range(100))

    def add(count: int, status: AppointmentStatus, *, booked: datetime) -> None:
        for _ in range(count):
            someone = create_youth(session)
            create_appointment(
                session, someone, referent, next(starts), status=status, created_at=booked
            )

    before, after = since - timedelta(days=20), since + timedelta(days=2)
    add(15, AppointmentStatus.ATTENDED, booked=before)
    add(5, AppointmentStatus.MISSED, booked=before)
    add(18, AppointmentStatus.ATTENDED, booked=after)
    add(2, AppointmentStatus.MISSED, booked=after)
    add(30, AppointmentStatus.CANCELLED, booked=after)  # not due: not counted
    figures = stats.compute(session)
    row = next(item for item in figures.no_shows if item.kind == "Avec le référent")
    assert (row.before.held.value, row.before.rate.value) == (20, 25.0)
    assert row.before.missed.suppressed  # 5 people: statistical secrecy
    assert (row.after.held.value, row.after.rate.value) == (20, 10.0)
    assert figures.answers_since == since
    counter = next(item for item in figures.no_shows if item.kind == "Guichet démarches")
    assert counter.before.held.suppressed and counter.before.rate.suppressed
    exported = stats.to_csv(figures).decode("utf-8-sig")
    assert (
        "Taux de rendez-vous manqués (%);Avec le référent;;avant les réponses en un clic;25;"
        in exported
    )


async def test_the_statistics_page_explains_the_cut_over(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    supervisor = create_staff(session, StaffRole.SUPERVISOR)
    settings_store.save(
        session,
        answers.ANSWERS_SINCE_KEY,
        {"since": datetime(2026, 11, 1, 9, 0, tzinfo=UTC).isoformat()},
        by_id=None,
    )
    sign_in_as(client, app, session, staff=supervisor)
    page = await client.get("/pro/statistiques")
    assert "Rendez-vous manqués, avant et après les réponses en un clic" in page.text
    assert "1 novembre 2026" in page.text and "« Avant » compte les rendez-vous pris" in page.text
    assert "Psychologue" in page.text


# --- The race: 36 "Je ne peux pas venir" at once, on SQLite and PostgreSQL ----------------

PARALLEL = 36


@pytest.fixture(scope="module", params=BACKENDS)
def race_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, object]]:
    directory: Path = tmp_path_factory.mktemp(f"answers-race-{request.param}")
    if request.param == "postgresql":
        url = postgres_schema_url("answers_race", needed_for="races on PostgreSQL")
    else:
        url = f"sqlite:///{directory / 'race.sqlite3'}"
    with race_platform(url, directory) as platform:
        yield request.param, platform


def test_36_taps_on_je_ne_peux_pas_cancel_once_and_tell_once(
    race_server: tuple[str, object],
) -> None:
    _backend, platform = race_server
    factory = platform.factory  # type: ignore[attr-defined]
    secret = platform.settings.secret_key  # type: ignore[attr-defined]
    with factory.begin() as session:
        staff = create_staff(session, StaffRole.REFERENT)
        someone = create_youth(session, phone=f"+336399804{uuid.uuid4().int % 100:02d}")
        assign(session, someone, staff)
        appointment = create_appointment(
            session, someone, staff, datetime.now(UTC) + timedelta(days=3)
        )
        appointment_id = appointment.id
    path = answer_links.link(appointment_id, secret_key=secret, base_url="")
    with httpx.Client(base_url=platform.url) as browser:  # type: ignore[attr-defined]
        page = browser.get(path)
        token = re.search(r'"x-csrftoken": "([^"]+)"', page.text)
        assert token and page.status_code == 200
        cookies = dict(browser.cookies)

    def tap(_index: int) -> str:
        with httpx.Client(base_url=platform.url, cookies=cookies, timeout=60) as client:  # type: ignore[attr-defined]
            answer = client.post(path, data={"csrftoken": token.group(1), "reponse": "impossible"})
            assert answer.status_code == 303, answer.status_code
            return str(answer.headers["location"])

    assert Counter(at_once(PARALLEL, tap)) == {path + "?annule=1": 1, path: PARALLEL - 1}
    with factory() as session:
        assert session.get_one(Appointment, appointment_id).status is AppointmentStatus.CANCELLED
        notices = session.scalar(
            select(func.count())
            .select_from(AppointmentAnswer)
            .where(
                AppointmentAnswer.appointment_id == appointment_id,
                AppointmentAnswer.answer == AnswerKind.CANNOT_COME,
            )
        )
        told = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.idempotency_key == f"appointment-cancellation:{appointment_id}")
        )
        assert (notices, told) == (1, 1)
