"""Import of the ASE information system's export: every error with its line, all or nothing,
the same file twice changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from paris_avenir.auth.models import LoginLink
from paris_avenir.backoffice.importer import describe, import_youths
from paris_avenir.messaging.models import OutboxMessage
from paris_avenir.staff.models import CaseloadAssignment, StaffRole, StaffUser
from paris_avenir.youths.models import Youth
from tests.factories import create_staff
from tests.helpers import csrf_token, run_cli, sign_in_as

HEADER = "ase_ref;last_name;first_name;birth_date;phone;email;ase_exit_date;referent_email;language"
GOOD = [
    "IMP-0001;Traoré;Moussa;2005-03-14;06 39 98 40 01;moussa.t@example.org;2023-03-14;awa@example.org;fr",
    "IMP-0002;Rahimi;Ahmad;17/09/2004;;ahmad.r@example.org;2022-09-17;awa@example.org;fa_AF",
    "IMP-0003;Gebre;Selam;2006-01-02;06 39 98 40 03;;;awa@example.org;",
]


@pytest.fixture
def referent(session: Session) -> StaffUser:
    referent = create_staff(session, StaffRole.REFERENT, email="awa@example.org")
    session.commit()
    return referent


def csv_bytes(lines: list[str], *, separator: str = ";", bom: bool = False) -> bytes:
    text = "\n".join([HEADER, *lines]).replace(";", separator) + "\n"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


def counts(session: Session) -> tuple[int, int, int]:
    return (
        session.scalar(select(func.count()).select_from(Youth)) or 0,
        session.scalar(select(func.count()).select_from(CaseloadAssignment)) or 0,
        session.scalar(select(func.count()).select_from(OutboxMessage)) or 0,
    )


@pytest.mark.parametrize(
    ("separator", "bom"), [(";", False), (";", True), (",", False), (",", True)]
)
def test_a_correct_file_is_imported_whatever_its_separator_and_bom(
    session: Session, referent: StaffUser, separator: str, bom: bool
) -> None:
    lines = (
        [
            line.replace("06 39 98 40 01", "0639984001").replace("06 39 98 40 03", "0639984003")
            for line in GOOD
        ]
        if separator == ","
        else GOOD
    )
    report = import_youths(
        session, csv_bytes(lines, separator=separator, bom=bom), base_url="http://x"
    )
    assert report.errors == []
    assert (report.created, report.invitations) == (3, 3)
    moussa = session.scalars(select(Youth).where(Youth.ase_ref == "IMP-0001")).one()
    assert moussa.first_name == "Moussa" and moussa.phone == "+33639984001"
    ahmad = session.scalars(select(Youth).where(Youth.ase_ref == "IMP-0002")).one()
    assert ahmad.birth_date.isoformat() == "2004-09-17" and ahmad.language == "fa_AF"
    assert session.scalar(select(func.count()).select_from(LoginLink)) == 3


def test_importing_the_same_file_twice_changes_nothing(
    session: Session, referent: StaffUser
) -> None:
    first = import_youths(session, csv_bytes(GOOD), base_url="http://x")
    before = counts(session)
    second = import_youths(session, csv_bytes(GOOD), base_url="http://x")
    assert (first.created, second.created, second.updated, second.unchanged) == (3, 0, 0, 3)
    assert counts(session) == before


def test_an_update_changes_only_what_changed(session: Session, referent: StaffUser) -> None:
    import_youths(session, csv_bytes(GOOD), base_url="http://x")
    changed = [GOOD[0].replace("moussa.t@example.org", "moussa.new@example.org"), *GOOD[1:]]
    report = import_youths(session, csv_bytes(changed), base_url="http://x")
    assert (report.created, report.updated, report.unchanged) == (0, 1, 2)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "IMP-0009;Roux;Léa;2005-13-40;;;;awa@example.org;fr",
            "Ligne 3 : date de naissance illisible",
        ),
        (
            "IMP-0009;Roux;Léa;14/03/2005;;;hier;awa@example.org;fr",
            "Ligne 3 : date de sortie de l’ASE illisible",
        ),
        (
            "IMP-0001;Roux;Léa;2005-03-14;;;;awa@example.org;fr",
            "Ligne 3 : la référence IMP-0001 est déjà à la ligne 2",
        ),
        (
            "IMP-0009;Roux;Léa;2005-03-14;;;;inconnu@example.org;fr",
            "Ligne 3 : aucun référent actif avec l’e-mail inconnu@example.org",
        ),
        (
            "IMP-0009;Roux;Léa;2005-03-14;06 12;;;awa@example.org;fr",
            "Ligne 3 : numéro de téléphone invalide",
        ),
        (
            "IMP-0009;;Léa;2005-03-14;;;;awa@example.org;fr",
            "Ligne 3 : la colonne « last_name » est vide",
        ),
        ("IMP-0009;Roux;Léa;2005-03-14;;;;awa@example.org;klingon", "Ligne 3 : langue inconnue"),
    ],
)
def test_errors_name_their_line_and_nothing_is_half_imported(
    session: Session, referent: StaffUser, line: str, expected: str
) -> None:
    report = import_youths(session, csv_bytes([GOOD[0], line]), base_url="http://x")
    text = "\n".join(describe(report))
    assert expected in text, text
    assert text.startswith("Rien n’a été importé")
    assert counts(session) == (0, 0, 0)


def test_a_missing_column_and_an_unreadable_file_are_explained(
    session: Session, referent: StaffUser
) -> None:
    missing = import_youths(session, b"ase_ref;last_name\nX;Y\n", base_url="http://x")
    assert "Ligne 1 : Colonnes manquantes : first_name" in "\n".join(describe(missing))
    # 0x81 is neither UTF-8 nor Windows-1252: the file is refused at the line it is on.
    garbled = csv_bytes(GOOD).replace("Traoré".encode(), b"Traor\x81")
    report = import_youths(session, garbled, base_url="http://x")
    assert "Ligne 2 : Le fichier n’est ni en UTF-8 ni en Windows-1252" in "\n".join(
        describe(report)
    )
    assert counts(session) == (0, 0, 0)


def test_a_dry_run_counts_and_writes_nothing(session: Session, referent: StaffUser) -> None:
    report = import_youths(session, csv_bytes(GOOD), base_url="http://x", dry_run=True)
    assert report.created == 3 and "Essai, rien n’est enregistré" in describe(report)[0]
    assert counts(session) == (0, 0, 0)


def test_the_command_exits_non_zero_when_it_imported_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from paris_avenir.db import create_database_engine, make_session_factory
    from paris_avenir.migrate import upgrade_to_head

    database = f"sqlite:///{tmp_path / 'import.sqlite3'}"
    engine = create_database_engine(database)
    upgrade_to_head(engine)
    with make_session_factory(engine).begin() as session:
        create_staff(session, StaffRole.REFERENT, email="awa@example.org")
    engine.dispose()
    environment = {
        "PARIS_AVENIR_DATABASE_URL": database,
        "PARIS_AVENIR_SMS_FILE": str(tmp_path / "sms.jsonl"),
    }
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_bytes(csv_bytes(GOOD, bom=True))
    bad.write_bytes(csv_bytes([GOOD[0], GOOD[0]]))
    # The real command once (the console script's process), then in this process.
    smoke = subprocess.run(
        [sys.executable, "-m", "paris_avenir.cli", "import-youths", str(bad)],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("PARIS_AVENIR_")},
            **environment,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert smoke.returncode == 1 and "Ligne 3" in smoke.stderr
    tried = run_cli(monkeypatch, capsys, environment, "import-youths", str(good), "--dry-run")
    assert tried.returncode == 0 and "Essai" in tried.stdout
    done = run_cli(monkeypatch, capsys, environment, "import-youths", str(good))
    assert done.returncode == 0 and "3 nouveaux jeunes (3 invitations)" in done.stdout
    again = run_cli(monkeypatch, capsys, environment, "import-youths", str(good))
    assert "0 nouveaux jeunes" in again.stdout and "3 inchangés" in again.stdout


async def test_an_admin_imports_in_the_browser(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser
) -> None:
    # New youths come with the export of every team: an admin's import (a supervisor's
    # covers their own team's youths only, tests/test_import_security.py).
    admin = create_staff(session, StaffRole.ADMIN)
    session.commit()
    sign_in_as(client, app, session, staff=admin)
    token = await csrf_token(client)
    response = await client.post(
        "/pro/import",
        data={"csrftoken": token},
        files={"fichier": ("export.csv", csv_bytes(GOOD, bom=True), "text/csv")},
    )
    assert response.status_code == 200 and "3 nouveaux jeunes" in response.text
    bad = await client.post(
        "/pro/import",
        data={"csrftoken": token},
        files={"fichier": ("export.csv", csv_bytes([GOOD[0], GOOD[0]]), "text/csv")},
    )
    assert bad.status_code == 422 and "Ligne 3" in bad.text


async def test_a_referent_cannot_import(
    app: FastAPI, client: httpx.AsyncClient, session: Session, referent: StaffUser
) -> None:
    sign_in_as(client, app, session, staff=referent)
    assert (await client.get("/pro/import")).status_code == 403
