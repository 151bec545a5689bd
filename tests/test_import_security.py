"""The ASE import as an attacker would use it (issue 13): another team's supervisor cannot
take a youth over, a change to a followed youth's phone, email or référent waits for an
explicit confirmation of exactly what the dry run showed (once, even with 30 confirmations
at the same moment), is audited with the youth's id so the youth sees it, and is told to the
previous phone or email; a dry run answers the same for another team's ase_ref as for an
unknown one."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import time_machine
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from paris_avenir.audit.models import AuditEvent
from paris_avenir.auth import sessions
from paris_avenir.auth.models import AuthMethod
from paris_avenir.backoffice.importer import describe, import_youths
from paris_avenir.config import Settings
from paris_avenir.messaging import outbox
from paris_avenir.messaging.channels import build_channels
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.staff import assignments
from paris_avenir.staff.models import StaffRole, StaffTask, StaffUser, TaskKind, Team
from paris_avenir.youths.import_models import ImportPreview
from paris_avenir.youths.models import Youth
from tests.conftest import postgres_schema_url
from tests.factories import assign, create_staff, create_task, create_youth
from tests.helpers import at_once, sign_in_as
from tests.querycount import CountQueries
from tests.servers import RacePlatform, race_platform

HEADER = "ase_ref;last_name;first_name;birth_date;phone;email;ase_exit_date;referent_email;language"
ORIGINAL_PHONE = "+33639981201"
ATTACKER_PHONE = "+33639981299"
NEW_PHONE = "+33639981277"
UNKNOWN_REF = "TEST-99999"
OUT_OF_SCOPE = "n’est pas celle d’un jeune suivi par votre équipe"


@dataclass
class World:
    team_a: Team
    referent_a: StaffUser
    supervisor_a: StaffUser
    referent_b: StaffUser
    supervisor_b: StaffUser
    admin: StaffUser
    youth: Youth


def _team(session: Session, name: str) -> tuple[Team, StaffUser, StaffUser]:
    team = Team(name=name)
    session.add(team)
    session.flush()
    referent = create_staff(session, team_id=team.id, full_name=f"Référente {name}")
    supervisor = create_staff(
        session, StaffRole.SUPERVISOR, team_id=team.id, full_name=f"Superviseur {name}"
    )
    return team, referent, supervisor


def make_world(session: Session, *, suffix: str = "") -> World:
    team_a, referent_a, supervisor_a = _team(session, f"Équipe A{suffix}")
    _team_b, referent_b, supervisor_b = _team(session, f"Équipe B{suffix}")
    admin = create_staff(session, StaffRole.ADMIN, full_name=f"Admin Import{suffix}")
    youth = create_youth(
        session,
        phone=ORIGINAL_PHONE,
        email=f"lina.original{suffix}@example.org",
        first_name="Lina",
        last_name="Suivie",
    )
    assign(session, youth, referent_a)
    return World(team_a, referent_a, supervisor_a, referent_b, supervisor_b, admin, youth)


@pytest.fixture
def world(session: Session) -> World:
    made = make_world(session)
    session.commit()
    return made


def line_for(
    youth: Youth,
    referent: StaffUser,
    *,
    ase_ref: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    last_name: str | None = None,
) -> str:
    """The youth as the export writes them, with what the test changes."""
    return ";".join(
        [
            ase_ref or youth.ase_ref,
            last_name or youth.last_name,
            youth.first_name,
            youth.birth_date.isoformat(),
            phone if phone is not None else (youth.phone or ""),
            email if email is not None else (youth.email or ""),
            youth.ase_exit_date.isoformat() if youth.ase_exit_date else "",
            referent.email,
            youth.language,
        ]
    )


def csv_file(*lines: str) -> bytes:
    return ("\n".join([HEADER, *lines]) + "\n").encode()


async def _csrf(client: httpx.AsyncClient, page: str = "/pro/import") -> str:
    html = (await client.get(page)).text
    match = re.search(r'"x-csrftoken": "([^"]+)"', html)
    assert match
    return match.group(1)


async def upload(client: httpx.AsyncClient, content: bytes, *, dry_run: bool) -> httpx.Response:
    data = {"csrftoken": await _csrf(client)}
    if dry_run:
        data["essai"] = "oui"
    return await client.post(
        "/pro/import", data=data, files={"fichier": ("export.csv", content, "text/csv")}
    )


def confirmation_token(page: httpx.Response) -> str:
    match = re.search(r'name="jeton" value="([^"]+)"', page.text)
    assert match, "the check offers a confirmation"
    return match.group(1)


async def confirm(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(
        "/pro/import/confirmer", data={"csrftoken": await _csrf(client), "jeton": token}
    )


def audit_rows(session: Session, action: str, **where: Any) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.action == action)
    for name, value in where.items():
        query = query.where(getattr(AuditEvent, name) == value)
    return list(session.scalars(query))


def outbox_to(session: Session, recipient: str) -> list[OutboxMessage]:
    return list(session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == recipient)))


def reload(session: Session, youth: Youth) -> Youth:
    session.expire_all()
    found = session.get(Youth, youth.id)
    assert found is not None
    return found


# --- Scope -------------------------------------------------------------------------------


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "import"])
async def test_another_teams_supervisor_cannot_take_a_youth_over(
    app: FastAPI, client: httpx.AsyncClient, session: Session, world: World, dry_run: bool
) -> None:
    """The scenario of the issue: one line with the youth's ase_ref, the attacker's phone and
    their own référent."""
    sign_in_as(client, app, session, staff=world.supervisor_b)
    attack = csv_file(line_for(world.youth, world.referent_b, phone=ATTACKER_PHONE))
    response = await upload(client, attack, dry_run=dry_run)

    assert response.status_code == 422
    assert f"Ligne 2 : la référence {world.youth.ase_ref} {OUT_OF_SCOPE}" in response.text
    assert "Lina" not in response.text and "Suivie" not in response.text
    youth = reload(session, world.youth)
    assert youth.phone == ORIGINAL_PHONE
    assert assignments.current_referent_id(session, youth.id) == world.referent_a.id
    denied = audit_rows(session, "access_denied", actor_staff_id=world.supervisor_b.id)
    assert [(row.object_id, row.detail["via"], row.detail["line"]) for row in denied] == [
        (youth.id, "import", 2)
    ]
    assert session.scalar(select(func.count()).select_from(ImportPreview)) == 0
    assert outbox_to(session, ATTACKER_PHONE) == []

    # The sign-in code still goes to the youth's own phone, never to the attacker's.
    client.cookies.clear()
    for destination in ("06 39 98 12 01", "06 39 98 12 99"):
        token = await _csrf(client, "/connexion")
        sent = await client.post(
            "/connexion", data={"csrftoken": token, "destination": destination}
        )
        assert sent.status_code == 303
    codes = [m for m in outbox_to(session, ORIGINAL_PHONE) if m.template == "sign_in_code"]
    assert len(codes) == 1 and codes[0].youth_id == youth.id
    assert outbox_to(session, ATTACKER_PHONE) == []


async def test_a_supervisor_cannot_give_their_youth_to_another_teams_referent(
    app: FastAPI, client: httpx.AsyncClient, session: Session, world: World
) -> None:
    sign_in_as(client, app, session, staff=world.supervisor_a)
    response = await upload(
        client, csv_file(line_for(world.youth, world.referent_b)), dry_run=False
    )
    assert response.status_code == 422
    assert (
        f"Ligne 2 : aucun référent actif de votre équipe avec l’e-mail {world.referent_b.email}"
        in response.text
    )
    assert assignments.current_referent_id(session, world.youth.id) == world.referent_a.id
    assert audit_rows(session, "access_denied", actor_staff_id=world.supervisor_a.id)


async def test_a_supervisor_updates_their_teams_youths_and_confirms_a_new_phone(
    app: FastAPI, client: httpx.AsyncClient, session: Session, world: World
) -> None:
    sign_in_as(client, app, session, staff=world.supervisor_a)
    renamed = await upload(
        client,
        csv_file(line_for(world.youth, world.referent_a, last_name="Suivie-Martin")),
        dry_run=False,
    )
    assert renamed.status_code == 200 and "Importé : 0 nouveaux jeunes" in renamed.text
    assert reload(session, world.youth).last_name == "Suivie-Martin"
    assert audit_rows(session, "youth.update", youth_id=world.youth.id)

    changed = await upload(
        client,
        csv_file(
            line_for(world.youth, world.referent_a, last_name="Suivie-Martin", phone=NEW_PHONE)
        ),
        dry_run=False,
    )
    assert changed.status_code == 200 and "Changements sur des jeunes déjà suivis" in changed.text
    assert reload(session, world.youth).phone == ORIGINAL_PHONE  # not without confirmation
    done = await confirm(client, confirmation_token(changed))
    assert done.status_code == 200 and "Importé" in done.text
    assert reload(session, world.youth).phone == NEW_PHONE


async def test_a_supervisor_cannot_create_youths_since_that_would_tell_which_refs_exist(
    app: FastAPI, client: httpx.AsyncClient, session: Session, world: World
) -> None:
    sign_in_as(client, app, session, staff=world.supervisor_a)
    response = await upload(
        client,
        csv_file(line_for(world.youth, world.referent_a, ase_ref=UNKNOWN_REF)),
        dry_run=True,
    )
    assert response.status_code == 422
    assert f"la référence {UNKNOWN_REF} {OUT_OF_SCOPE}" in response.text
    assert session.scalar(select(Youth).where(Youth.ase_ref == UNKNOWN_REF)) is None


# --- No existence oracle -----------------------------------------------------------------


def _normalised(response: httpx.Response, ref: str) -> str:
    return re.sub(r'nonce="[^"]*"', "", response.text.replace(ref, "REF"))


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "import"])
async def test_another_teams_ref_and_an_unknown_ref_answer_exactly_the_same(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    world: World,
    count_queries: CountQueries,
    dry_run: bool,
) -> None:
    sign_in_as(client, app, session, staff=world.supervisor_b)
    await _csrf(client)  # the session's token exists before the two requests compared
    answers = []
    for ref in (world.youth.ase_ref, UNKNOWN_REF):
        content = csv_file(
            line_for(world.youth, world.referent_b, ase_ref=ref, phone=ATTACKER_PHONE)
        )
        audit_before = session.scalar(select(func.count()).select_from(AuditEvent))
        with count_queries() as counter:
            response = await upload(client, content, dry_run=dry_run)
        audit_after = session.scalar(select(func.count()).select_from(AuditEvent))
        kinds = Counter(statement.split()[0].upper() for statement in counter.statements)
        answers.append(
            (
                response.status_code,
                _normalised(response, ref),
                {
                    k: v
                    for k, v in response.headers.items()
                    if k not in {"date", "content-length", "x-request-id"}
                },
                kinds,
                (audit_after or 0) - (audit_before or 0),
            )
        )
    known, unknown = answers
    assert known[0] == unknown[0] == 422
    assert known[1] == unknown[1]
    assert known[2] == unknown[2]
    assert known[3] == unknown[3], "the same queries, whether the ase_ref exists or not"
    assert known[4] == unknown[4]


# --- Changes to youths already followed --------------------------------------------------


async def test_an_admins_changes_wait_for_confirmation_then_are_applied_audited_and_told(
    app: FastAPI,
    client: httpx.AsyncClient,
    session: Session,
    world: World,
    settings: Settings,
    session_factory: sessionmaker[Session],
) -> None:
    task = create_task(session, world.youth, TaskKind.PHONE_YOUTH, now=datetime.now(UTC))
    session.commit()
    old_email = world.youth.email
    assert old_email is not None
    sign_in_as(client, app, session, staff=world.admin)
    content = csv_file(
        line_for(world.youth, world.referent_b, phone=NEW_PHONE, email="lina.nouvelle@example.org")
    )

    checked = await upload(client, content, dry_run=True)
    assert checked.status_code == 200
    assert "Changements sur des jeunes déjà suivis" in checked.text
    shown = checked.text.replace("\u00a0", " ")  # kept on one line in the table
    assert "06 •• •• •• 01" in shown and "06 •• •• •• 77" in shown
    assert "l•••@example.org" in checked.text
    assert world.referent_a.full_name in shown and world.referent_b.full_name in shown
    assert "39 98 12" not in checked.text, "no phone number in full on the page"
    youth = reload(session, world.youth)
    assert (youth.phone, youth.email) == (ORIGINAL_PHONE, old_email)
    assert assignments.current_referent_id(session, youth.id) == world.referent_a.id
    assert audit_rows(session, "youth.import_checked", youth_id=youth.id)
    # The file waits on the server, encrypted: neither its phone nor its email in clear.
    preview = session.scalars(select(ImportPreview)).one()
    assert preview.content_encrypted and "39981277" not in preview.content_encrypted
    assert "lina" not in preview.content_encrypted

    # Without "Essai", the same: nothing changes before the confirmation.
    not_yet = await upload(client, content, dry_run=False)
    assert not_yet.status_code == 200 and "confirmez ces changements" in not_yet.text
    assert reload(session, world.youth).phone == ORIGINAL_PHONE
    assert [m for m in outbox_to(session, ORIGINAL_PHONE) if m.template == "contact_changed"] == []

    done = await confirm(client, confirmation_token(checked))
    assert done.status_code == 200 and "Importé : 0 nouveaux jeunes" in done.text
    youth = reload(session, world.youth)
    assert (youth.phone, youth.email) == (NEW_PHONE, "lina.nouvelle@example.org")
    # Reassigned through the reassignment service: audited, and the task follows.
    assert assignments.current_referent_id(session, youth.id) == world.referent_b.id
    assert audit_rows(session, "youth.reassigned", youth_id=youth.id, actor_staff_id=world.admin.id)
    assert session.get(StaffTask, task.id).assignee_id == world.referent_b.id  # type: ignore[union-attr]
    for action in ("youth.phone_changed", "youth.email_changed"):
        rows = audit_rows(session, action, youth_id=youth.id, actor_staff_id=world.admin.id)
        assert len(rows) == 1 and rows[0].detail["via"] == "import"
    assert session.scalars(select(ImportPreview).where(ImportPreview.id == preview.id)).one()
    session.expire_all()
    assert session.get(ImportPreview, preview.id).content_encrypted is None  # type: ignore[union-attr]

    # The previous phone and the previous email are told, right away.
    (sms,) = [m for m in outbox_to(session, ORIGINAL_PHONE) if m.template == "contact_changed"]
    assert "votre numéro a été changé" in sms.body_text and "Si ce n'est pas vous" in sms.body_text
    assert sms.is_urgent and not sms.respects_quiet_hours, "never held until the morning"
    (email,) = [m for m in outbox_to(session, old_email) if m.template == "contact_changed"]
    assert email.subject == "Votre adresse e-mail a été changée sur Paris avenir"
    assert outbox_to(session, NEW_PHONE) == []
    outbox.dispatch_due(session_factory, build_channels(settings))
    sent = [json.loads(line) for line in Path(settings.sms_file).read_text().splitlines()]
    assert [item["to"] for item in sent if "numéro a été changé" in item["text"]] == [
        ORIGINAL_PHONE
    ]

    # The youth sees who did it in "Qui a consulté mon dossier".
    client.cookies.clear()
    sign_in_as(client, app, session, youth=youth)
    page = (await client.get("/mon-espace/acces")).text
    # Grouped per staff member and day (issue 15): who, then what they did.
    assert "<strong>Admin Import</strong> (administrateur)" in page
    assert "a changé votre numéro de téléphone" in page
    assert "a changé votre adresse e-mail" in page
    assert "vous a confié à un autre référent" in page


async def test_a_phone_added_to_a_youth_known_by_email_is_told_by_email(
    app: FastAPI, client: httpx.AsyncClient, session: Session, world: World
) -> None:
    """No previous number to warn: the youth's email hears of it instead."""
    youth = reload(session, world.youth)
    youth.phone = None
    session.commit()
    sign_in_as(client, app, session, staff=world.admin)
    content = csv_file(line_for(youth, world.referent_a, phone=NEW_PHONE))
    checked = await upload(client, content, dry_run=True)
    assert "(aucun)" in checked.text
    assert (await confirm(client, confirmation_token(checked))).status_code == 200
    assert youth.email is not None
    (notice,) = outbox_to(session, youth.email)
    assert notice.subject == "Votre numéro a été changé sur Paris avenir"
    assert "les codes de connexion vont maintenant à un autre numéro" in notice.body_text
    (row,) = audit_rows(session, "youth.phone_changed", youth_id=youth.id)
    assert row.detail["told_on"] == "email"


async def test_a_confirmation_works_once_and_only_for_whoever_checked_the_file(
    app: FastAPI, client: httpx.AsyncClient, session: Session, world: World
) -> None:
    other_admin = create_staff(session, StaffRole.ADMIN)
    session.commit()
    sign_in_as(client, app, session, staff=world.admin)
    content = csv_file(line_for(world.youth, world.referent_a, phone=NEW_PHONE))
    token = confirmation_token(await upload(client, content, dry_run=True))

    client.cookies.clear()
    sign_in_as(client, app, session, staff=other_admin)
    assert (await confirm(client, token)).status_code == 409
    assert reload(session, world.youth).phone == ORIGINAL_PHONE

    client.cookies.clear()
    sign_in_as(client, app, session, staff=world.admin)
    assert (await confirm(client, token)).status_code == 200
    replay = await confirm(client, token)
    assert replay.status_code == 409 and "il a déjà servi" in replay.text
    assert len(audit_rows(session, "youth.phone_changed", youth_id=world.youth.id)) == 1
    assert len(audit_rows(session, "youth.import_confirm_refused")) == 2


async def test_a_confirmation_applies_nothing_when_the_youths_file_changed_since_the_check(
    app: FastAPI, client: httpx.AsyncClient, session: Session, world: World
) -> None:
    sign_in_as(client, app, session, staff=world.admin)
    content = csv_file(line_for(world.youth, world.referent_a, phone=NEW_PHONE))
    token = confirmation_token(await upload(client, content, dry_run=True))
    reload(session, world.youth).phone = "+33639981250"  # the youth changed it meanwhile
    session.commit()
    response = await confirm(client, token)
    assert response.status_code == 409 and "des dossiers ont changé depuis l’essai" in response.text
    assert reload(session, world.youth).phone == "+33639981250"
    assert audit_rows(session, "youth.phone_changed") == []


async def test_a_check_older_than_thirty_minutes_cannot_be_confirmed(
    app: FastAPI, client: httpx.AsyncClient, session: Session, world: World
) -> None:
    checked_at = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    sign_in_as(client, app, session, staff=world.admin)
    content = csv_file(line_for(world.youth, world.referent_a, phone=NEW_PHONE))
    with time_machine.travel(checked_at, tick=False):
        token = confirmation_token(await upload(client, content, dry_run=True))
    with time_machine.travel(checked_at + timedelta(minutes=31), tick=False):
        assert (await confirm(client, token)).status_code == 409
    assert reload(session, world.youth).phone == ORIGINAL_PHONE


async def test_a_dry_run_of_new_youths_is_imported_by_one_click_on_the_checked_file(
    app: FastAPI, client: httpx.AsyncClient, session: Session, world: World
) -> None:
    sign_in_as(client, app, session, staff=world.admin)
    content = csv_file(line_for(world.youth, world.referent_b, ase_ref=UNKNOWN_REF))
    checked = await upload(client, content, dry_run=True)
    assert checked.status_code == 200 and "Importer ce fichier" in checked.text
    assert session.scalar(select(Youth).where(Youth.ase_ref == UNKNOWN_REF)) is None
    done = await confirm(client, confirmation_token(checked))
    assert done.status_code == 200 and "Importé : 1 nouveaux jeunes (1 invitations)" in done.text
    created = session.scalars(select(Youth).where(Youth.ase_ref == UNKNOWN_REF)).one()
    assert assignments.current_referent_id(session, created.id) == world.referent_b.id
    assert audit_rows(session, "youth.imported", youth_id=created.id, actor_staff_id=world.admin.id)


def test_the_command_line_never_changes_a_followed_youths_contact(
    session: Session, world: World
) -> None:
    content = csv_file(line_for(world.youth, world.referent_a, phone=ATTACKER_PHONE))
    report = import_youths(session, content, base_url="http://x")
    assert report.awaiting_confirmation and not report.applied
    told = "\n".join(describe(report))
    assert "Téléphone 06 •• •• •• 01 → 06 •• •• •• 99" in told and "page « Importer »" in told
    again = import_youths(session, content, base_url="http://x", confirmed_plan=report.plan_digest)
    assert not again.applied, "only a signed-in person confirms"
    assert reload(session, world.youth).phone == ORIGINAL_PHONE


# --- Thirty confirmations at once, on PostgreSQL -----------------------------------------

SCHEMA = "import_races"
PARALLEL = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RacePlatform]:
    url = postgres_schema_url(SCHEMA, needed_for="races on PostgreSQL")
    with race_platform(url, tmp_path_factory.mktemp("import-races")) as platform:
        yield platform


def test_thirty_confirmations_of_one_check_apply_it_once(server: RacePlatform) -> None:
    with server.factory.begin() as session:
        world = make_world(session, suffix="-course")
        youth_id, admin_id = world.youth.id, world.admin.id
        content = csv_file(line_for(world.youth, world.referent_b, phone=NEW_PHONE))
        started = sessions.start_session(
            session, staff_id=admin_id, method=AuthMethod.PASSWORD_TOTP
        )
    with httpx.Client(base_url=server.url, timeout=30) as client:
        client.cookies.set(server.settings.session_cookie_name, started.token)
        page = client.get("/pro/import")
        csrf = re.search(r'"x-csrftoken": "([^"]+)"', page.text)
        assert csrf
        checked = client.post(
            "/pro/import",
            data={"csrftoken": csrf.group(1), "essai": "oui"},
            files={"fichier": ("export.csv", content, "text/csv")},
        )
        assert checked.status_code == 200, re.findall(r"<li>Ligne(.*?)</li>", checked.text)
        token = confirmation_token(checked)
        cookies = dict(client.cookies)

    def confirm_once(_index: int) -> int:
        with httpx.Client(base_url=server.url, cookies=cookies, timeout=60) as client:
            response = client.post(
                "/pro/import/confirmer", data={"csrftoken": csrf.group(1), "jeton": token}
            )
            return response.status_code

    statuses = Counter(at_once(PARALLEL, confirm_once))
    assert statuses == {200: 1, 409: PARALLEL - 1}
    with server.factory() as session:

        def count(action: str) -> int:
            return (
                session.scalar(
                    select(func.count())
                    .select_from(AuditEvent)
                    .where(AuditEvent.action == action, AuditEvent.youth_id == youth_id)
                )
                or 0
            )

        notices = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.template == "contact_changed", OutboxMessage.youth_id == youth_id)
        )
        assert (count("youth.phone_changed"), count("youth.reassigned"), notices) == (1, 1, 1)
        assert session.get(Youth, youth_id).phone == NEW_PHONE  # type: ignore[union-attr]
