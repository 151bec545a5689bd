"""The audit log keeps networks, not addresses; it is purged after the period the admin sets,
and the database refuses any other DELETE (and every UPDATE), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from paris_avenir.audit import service as audit
from paris_avenir.audit.models import AuditEvent
from paris_avenir.kit.dates import add_months
from paris_avenir.retention.service import purge
from paris_avenir.staff.models import StaffRole, StaffUser, Team
from tests.factories import assign, create_staff, create_youth
from tests.helpers import post_form, sign_in_as

# A fixed instant in the past: the database's own clock (which the purge never lets delete
# anything younger than six months by) is later.
NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


def _months_before(months: int) -> datetime:
    day = add_months(NOW.date(), -months)
    return NOW.replace(year=day.year, month=day.month, day=day.day)


def _raw_addresses(session: Session) -> list[str | None]:
    return [value for (value,) in session.execute(text("SELECT ip_address FROM audit_event"))]


def _database_now(session: Session) -> datetime:
    value = session.execute(text("SELECT CURRENT_TIMESTAMP")).scalar()
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _actions(session: Session) -> set[str]:
    session.expire_all()
    return set(session.scalars(select(AuditEvent.action)))


@pytest.mark.parametrize(
    ("address", "kept"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("2001:db8:abcd:12:3456::1", "2001:db8:abcd::/48"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),
        ("pas une adresse", None),
    ],
)
def test_an_entry_keeps_the_network_never_the_address(
    session: Session, address: str, kept: str | None
) -> None:
    audit.record(session, "youth.view", ip_address=address, now=NOW)
    session.flush()
    assert _raw_addresses(session) == [kept]


async def test_a_refused_access_is_audited_without_the_callers_address(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    north, south = Team(name="Nord"), Team(name="Sud")
    session.add_all([north, south])
    session.flush()
    youth = create_youth(session)
    assign(session, youth, create_staff(session, StaffRole.REFERENT, team_id=north.id))
    stranger = create_staff(session, StaffRole.REFERENT, team_id=south.id)
    session.commit()
    sign_in_as(client, app, session, staff=stranger)
    assert (await client.get(f"/pro/jeunes/{youth.id}")).status_code == 404
    denied = session.scalars(select(AuditEvent).where(AuditEvent.action == "access_denied")).one()
    # The test client comes from 127.0.0.1: the log keeps its /24 only.
    assert denied.ip_address == "127.0.0.0/24"
    assert "127.0.0.1" not in _raw_addresses(session)


def test_a_plain_delete_or_update_of_the_log_is_refused(session: Session) -> None:
    audit.record(session, "youth.view", now=_months_before(30))  # long past any retention
    session.commit()
    statements = [
        "DELETE FROM audit_event",
        "DELETE FROM audit_event WHERE action = 'youth.view'",
        "UPDATE audit_event SET action = 'rien'",
        "UPDATE audit_event SET ip_address = NULL",
    ]
    if session.get_bind().dialect.name == "postgresql":
        statements.append("TRUNCATE audit_event")
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
            session.execute(text(statement))
    assert _actions(session) == {"youth.view"}


def test_even_the_purge_cannot_delete_an_entry_younger_than_six_months(session: Session) -> None:
    recent = _database_now(session) - timedelta(days=30)
    audit.record(session, "youth.view", now=recent)
    session.commit()
    with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
        # What the purge does to allow its own DELETE, done by hand.
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT set_config('paris_avenir.audit_purge', 'on', true)"))
        else:
            session.execute(text("INSERT INTO audit_purge_permit (id) VALUES (1)"))
        session.execute(text("DELETE FROM audit_event"))
    # Asked to purge everything up to a year from now, the database keeps it.
    session.execute(text("SELECT 1"))  # the failed savepoint is gone; the session goes on
    assert audit.purge(session, now=recent + timedelta(days=500)) == 0
    assert _actions(session) == {"youth.view"}


def test_the_nightly_purge_applies_the_admins_retention(session: Session) -> None:
    admin = create_staff(session, StaffRole.ADMIN)
    audit.record(session, "youth.view", now=_months_before(13))
    audit.record(session, "youth.export", now=_months_before(11))
    audit.record(session, "message.view", now=_months_before(7))
    session.commit()
    # Default: 12 months (CNIL).
    assert audit.retention_months(session) == 12
    report = purge(session, now=NOW)
    session.commit()
    assert report.audit_events == 1
    assert _actions(session) == {"youth.export", "message.view"}
    # The admin shortens it to 6 months: the 11- and 7-month-old entries go the next night.
    audit.save_retention_months(session, "6", by_id=admin.id, now=NOW)
    session.commit()
    assert purge(session, now=NOW).audit_events == 2
    session.commit()
    assert _actions(session) == {"admin.audit_retention"}
    # The purge's permission ends with it: a plain DELETE is refused again, and a second run
    # finds nothing to do.
    assert session.execute(text("SELECT count(*) FROM audit_purge_permit")).scalar() == 0
    with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
        session.execute(text("DELETE FROM audit_event"))
    assert purge(session, now=NOW).audit_events == 0


@pytest.fixture
def admin_staff(app: FastAPI, client: httpx.AsyncClient, session: Session) -> StaffUser:
    admin = create_staff(session, StaffRole.ADMIN)
    session.commit()
    sign_in_as(client, app, session, staff=admin)
    return admin


async def test_the_admin_sets_the_retention_on_the_settings_page(
    client: httpx.AsyncClient, session: Session, admin_staff: StaffUser
) -> None:
    page = (await client.get("/pro/admin/relances")).text
    assert "Durée de conservation du journal d’audit" in page
    assert 'name="months" type="text" inputmode="numeric" value="12"' in page
    saved = await post_form(client, "/pro/admin/relances/journal-audit", {"months": "8"})
    assert saved.status_code == 303
    assert audit.retention_months(session) == 8
    assert 'value="8"' in (await client.get("/pro/admin/relances")).text
    change = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "admin.audit_retention")
    ).one()
    assert change.actor_staff_id == admin_staff.id and change.detail == {"months": 8}
    for impossible in ("24", "3", "douze", ""):
        refused = await post_form(
            client, "/pro/admin/relances/journal-audit", {"months": impossible}
        )
        assert refused.status_code == 422
        assert "Choisissez une durée entre 6 et 12 mois." in refused.text
    assert audit.retention_months(session) == 8


async def test_only_an_admin_sets_the_retention(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    supervisor = create_staff(session, StaffRole.SUPERVISOR)
    session.commit()
    sign_in_as(client, app, session, staff=supervisor)
    response = await post_form(client, "/pro/admin/relances/journal-audit", {"months": "6"})
    assert response.status_code == 403
    assert audit.retention_months(session) == 12
