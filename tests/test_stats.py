"""Observatoire statistics: aggregates only, small cells suppressed, CSV and SVG."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from paris_avenir.aid_requests.models import AidCode, RequestStatus
from paris_avenir.db import utcnow
from paris_avenir.outreach.models import OutreachAttempt, OutreachReason
from paris_avenir.staff.models import StaffRole
from paris_avenir.stats import service
from paris_avenir.youths.models import Channel
from tests.factories import create_aid_request, create_staff, create_youth
from tests.helpers import sign_in_as


def add_requests(
    session: Session,
    code: AidCode,
    status: RequestStatus,
    count: int,
    *,
    days_to_decision: int | None = None,
) -> None:
    now = utcnow()
    for number in range(count):
        youth = create_youth(session, last_name=f"Zorglub{number}")
        submitted = now - timedelta(days=40)
        create_aid_request(
            session,
            youth,
            aid_code=code,
            status=status,
            submitted_at=submitted,
            decided_at=submitted + timedelta(days=days_to_decision)
            if days_to_decision is not None
            else None,
        )
    session.flush()


def test_cells_under_ten_people_are_suppressed(session: Session) -> None:
    add_requests(session, AidCode.NAVIGO, RequestStatus.SUBMITTED, 9)
    add_requests(session, AidCode.NAVIGO, RequestStatus.GRANTED, 10, days_to_decision=12)
    stats = service.compute(session)
    navigo = next(row for row in stats.aids if row.aid == "Passe Navigo gratuit")
    assert navigo.by_status[RequestStatus.SUBMITTED].suppressed
    assert navigo.by_status[RequestStatus.SUBMITTED].shown() == "< 10"
    assert navigo.by_status[RequestStatus.GRANTED].value == 10
    assert navigo.total.value == 19
    assert navigo.median_days_to_decision.value == 12


def test_a_median_needs_ten_decisions(session: Session) -> None:
    add_requests(session, AidCode.BOURSE, RequestStatus.REFUSED, 9, days_to_decision=3)
    bourse = next(row for row in service.compute(session).aids if row.aid == "Bourse d’études")
    assert bourse.median_days_to_decision.suppressed


def test_outreach_response_rates_per_step_and_channel(session: Session) -> None:
    now = utcnow()
    for number in range(12):
        youth = create_youth(session)
        session.add(
            OutreachAttempt(
                youth_id=youth.id,
                reason=OutreachReason.INACTIVITY,
                step=1,
                period_key="p",
                channel=Channel.SMS,
                attempted_at=now,
                responded_at=now if number < 3 else None,
            )
        )
    session.flush()
    row = service.compute(session).outreach[0]
    # Words, never codes, on the statistics page and in its CSV.
    assert (row.reason, row.step, row.channel) == ("Silencieux depuis longtemps", 1, "SMS")
    assert row.attempts.value == 12 and row.response_rate.value == pytest.approx(25.0)
    assert service.Cell(40 / 3).shown("%") == "13,3\u00a0%"  # a decimal comma on the page


async def test_the_page_the_csv_and_who_may_see_them(
    app: FastAPI, client: httpx.AsyncClient, session: Session
) -> None:
    add_requests(session, AidCode.ALLOCATION, RequestStatus.SUBMITTED, 11)
    add_requests(session, AidCode.LOGEMENT, RequestStatus.SUBMITTED, 2)
    referent = create_staff(session, StaffRole.REFERENT)
    supervisor = create_staff(session, StaffRole.SUPERVISOR)
    session.commit()
    sign_in_as(client, app, session, staff=referent)
    assert (await client.get("/pro/statistiques")).status_code == 403
    assert (await client.get("/pro/statistiques.csv")).status_code == 403
    client.cookies.clear()
    sign_in_as(client, app, session, staff=supervisor)
    page = await client.get("/pro/statistiques")
    assert (
        page.status_code == 200 and "<svg" in page.text and "Allocation Paris avenir" in page.text
    )
    assert "Zorglub" not in page.text  # no name ever
    exported = await client.get("/pro/statistiques.csv")
    rows = [
        row[:6]
        for row in csv.reader(io.StringIO(exported.content.decode("utf-8-sig")), delimiter=";")
    ]
    assert ["Demandes", "Allocation Paris avenir", "", "Déposée", "11", ""] in rows
    assert ["Demandes", "Logement social", "", "Déposée", "", "moins de 10 personnes"] in rows
    assert "Zorglub" not in exported.text
