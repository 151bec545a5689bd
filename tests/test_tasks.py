"""The work queue: every alert reaches a person who acts on it, and what they record feeds
back into the watch."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import time_machine
from cryptography.fernet import Fernet, MultiFernet
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.audit.models import AuditEvent
from paris_avenir.backoffice import task_queue
from paris_avenir.kit.dates import PARIS
from paris_avenir.messaging.models import OutboxMessage, OutboxStatus
from paris_avenir.messaging.outbox import ERASED
from paris_avenir.outreach import checkin, engine
from paris_avenir.outreach.models import OutreachAttempt, OutreachReason, OutreachResponse
from paris_avenir.staff import tasks
from paris_avenir.staff.models import StaffRole, StaffTask, StaffUser, TaskKind, TaskOutcome, Team
from paris_avenir.youths.models import Channel, FollowUpNote, Youth
from tests import factories
from tests.factories import (
    TEST_FERNET_KEY,
    assign,
    create_aid_request,
    create_staff,
    create_task,
    create_youth,
)
from tests.helpers import post_form, sign_in_as
from tests.servers import BrevoSmsApi

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # a Wednesday, 11:00 in Paris
SECRET = "s" * 40


def cycle(session: Session, now: datetime, dry_run: bool = False) -> engine.CycleReport:
    return engine.run_cycle(
        session, base_url="http://testserver", secret_key=SECRET, now=now, dry_run=dry_run
    )


@pytest.fixture(autouse=True)
def clock() -> Iterator[time_machine.Traveller]:
    """Every test runs at NOW unless it moves the clock itself."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def team(session: Session) -> Team:
    team = Team(name="Équipe des essais")
    session.add(team)
    session.flush()
    return team


@pytest.fixture
def referent(session: Session, team: Team) -> StaffUser:
    return create_staff(session, full_name="Awa Diallo", team_id=team.id)


@pytest.fixture
def supervisor(session: Session, team: Team) -> StaffUser:
    return create_staff(session, StaffRole.SUPERVISOR, full_name="Hélène Martin", team_id=team.id)


def followed_youth(session: Session, referent: StaffUser, **values: object) -> Youth:
    defaults: dict[str, object] = {
        "birth_date": date(2004, 6, 1),
        "activated_at": NOW - timedelta(days=400),
        "last_activity_at": NOW - timedelta(days=3),
        "ase_exit_date": date(2023, 1, 10),
    }
    youth = create_youth(session, **{**defaults, **values})
    assign(session, youth, referent, started_at=NOW - timedelta(days=300))
    return youth


def text_of(html: str) -> str:
    """What a reader sees: the page without its tags (dates come isolated in <bdi>)."""
    return re.sub(r"<[^>]+>", "", html)


def open_alert(session: Session, youth: Youth, now: datetime = NOW) -> StaffTask:
    task: StaffTask = create_task(session, youth, TaskKind.NEEDS_HELP_ALERT, now=now)
    return task


def test_only_the_tasks_module_builds_a_task() -> None:
    package = Path(__file__).resolve().parents[1] / "paris_avenir"
    builders = [
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if re.search(
            r"(?<!class )\bStaffTask\(|insert\(StaffTask\b|update\(StaffTask\b", path.read_text()
        )
    ]
    assert builders == ["staff/tasks.py"]  # built, changed and moved there only


def test_the_assignee_is_the_referent_or_the_supervisor_when_absent_or_gone(
    session: Session, referent: StaffUser, supervisor: StaffUser
) -> None:
    youth = followed_youth(session, referent)
    assert tasks.assignee_for(session, youth.id, NOW) == referent
    referent.absent_until = NOW + timedelta(days=5)
    assert tasks.assignee_for(session, youth.id, NOW) == supervisor
    assert tasks.assignee_for(session, youth.id, NOW + timedelta(days=6)) == referent
    referent.absent_until = None
    referent.is_active = False
    assert tasks.assignee_for(session, youth.id, NOW) == supervisor
    # No current référent any more (assignment ended): the last team's supervisor.
    referent.is_active = True
    from paris_avenir.staff.models import CaseloadAssignment

    session.scalars(select(CaseloadAssignment)).one().ended_at = NOW - timedelta(days=1)
    session.flush()
    assert tasks.assignee_for(session, youth.id, NOW) == supervisor


def test_the_same_key_never_opens_two_tasks(session: Session, referent: StaffUser) -> None:
    youth = followed_youth(session, referent)
    first = tasks.open_task(
        session, youth_id=youth.id, kind=TaskKind.DELETION_REQUEST, key="k", now=NOW
    )
    again = tasks.open_task(
        session, youth_id=youth.id, kind=TaskKind.DELETION_REQUEST, key="k", now=NOW
    )
    assert first is not None and again is None
    assert len(session.scalars(select(StaffTask)).all()) == 1


def test_an_urgent_task_is_due_by_the_end_of_the_working_day() -> None:
    paris = PARIS
    wednesday_11 = datetime(2026, 12, 2, 11, tzinfo=paris)
    assert tasks.end_of_working_day(wednesday_11) == datetime(2026, 12, 2, 18, tzinfo=paris)
    wednesday_17 = datetime(2026, 12, 2, 17, tzinfo=paris)
    assert tasks.end_of_working_day(wednesday_17) == datetime(2026, 12, 3, 18, tzinfo=paris)
    saturday = datetime(2026, 12, 5, 10, tzinfo=paris)
    assert tasks.end_of_working_day(saturday) == datetime(2026, 12, 7, 18, tzinfo=paris)
    christmas_eve_night = datetime(2026, 12, 24, 22, tzinfo=paris)
    assert tasks.end_of_working_day(christmas_eve_night) == datetime(2026, 12, 28, 18, tzinfo=paris)


async def test_needs_help_emails_the_referent_and_tells_the_youth_who_will_call(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser
) -> None:
    youth = followed_youth(session, referent, activated_at=NOW - timedelta(days=95))
    cycle(session, NOW)
    attempt = session.scalars(select(OutreachAttempt)).one()
    assert attempt.reason is OutreachReason.CHECK_IN
    session.commit()
    token = checkin.link(attempt.id, secret_key=app.state.settings.secret_key, base_url="")
    answered = await post_form(client, token, {"reponse": "aide"})
    told = text_of(answered.text)
    assert "Nous avons prévenu Awa Diallo, votre référent." in told
    assert "Awa Diallo vous appelle aujourd’hui avant 18:00." in told  # this working day
    email = session.scalars(
        select(OutboxMessage).where(OutboxMessage.template == "task_urgent_alert")
    ).one()
    assert email.channel is Channel.EMAIL and email.recipient == referent.email
    assert email.next_attempt_at == NOW  # at once: inside the sending window
    assert email.subject == f"Urgent : {youth.first_name} {youth.last_name[:1]}. a besoin d’aide"
    assert "http://127.0.0.1:8000/pro/a-faire" in email.body_text
    assert youth.phone is not None and youth.phone not in email.body_text
    # The youth's own page says the same, in their space.
    sign_in_as(client, app, session, youth=youth)
    space = (await client.get("/mon-espace")).text
    assert "Vous avez dit : « J’ai besoin d’aide »" in space
    assert "Nous avons prévenu Awa Diallo. Awa Diallo vous appelle aujourd’hui avant" in (
        text_of(space)
    )
    assert "Tout est à jour" not in space


async def test_when_the_referent_is_absent_the_supervisor_is_told_and_named(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    referent: StaffUser,
    supervisor: StaffUser,
) -> None:
    followed_youth(session, referent, activated_at=NOW - timedelta(days=95))
    referent.absent_until = NOW + timedelta(days=10)
    cycle(session, NOW)
    attempt = session.scalars(select(OutreachAttempt)).one()
    session.commit()
    token = checkin.link(attempt.id, secret_key=app.state.settings.secret_key, base_url="")
    answered = await post_form(client, token, {"reponse": "aide"})
    assert (
        "Votre référent n’est pas là. Nous avons prévenu Hélène Martin, responsable de l’équipe."
        in answered.text
    )
    email = session.scalars(
        select(OutboxMessage).where(OutboxMessage.template == "task_urgent_alert")
    ).one()
    assert email.recipient == supervisor.email
    assert session.scalars(select(StaffTask)).one().assignee_id == supervisor.id


def test_an_alert_at_night_is_emailed_when_the_window_opens(
    session: Session, referent: StaffUser
) -> None:
    youth = followed_youth(session, referent)
    tuesday_night = datetime(2026, 12, 1, 22, 30, tzinfo=UTC)  # 23:30 in Paris
    open_alert(session, youth, tuesday_night)
    email = session.scalars(select(OutboxMessage)).one()
    assert email.next_attempt_at == datetime(2026, 12, 2, 8, 0, tzinfo=UTC)  # 09:00 Paris


async def test_the_queue_puts_urgent_first_then_overdue_then_due_soon(
    clock: time_machine.Traveller,
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    referent: StaffUser,
) -> None:
    soon = followed_youth(session, referent, first_name="Bientôt")
    late = followed_youth(session, referent, first_name="Retard")
    urgent = followed_youth(session, referent, first_name="Urgent")
    tasks.open_task(session, youth_id=soon.id, kind=TaskKind.DELETION_REQUEST, key="a", now=NOW)
    tasks.open_task(
        session,
        youth_id=late.id,
        kind=TaskKind.MISSED_APPOINTMENT,
        key="b",
        now=NOW - timedelta(days=5),
        detail={"appointment": "Avec le référent", "appointment_at": NOW.isoformat()},
    )
    open_alert(session, urgent)
    session.commit()
    clock.move_to(NOW + timedelta(hours=1), tick=False)
    sign_in_as(client, app, session, staff=referent)
    page = (await client.get("/pro/a-faire")).text
    order = [page.index(f"{youth.first_name} {youth.last_name}") for youth in (urgent, late, soon)]
    assert order == sorted(order)
    assert "Urgent" in page and "En retard" in page
    assert "A répondu « J’ai besoin d’aide »" in page  # words, never codes
    assert "alerte_besoin_aide" not in text_of(page)  # no code shown to the reader
    assert f'href="tel:{urgent.phone}"' in page
    assert "Appelez le jeune et proposez-lui un nouveau rendez-vous." in page
    # The menu counts them.
    assert re.search(r"À faire <span class=\"count\">3", page)


async def test_a_call_line_offers_the_referents_free_slots_and_paperwork_does_not(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser
) -> None:
    from tests.test_appointments import open_mornings

    missed = followed_youth(session, referent, first_name="Manqué")
    deleting = followed_youth(session, referent, first_name="Supprime")
    call = create_task(session, missed, TaskKind.MISSED_APPOINTMENT, now=NOW)
    paperwork = create_task(session, deleting, TaskKind.DELETION_REQUEST, now=NOW)
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    # No availability yet: nothing to propose.
    assert "Vos prochains créneaux libres" not in (await client.get("/pro/a-faire")).text
    open_mornings(session, referent)
    session.commit()
    page = (await client.get("/pro/a-faire")).text

    def line_of(task: StaffTask) -> str:
        lines = page.split('<li class="task')
        return text_of(next(line for line in lines if f'id="tache-{task.id}"' in line))

    assert "Vos prochains créneaux libres" not in line_of(paperwork)
    offered = line_of(call).split("Vos prochains créneaux libres :", 1)[1].split("\n", 1)[0]
    assert re.match(r"\s*jeu\. 3 déc\. 09:00", offered), offered  # tomorrow 9:00, weekday first


async def test_a_call_task_shows_what_the_watch_tried_and_what_failed(
    clock: time_machine.Traveller,
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    session_factory: sessionmaker[Session],
    referent: StaffUser,
    sms_api: BrevoSmsApi,
) -> None:
    from paris_avenir.messaging import outbox
    from paris_avenir.messaging.channels import Channels
    from paris_avenir.messaging.channels.email_smtp import SmtpEmailSender
    from paris_avenir.messaging.channels.sms_brevo import BrevoSmsSender

    followed_youth(
        session,
        referent,
        last_activity_at=NOW - timedelta(days=30),
        email_unreachable_at=NOW - timedelta(days=1),  # the email step falls back to SMS
    )
    channels = Channels(
        sms=BrevoSmsSender(api_url=sms_api.url, api_key=BrevoSmsApi.API_KEY, sender="Test"),
        email=SmtpEmailSender("smtp://127.0.0.1:9", sender="Paris avenir <pa@example.org>"),
    )
    # The provider takes the first SMS and refuses the second for good.
    sms_api.next_statuses = [201, 400]
    for day in range(0, 16):
        cycle(session, NOW + timedelta(days=day))
        session.commit()
        outbox.dispatch_due(session_factory, channels, now=NOW + timedelta(days=day, hours=1))
        session.expire_all()
    task = session.scalars(select(StaffTask)).one()
    assert task.kind is TaskKind.PHONE_YOUTH and task.assignee_id == referent.id
    clock.move_to(NOW + timedelta(days=15, hours=2), tick=False)
    sign_in_as(client, app, session, staff=referent)
    page = text_of((await client.get("/pro/a-faire")).text)
    assert "Silencieux : appeler" in page
    assert "Aucune activité depuis 45 jours." in page
    assert "SMS du 02/12/2026 : envoyé, sans réponse." in page
    assert "SMS du 09/12/2026 : échec." in page
    assert "SMS : numéro injoignable depuis le 09/12/2026." in page
    assert "E-mail : adresse en échec depuis le 01/12/2026." in page
    assert "signalé injoignable" in page  # no tel: link to a number that bounces


async def test_closing_reached_restarts_the_watch_and_it_stays_silent_for_the_period(
    clock: time_machine.Traveller,
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    referent: StaffUser,
) -> None:
    youth = followed_youth(session, referent, last_activity_at=NOW - timedelta(days=45))
    cycle(session, NOW)
    task = session.scalars(select(StaffTask)).one()
    assert task.kind is TaskKind.PHONE_YOUTH
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    # Quiet for 45 days before the watch ever ran: the line does not pretend it wrote.
    queue = text_of((await client.get("/pro/a-faire")).text)
    assert "Aucun message de relance envoyé pendant cette période." in queue
    closed_at = NOW + timedelta(days=1)
    clock.move_to(closed_at, tick=False)
    sign_in_as(client, app, session, staff=referent)
    response = await post_form(
        client,
        f"/pro/a-faire/{task.id}",
        {"resultat": "joint", "note": "Il va bien, cherche un stage.", "suite": "/pro"},
    )
    assert response.status_code == 303 and response.headers["location"] == "/pro?termine=joint"
    session.expire_all()
    task = session.get_one(StaffTask, task.id)
    assert (task.outcome, task.closed_by_id, task.done_at) == (
        TaskOutcome.REACHED,
        referent.id,
        closed_at,
    )
    assert session.get_one(Youth, youth.id).last_activity_at == closed_at
    call = session.get_one(OutreachAttempt, task.outreach_attempt_id)
    assert call.response is OutreachResponse.STAFF_CONTACT
    note = session.get_one(FollowUpNote, task.note_id)
    plain = app.state.cipher.decrypt(note.body_encrypted.encode()).decode()
    assert plain == "Silencieux : appeler — Joint·e : Il va bien, cherche un stage."
    closed = session.scalars(select(AuditEvent).where(AuditEvent.action == "task.closed")).one()
    assert (closed.actor_staff_id, closed.youth_id) == (referent.id, youth.id)
    before = len(session.scalars(select(OutreachAttempt)).all())
    # The whole period after the call: nothing is sent (29 quiet days, then the SMS again).
    for day in range(1, 30):
        cycle(session, closed_at + timedelta(days=day))
    assert len(session.scalars(select(OutreachAttempt)).all()) == before
    cycle(session, closed_at + timedelta(days=30))
    assert len(session.scalars(select(OutreachAttempt)).all()) == before + 1
    # The youth file's history shows who closed it and how.
    clock.move_to(closed_at, tick=False)
    file = (await client.get(f"/pro/jeunes/{youth.id}")).text
    assert "Silencieux : appeler" in file and "<strong>Joint·e</strong> par Awa Diallo" in file


def test_a_contact_by_the_team_holds_the_check_in_and_the_triggers_back(
    session: Session, referent: StaffUser
) -> None:
    # Due for a "Comment ça va ?" and, turning 21 soon, for the birthday message.
    youth = followed_youth(
        session, referent, activated_at=NOW - timedelta(days=95), birth_date=date(2006, 1, 20)
    )
    assert {contact.reason for contact in cycle(session, NOW, dry_run=True).contacts} == {
        OutreachReason.BIRTHDAY_21
    }
    task = create_task(session, youth, TaskKind.BIRTHDAY_21, now=NOW)
    tasks.close_task(session, _cipher(), task, by=referent, outcome="vu_au_guichet", now=NOW)
    # A person just saw the youth: nothing is sent for the frequency cap's 5 days…
    for day in range(5):
        assert cycle(session, NOW + timedelta(days=day, hours=1)).contacts == [], day
    # …then the birthday message, but no "Comment ça va ?" for the check-in's period.
    later = cycle(session, NOW + timedelta(days=5, hours=1)).contacts
    assert [contact.reason for contact in later] == [OutreachReason.BIRTHDAY_21]
    assert all(
        OutreachReason.CHECK_IN
        not in {c.reason for c in cycle(session, NOW + timedelta(days=d)).contacts}
        for d in range(6, 40, 5)
    )


def _cipher() -> MultiFernet:
    return MultiFernet([Fernet(TEST_FERNET_KEY)])


def test_no_answer_lets_the_next_step_of_the_watch_run(
    session: Session, referent: StaffUser
) -> None:
    youth = followed_youth(session, referent, last_activity_at=NOW - timedelta(days=45))
    cycle(session, NOW)
    task = session.scalars(select(StaffTask)).one()
    tasks.close_task(session, _cipher(), task, by=referent, outcome="pas_de_reponse", now=NOW)
    assert youth.last_activity_at == NOW - timedelta(days=45)
    for day in range(1, 46):
        cycle(session, NOW + timedelta(days=day))
    steps = [
        (attempt.step, attempt.channel)
        for attempt in session.scalars(
            select(OutreachAttempt).order_by(OutreachAttempt.attempted_at)
        )
    ]
    assert steps[-1] == (1, Channel.SMS)  # the next period's SMS, 60 days after the first


async def test_wrong_number_flags_the_phone_and_the_youth_confirms_it_at_sign_in(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser
) -> None:

    youth = followed_youth(session, referent)
    task = create_task(session, youth, TaskKind.MISSED_APPOINTMENT, now=NOW)
    tasks.close_task(session, _cipher(), task, by=referent, outcome="mauvais_numero", now=NOW)
    assert youth.phone_unreachable_at == NOW
    check = create_task(session, youth, TaskKind.NUMBER_TO_CHECK, now=NOW)
    session.commit()
    # Next sign-in (by email): before anything else, "is this still your number?"
    assert youth.email is not None
    start = factories.request_code(
        session,
        secret_key=app.state.settings.secret_key,
        raw_destination=youth.email,
        ip_address="127.0.0.1",
    )
    message = session.get_one(OutboxMessage, start.outbox_message.id)  # type: ignore[union-attr]
    code = re.search(r"\b(\d{6})\b", message.body_text)
    assert code is not None
    session.commit()
    client.cookies.set("tentative_connexion", start.attempt_token)
    signed_in = await post_form(client, "/connexion/code", {"code": code.group(1)})
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/mon-espace/numero?suite=/mon-espace"
    page = (await client.get(signed_in.headers["location"])).text
    assert "Est-ce toujours votre numéro ?" in page and "J’ai un nouveau numéro" in page
    assert "Votre référent n’a pas pu vous joindre à ce numéro" in page
    # "Oui, c'est mon numéro" is proven like a new number: by the code sent to it.
    asked = await post_form(client, "/mon-espace/numero", {"suite": "/mon-espace"})
    assert asked.status_code == 200 and "Entrez le code" in asked.text
    sent = session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.template == "contact_code", OutboxMessage.recipient == youth.phone
        )
    ).one()
    assert sent.status is OutboxStatus.SENT and sent.body_text == ERASED  # the code left
    # The code is read where the youth reads it: in the SMS the provider received.
    received = [json.loads(line) for line in app.state.settings.sms_file.read_text().splitlines()]
    proof = re.search(
        r"\b(\d{6})\b", [sms for sms in received if sms["to"] == youth.phone][-1]["text"]
    )
    assert proof is not None
    session.expire_all()
    assert session.get_one(Youth, youth.id).phone_reported_wrong_at == NOW  # not yet
    confirmed = await post_form(client, "/mon-espace/profil/contact/code", {"code": proof.group(1)})
    assert confirmed.status_code == 303
    session.expire_all()
    proven = session.get_one(Youth, youth.id)
    assert proven.phone_unreachable_at is None and proven.phone_reported_wrong_at is None
    # Proven by the code sent to it: the référent's « Numéro à vérifier » is done.
    assert session.get_one(StaffTask, check.id).outcome is TaskOutcome.DONE


async def test_a_code_that_arrives_by_sms_proves_a_number_whose_messages_bounced(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser
) -> None:

    youth = followed_youth(session, referent, phone_unreachable_at=NOW)  # a hard bounce
    # Its message and the email both failed: the référent was asked to check the number.
    check = create_task(session, youth, TaskKind.NUMBER_TO_CHECK, now=NOW)
    other = create_task(
        session, followed_youth(session, referent), TaskKind.NUMBER_TO_CHECK, now=NOW
    )
    start = factories.request_code(
        session,
        secret_key=app.state.settings.secret_key,
        raw_destination=str(youth.phone),
        ip_address="127.0.0.1",
    )
    assert start.outbox_message is not None
    code = re.search(r"\b(\d{6})\b", start.outbox_message.body_text)
    assert code is not None
    session.commit()
    client.cookies.set("tentative_connexion", start.attempt_token)
    signed_in = await post_form(client, "/connexion/code", {"code": code.group(1)})
    assert signed_in.headers["location"] == "/mon-espace"  # not asked: the SMS arrived
    session.expire_all()
    assert session.get_one(Youth, youth.id).phone_unreachable_at is None
    # The check is done by itself, as "fait"; another youth's stays open.
    closed = session.get_one(StaffTask, check.id)
    assert closed.done_at is not None and closed.outcome is TaskOutcome.DONE
    assert closed.closed_by_id is None
    assert session.get_one(StaffTask, other.id).done_at is None


def test_an_unanswered_call_keeps_an_urgent_alert_open(
    session: Session, referent: StaffUser
) -> None:
    youth = followed_youth(session, referent)
    task = open_alert(session, youth)
    result = tasks.close_task(
        session, _cipher(), task, by=referent, outcome="pas_de_reponse", now=NOW
    )
    assert result.kept_open and task.done_at is None
    assert task.due_at == datetime(2026, 12, 3, 18, tzinfo=PARIS)
    assert session.scalars(select(FollowUpNote)).one() is not None


@pytest.mark.parametrize("outcome", ["", "fait", "n-importe-quoi"])
async def test_an_outcome_outside_the_kinds_list_is_refused_and_nothing_changes(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, outcome: str
) -> None:
    youth = followed_youth(session, referent)
    task = open_alert(session, youth)
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    refused = await post_form(
        client, f"/pro/a-faire/{task.id}", {"resultat": outcome, "note": "à garder"}
    )
    assert refused.status_code == 422
    assert "Choisissez ce qui s’est passé dans la liste." in refused.text
    session.expire_all()
    assert session.get_one(StaffTask, task.id).done_at is None
    assert session.scalars(select(FollowUpNote)).all() == []


async def test_closing_twice_is_refused(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser
) -> None:
    youth = followed_youth(session, referent)
    task = create_task(session, youth, TaskKind.DELETION_REQUEST, now=NOW)
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    assert (
        await post_form(client, f"/pro/a-faire/{task.id}", {"resultat": "fait"})
    ).status_code == 303
    again = await post_form(client, f"/pro/a-faire/{task.id}", {"resultat": "transmis"})
    assert again.status_code == 409 and "Cette tâche est déjà terminée." in again.text


async def test_another_staff_members_session_gets_a_404_and_an_audit_entry(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    referent: StaffUser,
    supervisor: StaffUser,
) -> None:
    youth = followed_youth(session, referent)
    task = open_alert(session, youth)
    colleague = create_staff(session, team_id=referent.team_id)
    other_team = Team(name="Autre équipe")
    session.add(other_team)
    session.flush()
    outsider = create_staff(session, StaffRole.SUPERVISOR, team_id=other_team.id)
    psychologist = create_staff(session, StaffRole.PSYCHOLOGIST)
    session.commit()
    for intruder in (colleague, outsider):
        client.cookies.clear()
        sign_in_as(client, app, session, staff=intruder)
        refused = await post_form(client, f"/pro/a-faire/{task.id}", {"resultat": "joint"})
        missing = await post_form(
            client, "/pro/a-faire/00000000-0000-0000-0000-000000000000", {"resultat": "joint"}
        )
        assert refused.status_code == missing.status_code == 404
        assert refused.text == missing.text
        assert youth.first_name not in (await client.get("/pro/a-faire")).text
    client.cookies.clear()
    sign_in_as(client, app, session, staff=psychologist)
    assert (await client.get("/pro/a-faire")).status_code == 403
    agenda = await client.get("/pro/agenda")
    assert agenda.status_code == 200 and 'href="/pro/a-faire"' not in agenda.text  # no menu entry
    client.cookies.clear()
    sign_in_as(client, app, session, youth=youth)
    assert (await client.get("/pro/a-faire")).status_code == 303  # to the staff sign-in
    session.expire_all()
    assert session.get_one(StaffTask, task.id).done_at is None
    denied = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "access_denied", AuditEvent.object_id == task.id
        )
    ).all()
    assert {event.actor_staff_id for event in denied} == {colleague.id, outsider.id}
    # The team's supervisor may close it.
    client.cookies.clear()
    sign_in_as(client, app, session, staff=supervisor)
    closed = await post_form(client, f"/pro/a-faire/{task.id}", {"resultat": "joint"})
    assert closed.status_code == 303


def test_an_overdue_task_moves_to_the_supervisor_after_the_policys_delay(
    session: Session, referent: StaffUser, supervisor: StaffUser
) -> None:
    youth = followed_youth(session, referent)
    task = tasks.open_task(
        session, youth_id=youth.id, kind=TaskKind.MISSED_APPOINTMENT, key="m", now=NOW
    )
    assert task is not None and task.due_at == NOW + timedelta(days=2)
    delay = timedelta(days=3)  # the policy's default
    assert cycle(session, task.due_at + delay - timedelta(minutes=1)).escalations == []
    assert task.assignee_id == referent.id
    dry = cycle(session, task.due_at + delay, dry_run=True)
    report = cycle(session, task.due_at + delay)
    assert dry.escalations == report.escalations and len(report.escalations) == 1
    session.refresh(task)
    assert (task.assignee_id, task.escalated_at) == (supervisor.id, task.due_at + delay)
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "task.escalated")).one()
    assert event.detail == {
        "kind": "rdv_manque",
        "from": str(referent.id),
        "to": str(supervisor.id),
    }
    assert cycle(session, task.due_at + delay + timedelta(days=1)).escalations == []


def test_an_escalated_alert_emails_the_supervisor(
    session: Session, referent: StaffUser, supervisor: StaffUser
) -> None:
    youth = followed_youth(session, referent)
    task = open_alert(session, youth)
    cycle(session, task.due_at + timedelta(days=3))
    emails = session.scalars(
        select(OutboxMessage.recipient).where(OutboxMessage.template == "task_urgent_alert")
    ).all()
    assert sorted(emails) == sorted([referent.email, supervisor.email])


def test_reassigning_a_youth_moves_their_open_tasks(
    session: Session, referent: StaffUser, supervisor: StaffUser
) -> None:
    from paris_avenir.staff import reassignment

    youth = followed_youth(session, referent)
    open_alert(session, youth)
    done = create_task(session, youth, TaskKind.DELETION_REQUEST, now=NOW)
    tasks.close_task(session, _cipher(), done, by=referent, outcome="fait", now=NOW)
    newcomer = create_staff(session, team_id=referent.team_id)
    reassignment.reassign(session, youth.id, to_referent_id=newcomer.id, by=supervisor, now=NOW)
    assignees = {task.kind: task.assignee_id for task in session.scalars(select(StaffTask)).all()}
    assert assignees == {
        TaskKind.NEEDS_HELP_ALERT: newcomer.id,
        TaskKind.DELETION_REQUEST: referent.id,  # closed: stays with who did it
    }


async def test_declaring_an_absence_hands_the_tasks_to_the_supervisor(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    referent: StaffUser,
    supervisor: StaffUser,
) -> None:
    youth = followed_youth(session, referent)
    open_alert(session, youth)
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    past = await post_form(client, "/pro/absence", {"jusqu_au": "2026-11-01"})
    assert past.status_code == 422 and "après aujourd’hui" in past.text
    declared = await post_form(client, "/pro/absence", {"jusqu_au": "2026-12-11"})
    assert declared.status_code == 303
    page = (await client.get("/pro/a-faire")).text
    assert "de retour le samedi 12 décembre 2026" in text_of(page)
    session.expire_all()
    assert session.scalars(select(StaffTask)).one().assignee_id == supervisor.id
    later = followed_youth(session, referent)
    task = tasks.open_task(
        session, youth_id=later.id, kind=TaskKind.DELETION_REQUEST, key="z", now=NOW
    )
    assert task is not None and task.assignee_id == supervisor.id
    # The supervisor sees who is away on the team page, and may mark them back.
    session.commit()
    client.cookies.clear()
    sign_in_as(client, app, session, staff=supervisor)
    team_page = (await client.get("/pro/equipe")).text
    assert "Absent·e, de retour le samedi 12 décembre 2026" in text_of(team_page)
    back = await post_form(client, f"/pro/equipe/{referent.id}/absence", {"jusqu_au": ""})
    assert back.status_code == 303
    session.expire_all()
    assert session.get_one(StaffUser, referent.id).absent_until is None


async def test_a_supervisor_of_another_team_cannot_mark_an_absence(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser
) -> None:
    other_team = Team(name="Voisins")
    session.add(other_team)
    session.flush()
    outsider = create_staff(session, StaffRole.SUPERVISOR, team_id=other_team.id)
    session.commit()
    sign_in_as(client, app, session, staff=outsider)
    refused = await post_form(
        client, f"/pro/equipe/{referent.id}/absence", {"jusqu_au": "2026-12-20"}
    )
    assert refused.status_code == 404
    session.expire_all()
    assert session.get_one(StaffUser, referent.id).absent_until is None


def test_an_unshared_psychologist_appointment_missed_leaves_no_trace_for_staff(
    session: Session, referent: StaffUser
) -> None:
    from paris_avenir.appointments import calendar
    from paris_avenir.appointments.models import AppointmentKind
    from tests.factories import create_appointment

    psychologist = create_staff(session, StaffRole.PSYCHOLOGIST)
    youth = followed_youth(session, referent)
    private = create_appointment(
        session, youth, psychologist, NOW - timedelta(hours=2), kind=AppointmentKind.PSYCHOLOGIST
    )
    calendar.mark(session, private, psychologist, attended=False, now=NOW)
    cycle(session, NOW + timedelta(hours=1))
    assert session.scalars(select(StaffTask)).all() == []
    reasons = session.scalars(select(OutreachAttempt.reason)).all()
    assert OutreachReason.MISSED_APPOINTMENT not in reasons
    shared = create_appointment(
        session,
        youth,
        psychologist,
        NOW - timedelta(hours=1),
        kind=AppointmentKind.PSYCHOLOGIST,
        shared_with_referent=True,
    )
    calendar.mark(session, shared, psychologist, attended=False, now=NOW)
    cycle(session, NOW + timedelta(days=6))  # after the check-in's frequency cap
    task = session.scalars(select(StaffTask)).one()
    assert (task.kind, task.assignee_id) == (TaskKind.MISSED_APPOINTMENT, referent.id)
    reasons = session.scalars(select(OutreachAttempt.reason)).all()
    assert OutreachReason.MISSED_APPOINTMENT in reasons


async def test_documents_received_open_a_task_that_the_decision_closes(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser
) -> None:
    from paris_avenir.aid_requests import instruction
    from paris_avenir.aid_requests import service as requests_service
    from paris_avenir.aid_requests.models import AidCode, RequestStatus

    youth = followed_youth(session, referent)
    request = create_aid_request(
        session,
        youth,
        aid_code=AidCode.NAVIGO,
        status=RequestStatus.MISSING_DOCUMENTS,
        form_data={},
        submitted_at=NOW - timedelta(days=10),
    )
    session.flush()
    requests_service.documents_supplied(session, request, youth, now=NOW)
    task = session.scalars(select(StaffTask)).one()
    assert (task.kind, task.aid_request_id, task.assignee_id) == (
        TaskKind.DOCUMENTS_RECEIVED,
        request.id,
        referent.id,
    )
    assert task.detail["request"] == request.reference
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    page = (await client.get("/pro/a-faire")).text
    assert "Documents reçus" in page and f'href="/pro/demandes/{request.id}"' in page
    assert "Pass Navigo gratuit" in page or "Navigo" in page
    instruction.refuse(
        session,
        request,
        instruction.Decider(referent, "http://x", now=NOW + timedelta(days=1)),
        reason="Vous avez plus de 21 ans, voyez avec moi.",
    )
    session.refresh(task)
    assert (task.outcome, task.closed_by_id) == (TaskOutcome.DONE, referent.id)


def test_hand_overs_request_waiting_interview_due_and_birthdays(
    session: Session, referent: StaffUser
) -> None:
    from paris_avenir.aid_requests.models import AidCode, RequestStatus
    from paris_avenir.appointments import service as appointments
    from paris_avenir.appointments.models import AppointmentKind

    waiting_youth = followed_youth(session, referent)
    create_aid_request(
        session,
        waiting_youth,
        aid_code=AidCode.LOGEMENT,
        status=RequestStatus.SUBMITTED,
        form_data={},
        submitted_at=NOW - timedelta(days=31),
    )
    # Left care 6 months minus 10 days ago: the interview is due in 10 days, not booked.
    interview_youth = followed_youth(session, referent, ase_exit_date=date(2026, 6, 12))
    turning_21 = followed_youth(session, referent, birth_date=date(2006, 1, 20))
    turning_25 = followed_youth(session, referent, birth_date=date(2002, 2, 20))
    dry = cycle(session, NOW, dry_run=True)
    real = cycle(session, NOW)
    assert dry.tasks == real.tasks
    assert {(planned.youth_id, planned.kind) for planned in real.tasks} == {
        (waiting_youth.id, TaskKind.REQUEST_WAITING),
        (interview_youth.id, TaskKind.FOLLOW_UP_INTERVIEW),
        (turning_21.id, TaskKind.BIRTHDAY_21),
        (turning_25.id, TaskKind.BIRTHDAY_25),
    }
    assert cycle(session, NOW + timedelta(days=1)).tasks == []  # never twice
    interview = session.scalars(
        select(StaffTask).where(StaffTask.kind == TaskKind.FOLLOW_UP_INTERVIEW)
    ).one()
    assert interview.detail == {"due_on": "2026-12-12"}
    birthday = session.scalars(
        select(StaffTask).where(StaffTask.kind == TaskKind.BIRTHDAY_21)
    ).one()
    assert birthday.due_at == datetime(2026, 12, 21, 12, tzinfo=PARIS)  # 30 days before
    # Booking the interview closes its task.
    from tests.test_appointments import open_mornings

    open_mornings(session, referent, AppointmentKind.REFERENT)
    slot = appointments.slots_for(
        session, interview_youth, AppointmentKind.FOLLOW_UP_INTERVIEW, now=NOW
    )[0]
    appointments.book(
        session,
        interview_youth,
        AppointmentKind.FOLLOW_UP_INTERVIEW,
        slot.key,
        base_url="http://x",
        now=NOW,
    )
    session.refresh(interview)
    assert interview.outcome is TaskOutcome.DONE


def test_a_deletion_request_is_a_task_for_the_referent(
    session: Session, referent: StaffUser
) -> None:
    from paris_avenir.privacy import deletion

    youth = followed_youth(session, referent)
    deletion.request_deletion(session, youth, now=NOW)
    task = session.scalars(select(StaffTask)).one()
    assert (task.kind, task.assignee_id, task.due_at) == (
        TaskKind.DELETION_REQUEST,
        referent.id,
        NOW + timedelta(days=30),
    )


async def test_the_dashboard_shows_the_top_of_the_queue_and_the_page_is_a_fragment_too(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser
) -> None:
    youths = [followed_youth(session, referent, first_name=f"Jeune{n}") for n in range(7)]
    for youth in youths:
        tasks.open_task(
            session, youth_id=youth.id, kind=TaskKind.DELETION_REQUEST, key=str(youth.id), now=NOW
        )
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    dashboard = (await client.get("/pro")).text
    assert dashboard.count('<li class="task') == 5
    assert "Voir les 7 tâches" in dashboard
    fragment = await client.get("/pro/a-faire", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert fragment.text.count('<h2 class="task__title">') == 7


async def test_the_queue_costs_the_same_number_of_queries_for_3_or_30_tasks(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    referent: StaffUser,
    count_queries: object,
) -> None:
    sign_in_as(client, app, session, staff=referent)

    async def queries_for(count: int) -> int:
        for _ in range(count):
            youth = followed_youth(session, referent, last_activity_at=NOW - timedelta(days=45))
            cycle(session, NOW)  # a call task, with its SMS and email history
            open_alert(session, youth, NOW + timedelta(seconds=len(youth.ase_ref)))
        session.commit()
        with count_queries() as counter:  # type: ignore[operator]
            assert (await client.get("/pro/a-faire")).status_code == 200
        return len(counter.statements)

    assert await queries_for(3) == await queries_for(27)


async def test_the_team_page_shows_tasks_per_referent_and_the_watchs_results(
    clock: time_machine.Traveller,
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    referent: StaffUser,
    supervisor: StaffUser,
) -> None:
    for days in (30, 30, 31):
        followed_youth(session, referent, last_activity_at=NOW - timedelta(days=days))
    cycle(session, NOW)
    answering = session.scalars(select(OutreachAttempt)).first()
    assert answering is not None
    engine.record_response(
        session, answering.youth_id, OutreachResponse.SIGN_IN, now=NOW + timedelta(days=2)
    )
    youth = followed_youth(session, referent)
    late = tasks.open_task(
        session,
        youth_id=youth.id,
        kind=TaskKind.MISSED_APPOINTMENT,
        key="late",
        now=NOW - timedelta(days=3),
    )
    quick = tasks.open_task(
        session, youth_id=youth.id, kind=TaskKind.DELETION_REQUEST, key="q", now=NOW
    )
    assert late is not None and quick is not None
    tasks.close_task(
        session, _cipher(), quick, by=referent, outcome="fait", now=NOW + timedelta(hours=5)
    )
    session.commit()
    clock.move_to(NOW + timedelta(days=8), tick=False)  # the contacts' week is over
    sign_in_as(client, app, session, staff=supervisor)
    page = (await client.get("/pro/equipe")).text
    row = re.search(r"<th scope=\"row\">Awa Diallo</th>(.*?)</tr>", page, re.S)
    assert row is not None
    cells = re.findall(r"<td>(.*?)</td>", row.group(1), re.S)
    assert [re.sub(r"<[^>]+>", "", cell).strip() for cell in cells[2:5]] == ["1", "1", "5 h"]
    assert "Tâches en retard dans l’équipe" in page and youth.last_name in page
    assert "Silencieux depuis longtemps — 1re relance" in page
    watch = re.search(
        r"<caption id=\"veille-[^\"]+\">Awa Diallo</caption>(.*?)</table>", page, re.S
    )
    assert watch is not None and "<td>SMS</td><td>3</td><td>1</td>" in watch.group(1)


def test_outreach_run_says_in_words_what_it_did_and_names_no_one(
    session: Session, referent: StaffUser, supervisor: StaffUser
) -> None:
    from paris_avenir.cli import describe_cycle

    followed_youth(
        session,
        referent,
        first_name="Moussa",
        last_name="Silence",
        ase_ref="ASE-SILENCE",
        last_activity_at=NOW - timedelta(days=45),
    )
    followed_youth(
        session, referent, first_name="Lina", ase_ref="ASE-BIENTOT", birth_date=date(2006, 1, 20)
    )
    late = followed_youth(session, referent, first_name="Ahmad", ase_ref="ASE-RETARD")
    create_task(session, late, TaskKind.MISSED_APPOINTMENT, now=NOW - timedelta(days=6))
    lines = describe_cycle(cycle(session, NOW, dry_run=True), dry_run=True)
    assert (
        "ASE-SILENCE — serait contacté : Silencieux depuis longtemps, 3e étape, "
        "tâche pour le référent"
    ) in lines
    assert "ASE-BIENTOT — tâche qui serait ouverte : Bientôt 21 ans" in lines
    assert (
        "ASE-RETARD — tâche en retard serait confiée au superviseur : Rendez-vous manqué" in lines
    )
    assert re.fullmatch(
        r"\d+ contact\(s\), dont 1 tâche\(s\) pour le référent ; "
        r"1 autre\(s\) tâche\(s\) ouverte\(s\) ; 1 tâche\(s\) déplacée\(s\)\.",
        lines[-1],
    )
    printed = "\n".join(lines)
    assert not any(name in printed for name in ("Moussa", "Lina", "Ahmad", "Silence", "+33"))


async def test_a_youth_reading_arabic_is_answered_in_arabic_and_the_referent_in_french(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser
) -> None:
    followed_youth(session, referent, language="ar", activated_at=NOW - timedelta(days=95))
    cycle(session, NOW)
    attempt = session.scalars(select(OutreachAttempt)).one()
    session.commit()
    token = checkin.link(attempt.id, secret_key=app.state.settings.secret_key, base_url="")
    answered = await post_form(client, token, {"reponse": "aide"})
    assert 'lang="ar" dir="rtl"' in answered.text
    assert "أبلغنا Awa Diallo، مرشدك." in answered.text
    email = session.scalars(
        select(OutboxMessage).where(OutboxMessage.template == "task_urgent_alert")
    ).one()
    assert email.subject is not None and email.subject.startswith("Urgent : ")
    assert email.body_text.startswith("Bonjour Awa Diallo,")


async def test_the_youth_sees_who_worked_on_their_file_in_their_accesses(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser
) -> None:
    youth = followed_youth(session, referent)
    task = open_alert(session, youth)
    tasks.close_task(session, _cipher(), task, by=referent, outcome="pas_de_reponse", now=NOW)
    tasks.close_task(session, _cipher(), task, by=referent, outcome="joint", now=NOW)
    session.commit()
    sign_in_as(client, app, session, youth=youth)
    page = text_of((await client.get("/mon-espace/acces")).text)
    assert "a essayé de vous appeler" in page
    assert "a noté ce qui a été fait pour vous" in page and "Awa Diallo" in page


async def test_the_team_page_is_the_supervisors_and_shows_only_their_team(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    referent: StaffUser,
    supervisor: StaffUser,
) -> None:
    youth = followed_youth(session, referent, first_name="Personne", last_name="Enretard")
    create_task(session, youth, TaskKind.MISSED_APPOINTMENT, now=NOW - timedelta(days=5))
    other_team = Team(name="Équipe Nord")
    session.add(other_team)
    session.flush()
    outsider = create_staff(session, StaffRole.SUPERVISOR, team_id=other_team.id)
    psychologist = create_staff(session, StaffRole.PSYCHOLOGIST)
    session.commit()
    for person, status in ((referent, 403), (psychologist, 403), (outsider, 200)):
        client.cookies.clear()
        sign_in_as(client, app, session, staff=person)
        page = await client.get("/pro/equipe")
        assert page.status_code == status
        assert "Enretard" not in page.text and "Awa Diallo" not in page.text
    client.cookies.clear()
    sign_in_as(client, app, session, staff=supervisor)
    own = (await client.get("/pro/equipe")).text
    assert "Personne Enretard" in own and "Awa Diallo" in own


# --- What an attacker's pass found ---------------------------------------------------------


async def test_a_task_held_for_a_youth_one_no_longer_follows_shows_nothing(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser
) -> None:
    from paris_avenir.staff.models import CaseloadAssignment

    youth = followed_youth(session, referent, last_name="Horsperimetre")
    task = open_alert(session, youth)
    # The assignment ended without the tasks following (an import gone wrong, a data fix).
    session.scalars(select(CaseloadAssignment)).one().ended_at = NOW - timedelta(minutes=1)
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    for page in ("/pro/a-faire", "/pro"):
        text = (await client.get(page)).text
        assert "Horsperimetre" not in text and str(youth.phone) not in text, page
    refused = await post_form(client, f"/pro/a-faire/{task.id}", {"resultat": "joint"})
    assert refused.status_code == 404


def test_a_disabled_account_or_a_new_role_hands_its_tasks_over_at_once(
    session: Session, referent: StaffUser, supervisor: StaffUser
) -> None:
    from paris_avenir.backoffice import admin, team

    first, second = followed_youth(session, referent), followed_youth(session, referent)
    open_alert(session, first)
    create_task(session, second, TaskKind.MISSED_APPOINTMENT, now=NOW)
    admin_account = create_staff(session, StaffRole.ADMIN)
    admin.change_role(session, referent, StaffRole.PSYCHOLOGIST, by=admin_account, now=NOW)
    assert {task.assignee_id for task in session.scalars(select(StaffTask))} == {supervisor.id}
    # A new alert never goes to someone who is no longer a référent.
    later = open_alert(session, first, NOW + timedelta(minutes=1))
    assert later.assignee_id == supervisor.id
    newcomer = create_staff(session, team_id=referent.team_id)
    third = followed_youth(session, newcomer)
    create_task(session, third, TaskKind.DELETION_REQUEST, now=NOW)
    team.disable_staff(session, newcomer, by=admin_account)
    assert (
        session.scalars(select(StaffTask.assignee_id).where(StaffTask.youth_id == third.id)).one()
        == supervisor.id
    )


async def test_an_alert_nobody_can_take_is_never_promised_and_reaches_someone_as_soon_as_possible(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    referent: StaffUser,
    clock: time_machine.Traveller,
) -> None:
    youth = followed_youth(session, referent, activated_at=NOW - timedelta(days=95))
    referent.absent_until = NOW + timedelta(days=10)  # and the team has no supervisor
    admin_account = create_staff(session, StaffRole.ADMIN)
    cycle(session, NOW)
    attempt = session.scalars(select(OutreachAttempt)).one()
    session.commit()
    token = checkin.link(attempt.id, secret_key=app.state.settings.secret_key, base_url="")
    answered = await post_form(client, token, {"reponse": "aide"})
    assert "Si personne ne vous appelle aujourd’hui" in answered.text
    assert " vous appelle aujourd’hui avant" not in answered.text  # no promise
    task = session.scalars(select(StaffTask)).one()
    assert task.assignee_id is None
    told = session.scalars(
        select(OutboxMessage).where(OutboxMessage.template == "task_unassigned_alert")
    ).one()
    assert told.recipient == admin_account.email and str(youth.phone) not in told.body_text
    assert "Awa Diallo" in told.body_text  # what the admin needs to fix the set-up
    # The admin gives the team a supervisor: the next cycle hands the alert over.
    newcomer = create_staff(session, StaffRole.SUPERVISOR, team_id=referent.team_id)
    report = cycle(session, NOW + timedelta(minutes=30))
    assert [(move.to_id, move.overdue) for move in report.escalations] == [(newcomer.id, False)]
    session.expire_all()
    handed = session.get_one(StaffTask, task.id)
    assert (handed.assignee_id, handed.escalated_at) == (newcomer.id, None)
    emails = session.scalars(
        select(OutboxMessage.recipient).where(OutboxMessage.template == "task_urgent_alert")
    ).all()
    assert emails == [newcomer.email]


async def test_no_sign_in_code_goes_to_a_number_reported_wrong_and_its_code_sessions_end(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser
) -> None:
    from paris_avenir.auth import codes, sessions
    from paris_avenir.auth.models import AuthMethod, UserSession

    youth = followed_youth(session, referent)
    stranger = sessions.start_session(session, youth_id=youth.id, method=AuthMethod.CODE)
    task = create_task(session, youth, TaskKind.MISSED_APPOINTMENT, now=NOW)
    tasks.close_task(session, _cipher(), task, by=referent, outcome="mauvais_numero", now=NOW)
    assert (
        session.scalars(
            select(UserSession.revoked_at).where(UserSession.id == stranger.record.id)
        ).one()
        == NOW
    )
    known = factories.request_code(
        session,
        secret_key=app.state.settings.secret_key,
        raw_destination=str(youth.phone),
        ip_address="127.0.0.1",
        now=NOW,
    )
    unknown = factories.request_code(
        session,
        secret_key=app.state.settings.secret_key,
        raw_destination="06 39 98 77 77",
        ip_address="127.0.0.1",
        now=NOW,
    )
    # Nothing sent, and the same answer as for a number nobody has.
    assert known.outbox_message is None and unknown.outbox_message is None
    assert known.masked_destination[:4] == unknown.masked_destination[:4]
    # The youth's email still gets a code from the same page.
    fallback = codes.send_code_by_email_instead(
        session, secret_key=app.state.settings.secret_key, attempt_token=known.attempt_token
    )
    assert fallback is not None and fallback.recipient == youth.email
    check = create_task(session, youth, TaskKind.NUMBER_TO_CHECK, now=NOW)
    # The référent, told it was a mistake, undoes it; the youth sees who did.
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    file = (await client.get(f"/pro/jeunes/{youth.id}")).text
    assert "signalé « mauvais numéro »" in file
    undone = await post_form(client, f"/pro/jeunes/{youth.id}/numero-bon")
    assert undone.status_code == 303
    session.expire_all()
    fixed = session.get_one(Youth, youth.id)
    assert fixed.phone_reported_wrong_at is None and fixed.phone_unreachable_at is None
    done = session.get_one(StaffTask, check.id)
    assert done.outcome is TaskOutcome.DONE and done.closed_by_id == referent.id


async def test_another_caseload_cannot_undo_a_wrong_number(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser
) -> None:
    youth = followed_youth(session, referent, phone_unreachable_at=NOW, phone_reported_wrong_at=NOW)
    colleague = create_staff(session, team_id=referent.team_id)
    session.commit()
    sign_in_as(client, app, session, staff=colleague)
    refused = await post_form(client, f"/pro/jeunes/{youth.id}/numero-bon")
    assert refused.status_code == 404
    session.expire_all()
    assert session.get_one(Youth, youth.id).phone_reported_wrong_at == NOW
    assert session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "access_denied", AuditEvent.actor_staff_id == colleague.id
        )
    ).one()


@pytest.mark.parametrize(
    "suite",
    [
        "/%09/evil.example/x",
        "/%0A/evil.example",
        "//evil.example",
        "/%5Cevil.example",
        "https://evil.example",
    ],
)
async def test_the_phone_page_never_leads_to_another_site(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser, suite: str
) -> None:
    youth = followed_youth(session, referent, phone_unreachable_at=NOW)
    sign_in_as(client, app, session, youth=youth)
    page = (await client.get(f"/mon-espace/numero?suite={suite}")).text
    # "Plus tard" and the confirmation both lead home, never to the address given.
    assert '<p><a href="/mon-espace">Plus tard</a></p>' in page
    assert '<input type="hidden" name="suite" value="/mon-espace">' in page


@pytest.mark.parametrize("outcome", ["pas_de_reponse", "mauvais_numero"])
def test_an_urgent_alert_stays_open_until_someone_speaks_to_the_youth(
    session: Session, referent: StaffUser, outcome: str
) -> None:
    youth = followed_youth(session, referent)
    task = open_alert(session, youth)
    wednesday_half_past_four = datetime(2026, 12, 2, 16, 30, tzinfo=PARIS)
    result = tasks.close_task(
        session, _cipher(), task, by=referent, outcome=outcome, now=wednesday_half_past_four
    )
    assert result.kept_open and task.done_at is None
    assert task.due_at == datetime(2026, 12, 3, 18, tzinfo=PARIS)  # Thursday, not Friday
    if outcome == "mauvais_numero":
        assert youth.phone_reported_wrong_at == wednesday_half_past_four
    for final in ("plus_besoin", "transmis"):  # deciding, or handing over, does close it
        assert final in {
            value for value, _label in task_queue.queue_for(session, referent)[0].outcomes
        }
    done = tasks.close_task(session, _cipher(), task, by=referent, outcome="transmis")
    assert not done.kept_open and task.outcome is TaskOutcome.FORWARDED


def test_after_an_absence_the_next_cycle_gives_the_referent_their_tasks_back(
    session: Session, referent: StaffUser, supervisor: StaffUser
) -> None:
    youth = followed_youth(session, referent)
    waiting = create_task(session, youth, TaskKind.DELETION_REQUEST, now=NOW)  # due in 30 days
    late = create_task(session, youth, TaskKind.MISSED_APPOINTMENT, now=NOW)  # due in 2 days
    alert = open_alert(session, youth)
    tasks.set_absence(
        session, referent, until=date(2026, 12, 8), by=referent, now=NOW, base_url="http://x"
    )
    assert {task.assignee_id for task in (waiting, late, alert)} == {supervisor.id}
    # The supervisor is told of the alert they now hold.
    emailed = session.scalars(
        select(OutboxMessage.recipient).where(OutboxMessage.template == "task_urgent_alert")
    ).all()
    assert sorted(emailed) == sorted([referent.email, supervisor.email])
    back = datetime(2026, 12, 9, 9, 0, tzinfo=UTC)  # the day after the last day of absence
    dry = cycle(session, back, dry_run=True)
    real = cycle(session, back)
    assert dry.escalations == real.escalations
    for task in (waiting, late, alert):
        session.refresh(task)
    assert waiting.assignee_id == referent.id  # back with the référent
    assert late.assignee_id == supervisor.id and alert.assignee_id == supervisor.id  # late: stay


def test_reassigning_a_youth_emails_the_new_referent_of_an_open_alert(
    session: Session, referent: StaffUser, supervisor: StaffUser
) -> None:
    from paris_avenir.staff import reassignment

    youth = followed_youth(session, referent)
    open_alert(session, youth)
    newcomer = create_staff(session, team_id=referent.team_id)
    reassignment.reassign(
        session, youth.id, to_referent_id=newcomer.id, by=supervisor, now=NOW, base_url="http://x"
    )
    emailed = session.scalars(
        select(OutboxMessage.recipient).where(OutboxMessage.template == "task_urgent_alert")
    ).all()
    assert newcomer.email in emailed


@pytest.mark.parametrize(
    ("answered_at", "read_at", "promise"),
    [
        (NOW, NOW, "Awa Diallo vous appelle aujourd’hui avant 18:00."),
        # 17:00 on Wednesday: less than two hours left, Thursday's end of the day.
        (
            datetime(2026, 12, 2, 16, tzinfo=UTC),
            None,
            "Awa Diallo vous appelle demain avant 18:00.",
        ),
        # Saturday: the next working day is Monday.
        (
            datetime(2026, 12, 5, 10, tzinfo=UTC),
            None,
            "Awa Diallo vous appelle le lundi 7 décembre avant 18:00.",
        ),
        # Read on Friday an alert due on Wednesday: no stale date.
        (NOW, datetime(2026, 12, 4, 10, tzinfo=UTC), "Awa Diallo vous appelle dès que possible."),
    ],
)
async def test_the_youth_reads_when_they_will_be_called_in_plain_words(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    referent: StaffUser,
    clock: time_machine.Traveller,
    answered_at: datetime,
    read_at: datetime | None,
    promise: str,
) -> None:
    youth = followed_youth(session, referent)
    open_alert(session, youth, answered_at)
    session.commit()
    clock.move_to(read_at or answered_at, tick=False)
    sign_in_as(client, app, session, youth=youth)
    assert promise in text_of((await client.get("/mon-espace")).text)


async def test_the_youth_file_shows_an_open_alert_ready_to_act_on(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser
) -> None:
    youth = followed_youth(session, referent)
    task = open_alert(session, youth)
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    file = (await client.get(f"/pro/jeunes/{youth.id}")).text
    assert f'href="tel:{youth.phone}"' in file and f'action="/pro/a-faire/{task.id}"' in file
    closed = await post_form(
        client,
        f"/pro/a-faire/{task.id}",
        {"resultat": "vu_au_guichet", "suite": f"/pro/jeunes/{youth.id}"},
    )
    assert closed.headers["location"] == f"/pro/jeunes/{youth.id}?termine=vu_au_guichet"
    after = (await client.get(closed.headers["location"])).text
    assert "Tâche terminée." in after and f'action="/pro/a-faire/{task.id}"' not in after
    assert "<strong>Vu·e au guichet</strong> par Awa Diallo" in after
